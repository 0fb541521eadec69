package keyrepo

import (
	"context"
	"errors"
	"strings"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Forms says which identifier forms an operation accepts (reference
// §2.13): management operations take a key id or key ARN; cryptographic
// operations and DescribeKey also take an alias name or alias ARN.
type Forms int

const (
	FormAlias        Forms = 1 << iota // alias names and alias ARNs too
	FormOtherAccount                   // ARNs of another account's keys: the operations AWS allows across accounts

	IDOrARN Forms = 0
	AnyForm       = FormAlias
)

// Resolve finds the key an identifier names for a caller of account in
// region, and the alias name the identifier used, if any (for
// kms:RequestAlias). Keys and aliases of other regions do not exist for it.
// Malformed identifiers, unknown keys and unknown aliases are NotFound with
// AWS's messages. A key whose deletion date has passed is already gone,
// even before the sweeper removes it, and so are its aliases.
func (r *Repo) Resolve(ctx context.Context, account, region, ident string, forms Forms) (*Key, string, error) {
	acct, id, alias, err := parseIdentifier(account, region, ident, forms)
	if err != nil {
		return nil, "", err
	}
	if alias != "" {
		id, err = r.LookupAlias(ctx, acct, region, alias)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", fault.Newf(fault.NotFound, "Alias %s is not found.", AliasARN(region, acct, alias))
		}
		if err != nil {
			return nil, "", err
		}
	}
	k, err := r.Load(ctx, region, id)
	if alias != "" && err == nil && r.Expired(&k.Rec) {
		// The alias went with its key, as the sweeper will find it.
		return nil, "", fault.Newf(fault.NotFound, "Alias %s is not found.", AliasARN(region, acct, alias))
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (k.Rec.Account != acct || r.Expired(&k.Rec))) {
		return nil, "", ErrKeyDoesNotExist(KeyARN(region, acct, id))
	}
	if err != nil {
		return nil, "", err
	}
	return k, alias, nil
}

// parseIdentifier splits a key identifier into the account it names and
// either a key id or an alias name. An ARN of another region than the
// request's is NotFound, as AWS answers it.
func parseIdentifier(callerAccount, region, ident string, forms Forms) (account, id, alias string, err error) {
	switch {
	case strings.HasPrefix(ident, "arn:"):
		// arn:<partition>:kms:<region>:<account>:<resource>
		parts := strings.SplitN(ident, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" || len(parts[4]) != 12 {
			return "", "", "", ErrInvalidKeyID(ident)
		}
		if parts[3] != region {
			return "", "", "", fault.Newf(fault.NotFound, "Invalid arn %s", parts[3])
		}
		account = parts[4]
		res := parts[5]
		switch {
		case strings.HasPrefix(res, "key/"):
			var ok bool
			if id, ok = parseKeyID(res[len("key/"):]); !ok {
				return "", "", "", ErrInvalidKeyID(ident)
			}
		case strings.HasPrefix(res, "alias/") && forms&FormAlias != 0:
			alias = res
		default:
			return "", "", "", ErrInvalidKeyID(ident)
		}
		// Another account's key may be named only in the operations AWS
		// allows across accounts; its key policy then decides.
		if account != callerAccount && forms&FormOtherAccount == 0 {
			if alias != "" {
				return "", "", "", fault.Newf(fault.NotFound, "Alias %s is not found.", AliasARN(region, account, alias))
			}
			return "", "", "", ErrKeyDoesNotExist(KeyARN(region, account, id))
		}
		return account, id, alias, nil
	case strings.HasPrefix(ident, "alias/"):
		if forms&FormAlias == 0 {
			return "", "", "", ErrInvalidKeyID(ident)
		}
		return callerAccount, "", ident, nil
	default:
		id, ok := parseKeyID(ident)
		if !ok {
			return "", "", "", ErrInvalidKeyID(ident)
		}
		return callerAccount, id, "", nil
	}
}

// parseKeyID returns the canonical form of a key id: a UUID in lower case,
// or a multi-Region key id (mrk- and 32 lower-case hex digits).
func parseKeyID(s string) (string, bool) {
	if strings.HasPrefix(s, "mrk-") && len(s) == 36 && isLowerHex(s[4:]) {
		return s, true
	}
	if _, ok := keys.ParseID(s); !ok || strings.HasPrefix(s, "mrk-") {
		return "", false
	}
	return strings.ToLower(s), true
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

// ErrKeyDoesNotExist is AWS's NotFound for a well-formed key that does not
// exist (or that the caller's account does not own).
func ErrKeyDoesNotExist(arn string) error {
	return fault.Newf(fault.NotFound, "Key '%s' does not exist", arn)
}

// ErrInvalidKeyID is AWS's NotFound for a malformed key identifier.
func ErrInvalidKeyID(id string) error { return fault.Newf(fault.NotFound, "Invalid keyId '%s'", id) }
