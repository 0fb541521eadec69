package service

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/openkms/kms/internal/fault"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

var jsonUnmarshal = json.Unmarshal

// keyIDForms says which identifier forms an operation accepts (reference
// §2.13): management operations take a key id or key ARN; cryptographic
// operations and DescribeKey also take an alias name or alias ARN.
type keyIDForms int

const (
	formAlias        keyIDForms = 1 << iota // alias names and alias ARNs too
	formOtherAccount                        // ARNs of another account's keys: the operations AWS allows across accounts

	idOrARN keyIDForms = 0
	anyForm            = formAlias
)

// resolve finds the key an identifier names, as caller. Malformed
// identifiers, unknown keys and unknown aliases are NotFoundException with
// AWS's messages. A key whose deletion date has passed is already gone,
// even before the sweeper removes it.
func (s *Service) resolve(ctx context.Context, caller Caller, ident string, forms keyIDForms) (*liveKey, error) {
	k, _, err := s.resolveAlias(ctx, caller, ident, forms)
	return k, err
}

// resolveAlias is resolve that also returns the alias name the identifier
// used, if any (for kms:RequestAlias).
func (s *Service) resolveAlias(ctx context.Context, caller Caller, ident string, forms keyIDForms) (*liveKey, string, error) {
	account, id, alias, err := s.parseIdentifier(caller, ident, forms)
	if err != nil {
		return nil, "", err
	}
	if alias != "" {
		id, err = s.lookupAlias(ctx, account, alias)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", newErr(fault.NotFound, "Alias %s is not found.", s.aliasARN(account, alias))
		}
		if err != nil {
			return nil, "", s.storeErr("resolve alias", err)
		}
	}
	k, err := s.loadKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (k.rec.Account != account || s.deleted(k))) {
		return nil, "", errKeyDoesNotExist(s.keyARN(account, id))
	}
	if err != nil {
		return nil, "", s.storeErr("load key", err)
	}
	audit.FromContext(ctx).AddKey(k.arn)
	return k, alias, nil
}

// deleted reports whether a live key's deletion date has passed.
func (s *Service) deleted(k *liveKey) bool { return s.expired(&k.rec) }

// parseIdentifier splits a key identifier into the account it names and
// either a key id or an alias name.
func (s *Service) parseIdentifier(caller Caller, ident string, forms keyIDForms) (account, id, alias string, err error) {
	invalid := errInvalidKeyID(ident)
	switch {
	case strings.HasPrefix(ident, "arn:"):
		// arn:<partition>:kms:<region>:<account>:<resource>
		parts := strings.SplitN(ident, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" || len(parts[4]) != 12 {
			return "", "", "", invalid
		}
		if parts[3] != s.region {
			return "", "", "", newErr(fault.NotFound, "Invalid arn %s", parts[3])
		}
		account = parts[4]
		res := parts[5]
		switch {
		case strings.HasPrefix(res, "key/"):
			kid, ok := keys.ParseID(res[len("key/"):])
			if !ok {
				return "", "", "", invalid
			}
			id = kid.String()
		case strings.HasPrefix(res, "alias/") && forms&formAlias != 0:
			alias = res
		default:
			return "", "", "", invalid
		}
		// Another account's key may be named only in the operations AWS
		// allows across accounts; its key policy then decides.
		if account != caller.AccountID && forms&formOtherAccount == 0 {
			if alias != "" {
				return "", "", "", newErr(fault.NotFound, "Alias %s is not found.", s.aliasARN(account, alias))
			}
			return "", "", "", errKeyDoesNotExist(s.keyARN(account, id))
		}
		return account, id, alias, nil
	case strings.HasPrefix(ident, "alias/"):
		if forms&formAlias == 0 {
			return "", "", "", invalid
		}
		return caller.AccountID, "", ident, nil
	default:
		if strings.HasPrefix(ident, "mrk-") && len(ident) == 36 && isLowerHex(ident[4:]) {
			// A well-formed multi-Region key id; none exist here.
			return caller.AccountID, ident, "", nil
		}
		kid, ok := keys.ParseID(ident)
		if !ok {
			return "", "", "", invalid
		}
		return caller.AccountID, kid.String(), "", nil
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
