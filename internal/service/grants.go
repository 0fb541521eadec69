package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Grants let a principal use a key for some operations without a change to
// the key policy. They take effect at once on the node that made them, and
// on the others of a cluster once told of the change (typically within
// milliseconds); a call that carries a grant's token may use it before
// that.

const (
	maxGrantsPerKey  = 50000
	grantTokenFormat = 0x01
	grantTokenSize   = 1 + 16 + 32 + 16 // format, key id, grant id, random
)

var (
	grantOperationEnum = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
		"Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
		"Encapsulate", "Decapsulate"}
	// symmetricGrantOperations are those a symmetric encryption key supports.
	symmetricGrantOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
		"CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}
	principalPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	grantNamePattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
	grantIDPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	errBadGrantToken = newErr(fault.InvalidGrantToken, "The grant token is not valid.")
)

// checkGrantTokens checks the form of the grant tokens a request carries.
func checkGrantTokens(tokens []string) error {
	for _, t := range tokens {
		if _, _, err := parseGrantToken(t); err != nil {
			return err
		}
	}
	return nil
}

// withGrantTokens returns ctx naming the grants of a call's grant tokens
// (checked by checkGrantTokens): a key it reads from the cache includes
// them even before a node that did not make them is told of them.
func withGrantTokens(ctx context.Context, tokens []string) context.Context {
	var grants []keyrepo.TokenGrant
	for _, t := range tokens {
		if keyID, grantID, err := parseGrantToken(t); err == nil {
			grants = append(grants, keyrepo.TokenGrant{KeyID: keyID, GrantID: grantID})
		}
	}
	return keyrepo.WithTokenGrants(ctx, grants)
}

func newGrantToken(keyID keys.ID, grantID string) string {
	b := make([]byte, 0, grantTokenSize)
	b = append(b, grantTokenFormat)
	b = append(b, keyID[:]...)
	id, _ := hex.DecodeString(grantID)
	b = append(b, id...)
	r := make([]byte, 16)
	rand.Read(r)
	return base64.RawURLEncoding.EncodeToString(append(b, r...))
}

func parseGrantToken(t string) (keyID, grantID string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) != grantTokenSize || b[0] != grantTokenFormat {
		return "", "", errBadGrantToken
	}
	var id keys.ID
	copy(id[:], b[1:17])
	return id.String(), hex.EncodeToString(b[17:49]), nil
}

// uniqueID is the unique id of the IAM user or role arn names, or "" if it
// names none that exists (or another kind of principal).
func (s *Service) uniqueID(ctx context.Context, arn string) (string, error) {
	if !policy.IsUserOrRole(arn) {
		return "", nil
	}
	return s.principalID(ctx, arn)
}

// checkGrantPrincipal refuses a grantee or retiring principal p that names
// no principal, as AWS does: it must be an account, an assumed-role
// session, or an IAM user or role that exists, as in a key policy ("" is
// no principal given; the input pattern already refused "*").
func (s *Service) checkGrantPrincipal(ctx context.Context, p string) error {
	if p == "" {
		return nil
	}
	_, ok, err := s.validPrincipal(ctx, p)
	switch {
	case err != nil:
		return err
	case !ok:
		return newErr(fault.InvalidArn, "ARN does not refer to a valid principal: %s", p)
	}
	return nil
}

// CreateGrant lets GranteePrincipal perform Operations on a key.
func (s *Service) CreateGrant(ctx context.Context, caller Caller, in *kmsapi.CreateGrantInput) (*kmsapi.CreateGrantOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if v.given("granteePrincipal", in.GranteePrincipal) {
		v.patterned("granteePrincipal", in.GranteePrincipal, 1, 256, principalPattern, principalPattern.String())
	}
	if v.given("retiringPrincipal", in.RetiringPrincipal) {
		v.patterned("retiringPrincipal", in.RetiringPrincipal, 1, 256, principalPattern, principalPattern.String())
	}
	v.servicePrincipal("granteeServicePrincipal", in.GranteeServicePrincipal)
	v.servicePrincipal("retiringServicePrincipal", in.RetiringServicePrincipal)
	if in.Operations == nil {
		v.add("Value null at 'operations' failed to satisfy constraint: Member must not be null")
	}
	for i, op := range in.Operations {
		v.enum(fmt.Sprintf("operations.%d.member", i+1), op, grantOperationEnum)
	}
	if v.given("name", in.Name) {
		v.patterned("name", in.Name, 1, 256, grantNamePattern, grantNamePattern.String())
	}
	v.grantTokens(in.GrantTokens)
	v.grantConstraints(in.Constraints)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	switch {
	case in.GranteeServicePrincipal != "" || in.RetiringServicePrincipal != "":
		return nil, newErr(fault.UnsupportedOperation, "Grants to AWS service principals are not supported by this server.")
	case in.Constraints != nil && in.Constraints.SourceArn != nil:
		// Dropped, it would leave a grant with no constraint where its
		// maker asked for one.
		return nil, newErr(fault.UnsupportedOperation, "SourceArn grant constraints are not supported by this server: no AWS service calls it on a resource's behalf.")
	case in.GranteePrincipal == "":
		return nil, newErr(fault.Validation, "You must specify a GranteePrincipal.")
	case len(in.Operations) == 0:
		return nil, newErr(fault.Validation, "1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount)
	if err != nil {
		return nil, err
	}
	ops := slices.Clone(in.Operations)
	slices.Sort(ops)
	ops = slices.Compact(ops)
	cond := grantCallConditions()
	cond.Extra["kms:granteeprincipal"] = in.GranteePrincipal
	cond.Multi = map[string][]string{"kms:grantoperations": ops}
	cond.Child = &authz.ChildGrant{Operations: ops, Constraints: in.Constraints}
	if in.RetiringPrincipal != "" {
		cond.Extra["kms:retiringprincipal"] = in.RetiringPrincipal
	}
	// For CreateGrant, kms:EncryptionContext:* and kms:EncryptionContextKeys
	// are the encryption context of the grant's constraint.
	if c := in.Constraints; c != nil {
		if c.EncryptionContextEquals != nil {
			cond.Extra["kms:grantconstrainttype"] = "EncryptionContextEquals"
			cond.EC = c.EncryptionContextEquals
		} else if c.EncryptionContextSubset != nil {
			cond.Extra["kms:grantconstrainttype"] = "EncryptionContextSubset"
			cond.EC = c.EncryptionContextSubset
		}
	}
	if err := s.authz.Key(ctx, &caller, "kms:CreateGrant", k, cond); err != nil {
		return nil, err
	}
	// What the key is (its spec) is told only to a caller that may grant
	// on it.
	allowed := grantOperations(k.Rec.KeySpec, k.Rec.KeyUsage)
	for _, op := range ops {
		if !slices.Contains(allowed, op) {
			return nil, newErr(fault.Validation, "Grant operation %s is not valid for a KMS key with key spec %s.", op, k.Rec.KeySpec)
		}
	}
	// The operations of other keys take no encryption context: a
	// constraint would be ignored, and the grant allow more than it says.
	if c := in.Constraints; c != nil && (c.EncryptionContextEquals != nil || c.EncryptionContextSubset != nil) && k.Rec.KeySpec != keys.SymmetricDefault {
		return nil, newErr(fault.Validation, "Encryption context grant constraints are not valid for a KMS key with key spec %s: its operations take no encryption context.", k.Rec.KeySpec)
	}
	// The state DescribeKey shows: a key whose imported material expired
	// is pending import from that instant, before maintenance deletes it.
	if err := s.repo.StateOf(&k.Rec).Err(k.ARN); err != nil {
		return nil, err
	}
	for _, p := range []string{in.GranteePrincipal, in.RetiringPrincipal} {
		if err := s.checkGrantPrincipal(ctx, p); err != nil {
			return nil, err
		}
	}
	kid, _ := keys.ParseID(k.Rec.ID)
	g := keyrepo.GrantRecord{V: keyrepo.RecordVersion, ID: randomHex(32), KeyID: k.Rec.ID, Region: k.Rec.Region, Account: caller.AccountID, KeyAccount: k.Rec.Account, Name: in.Name,
		Grantee: in.GranteePrincipal, Retiring: in.RetiringPrincipal, Operations: ops, Constraints: in.Constraints, Created: s.clock()}
	if s.principalID != nil {
		g.Bound = true
		if g.GranteeID, err = s.uniqueID(ctx, g.Grantee); err != nil {
			return nil, err
		}
		if g.RetiringID, err = s.uniqueID(ctx, g.Retiring); err != nil {
			return nil, err
		}
	}
	created := false
	err = s.update(ctx, "CreateGrant", func(tx store.Tx) error {
		created = false
		// The key as it is now: a ScheduleKeyDeletion or DisableKey
		// committed since it was read refuses the grant.
		var cur keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &cur); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return keyrepo.ErrKeyDoesNotExist(k.ARN)
			}
			return err
		}
		if err := s.repo.StateOf(&cur).Err(k.ARN); err != nil {
			return err
		}
		if err := s.reauthorize(ctx, tx, &caller, "kms:CreateGrant", k, &cur, cond); err != nil {
			return err
		}
		n, err := keyrepo.GrantCount(tx, k.Rec.Region, k.Rec.ID)
		if err != nil {
			return err
		}
		same := ""
		if in.Name != "" {
			err := keyrepo.NamedGrants(tx, k.Rec.Region, k.Rec.ID, g.Account, in.Name, func(old *keyrepo.GrantRecord) bool {
				if old.Grantee == g.Grantee && old.Retiring == g.Retiring &&
					old.Bound == g.Bound && old.GranteeID == g.GranteeID && old.RetiringID == g.RetiringID &&
					slices.Equal(old.Operations, g.Operations) && sameConstraints(old.Constraints, g.Constraints) {
					same = old.ID
					return false
				}
				return true
			})
			if err != nil {
				return err
			}
		}
		switch {
		case same != "" && in.DryRun:
			return errDryRun
		case same != "":
			g.ID = same // creating the same named grant again is idempotent
			return nil
		case n >= maxGrantsPerKey:
			return newErr(fault.LimitExceeded, "The key %s already has the maximum of %d grants.", k.ARN, maxGrantsPerKey)
		case in.DryRun:
			// Judged as the call would be, in its transaction, which
			// this error rolls back.
			return errDryRun
		}
		created = true
		return keyrepo.PutGrant(tx, &g)
	})
	switch {
	case err != nil:
		s.repo.Invalidate(k.Rec.Region, k.Rec.ID, "")
		return nil, err
	case created:
		s.repo.GrantAdded(&g)
	}
	return &kmsapi.CreateGrantOutput{GrantID: g.ID, GrantToken: newGrantToken(kid, g.ID)}, nil
}

// sameConstraints reports whether two grants' constraints are the same,
// an absent map apart from an empty one.
func sameConstraints(a, b *kmsapi.GrantConstraints) bool {
	if a == nil || b == nil {
		return a == b
	}
	same := func(x, y map[string]string) bool { return (x == nil) == (y == nil) && maps.Equal(x, y) }
	return same(a.EncryptionContextEquals, b.EncryptionContextEquals) && same(a.EncryptionContextSubset, b.EncryptionContextSubset)
}

func (s *Service) grantEntry(g *keyrepo.GrantRecord) kmsapi.GrantListEntry {
	return kmsapi.GrantListEntry{KeyID: keyrepo.KeyARN(g.Region, g.KeyOwner(), g.KeyID), GrantID: g.ID, Name: g.Name, CreationDate: kmsapi.Time(g.Created),
		GranteePrincipal: g.Grantee, RetiringPrincipal: g.Retiring, IssuingAccount: "arn:aws:iam::" + g.Account + ":root",
		Operations: g.Operations, Constraints: g.Constraints}
}

// grantCallConditions are the condition keys of CreateGrant, ListGrants
// and RevokeGrant that AWS always sets: kms:GrantIsForAWSResource, which
// is false, since no AWS service calls this server for a resource.
func grantCallConditions() *authz.Conditions {
	return &authz.Conditions{Extra: map[string]string{"kms:grantisforawsresource": "false"}}
}

// servicePrincipal checks an AWS service principal given to a grant
// operation: 1 to 128 characters (reference §2.5).
func (v *violations) servicePrincipal(field, p string) {
	if v.given(field, p) {
		v.strLen(field, p, 1, 128)
	}
}

// ListGrants lists the grants of a key, optionally only one grant or one
// grantee's (none for a service principal).
func (s *Service) ListGrants(ctx context.Context, caller Caller, in *kmsapi.ListGrantsInput) (*kmsapi.ListGrantsOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.paging(in.Limit, in.Marker)
	if v.given("grantId", in.GrantID) {
		v.strLen("grantId", in.GrantID, 1, 128)
	}
	if v.given("granteePrincipal", in.GranteePrincipal) {
		v.patterned("granteePrincipal", in.GranteePrincipal, 1, 256, principalPattern, principalPattern.String())
	}
	v.servicePrincipal("granteeServicePrincipal", in.GranteeServicePrincipal)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.GrantID != "" && !grantIDPattern.MatchString(in.GrantID) {
		return nil, newErr(fault.InvalidGrantID, "Invalid grant ID %s", in.GrantID)
	}
	marker, err := parseMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount, "kms:ListGrants", grantCallConditions())
	if err != nil {
		return nil, err
	}
	pages := newListing("ListGrants", k.Rec.Region, k.Rec.ID)
	after, err := marker.position(pages)
	if err != nil {
		return nil, err
	}
	out := &kmsapi.ListGrantsOutput{}
	if in.GranteeServicePrincipal != "" {
		// This server makes no grant to a service principal.
		out.Grants = []kmsapi.GrantListEntry{}
		return out, nil
	}
	limit := pageLimit(in.Limit, 50, 100)
	entry := func(val []byte) (kmsapi.GrantListEntry, bool, error) {
		var g keyrepo.GrantRecord
		if err := keyrepo.UnmarshalRecord(val, &g); err != nil {
			return kmsapi.GrantListEntry{}, false, err
		}
		if (in.GrantID != "" && g.ID != in.GrantID) || (in.GranteePrincipal != "" && g.Grantee != in.GranteePrincipal) {
			return kmsapi.GrantListEntry{}, false, nil
		}
		return s.grantEntry(&g), true, nil
	}
	err = s.view(ctx, "ListGrants", func(tx store.Tx) error {
		if in.GrantID != "" {
			// One grant at most, and no next page: read its record
			// rather than every grant of the key.
			out.Grants, out.NextMarker = []kmsapi.GrantListEntry{}, ""
			if in.GrantID <= after {
				return nil
			}
			val, err := tx.Get(keyrepo.GrantKey(k.Rec.Region, k.Rec.ID, in.GrantID))
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			e, ok, err := entry(val)
			if ok {
				out.Grants = append(out.Grants, e)
			}
			return err
		}
		var err error
		out.Grants, out.NextMarker, err = scanPage(tx, pages, keyrepo.GrantPrefix(k.Rec.Region, k.Rec.ID), after, limit, func(_ string, val []byte) (kmsapi.GrantListEntry, bool, error) {
			return entry(val)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Truncated = out.NextMarker != ""
	return out, nil
}

// principalAccount is the account of an IAM or STS principal ARN (an
// assumed-role session is one), or "".
func principalAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || (parts[2] != "iam" && parts[2] != "sts") {
		return ""
	}
	return parts[4]
}

// ListRetirableGrants lists, across keys, the grants a principal may retire.
func (s *Service) ListRetirableGrants(ctx context.Context, caller Caller, in *kmsapi.ListRetirableGrantsInput) (*kmsapi.ListGrantsOutput, error) {
	v := newViolations(ctx)
	if in.RetiringServicePrincipal == "" && v.requiredGiven("retiringPrincipal", in.RetiringPrincipal) {
		v.patterned("retiringPrincipal", in.RetiringPrincipal, 1, 256, principalPattern, principalPattern.String())
	}
	v.servicePrincipal("retiringServicePrincipal", in.RetiringServicePrincipal)
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.RetiringServicePrincipal != "" {
		return &kmsapi.ListGrantsOutput{Grants: []kmsapi.GrantListEntry{}}, nil
	}
	pages := newListing("ListRetirableGrants", caller.AccountID, s.regionOf(caller), in.RetiringPrincipal)
	after, err := decodeMarker(in.Marker, pages)
	if err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:ListRetirableGrants", "*", nil); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50, 100)
	out := &kmsapi.ListGrantsOutput{}
	err = s.view(ctx, "ListRetirableGrants", func(tx store.Tx) error {
		var err error
		out.Grants, out.NextMarker, err = scanPage(tx, pages, keyrepo.RetirablePrefix(in.RetiringPrincipal, s.regionOf(caller)), after, limit, func(rest string, _ []byte) (kmsapi.GrantListEntry, bool, error) {
			keyID, grantID, _ := strings.Cut(rest, "/")
			var g keyrepo.GrantRecord
			if err := getJSON(tx, keyrepo.GrantKey(s.regionOf(caller), keyID, grantID), &g); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return kmsapi.GrantListEntry{}, false, nil
				}
				return kmsapi.GrantListEntry{}, false, err
			}
			if gone, err := s.pastDeletionInTx(tx, s.regionOf(caller), keyID); err != nil || gone {
				return kmsapi.GrantListEntry{}, false, err
			}
			// The caller's account's grants, and grants on other
			// accounts' keys whose retiring principal is the
			// caller's account's (AWS lists those too).
			return s.grantEntry(&g), g.Account == caller.AccountID || principalAccount(g.Retiring) == caller.AccountID, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Truncated = out.NextMarker != ""
	return out, nil
}

// RetireGrant deletes a grant, by token or by key and grant id. The retiring
// principal, a grantee allowed RetireGrant, or the issuing account's root
// may retire it.
func (s *Service) RetireGrant(ctx context.Context, caller Caller, in *kmsapi.RetireGrantInput) (*struct{}, error) {
	v := newViolations(ctx)
	if v.given("grantToken", in.GrantToken) {
		v.strLen("grantToken", in.GrantToken, 1, 8192)
	}
	if v.given("keyId", in.KeyID) {
		v.strLen("keyId", in.KeyID, 1, 2048)
	}
	if v.given("grantId", in.GrantID) {
		v.strLen("grantId", in.GrantID, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	keyID, grantID := "", in.GrantID
	switch {
	case in.GrantToken != "":
		var err error
		if keyID, grantID, err = parseGrantToken(in.GrantToken); err != nil {
			return nil, err
		}
		if err := s.sameGrant(ctx, caller, in, keyID, grantID); err != nil {
			return nil, err
		}
	case in.KeyID != "" && in.GrantID != "":
		if !grantIDPattern.MatchString(in.GrantID) {
			return nil, newErr(fault.InvalidGrantID, "Invalid grant ID %s", in.GrantID)
		}
		k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount)
		if err != nil {
			return nil, err
		}
		keyID = k.Rec.ID
	default:
		return nil, newErr(fault.Validation, "Either GrantToken, or both KeyId and GrantId, must be specified.")
	}
	return nil, s.deleteGrant(ctx, s.regionOf(caller), keyID, grantID, in.DryRun, func(tx store.Tx, g *keyrepo.GrantRecord) error {
		// The grant decides who retires it, and the caller's identity
		// policies as this transaction reads them: a caller whose
		// credential was deleted since it was authenticated retires
		// nothing.
		c, err := callerNow(ctx, tx, &caller)
		if err != nil {
			return err
		}
		if c == nil {
			c = &caller
		}
		k, err := grantKey(tx, s.regionOf(caller), keyID, g)
		if err != nil {
			return err
		}
		return s.authz.RetireGrant(ctx, c, g, k)
	})
}

// grantKey is the key keyID in region of its grant g as tx reads it, for
// the conditions of a decision on the grant: a stand-in with its id,
// region and account if its record is gone.
func grantKey(tx store.Tx, region, keyID string, g *keyrepo.GrantRecord) (*keyrepo.Key, error) {
	k := &keyrepo.Key{ARN: keyrepo.KeyARN(region, g.KeyOwner(), keyID)}
	switch err := getJSON(tx, keyrepo.KeyKey(region, keyID), &k.Rec); {
	case errors.Is(err, store.ErrNotFound):
		k.Rec = keyrepo.KeyRecord{ID: keyID, Region: region, Account: g.KeyOwner()}
	case err != nil:
		return nil, err
	}
	return k, nil
}

// sameGrant refuses a RetireGrant whose KeyId or GrantId, given beside
// its token, names another grant than the token: the token decides which
// grant is retired, while the trail records the KeyId and GrantId, so the
// record would name a grant the call left alone.
func (s *Service) sameGrant(ctx context.Context, caller Caller, in *kmsapi.RetireGrantInput, keyID, grantID string) error {
	errOther := newErr(fault.Validation, "The KeyId and GrantId must name the grant of the GrantToken, or be left out.")
	if in.GrantID != "" && in.GrantID != grantID {
		return errOther
	}
	if in.KeyID == "" {
		return nil
	}
	k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount)
	if err != nil {
		return err
	}
	if k.Rec.ID != keyID {
		return errOther
	}
	return nil
}

// RevokeGrant deletes a grant; it needs kms:RevokeGrant on the key.
func (s *Service) RevokeGrant(ctx context.Context, caller Caller, in *kmsapi.RevokeGrantInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if v.required("grantId", in.GrantID) {
		v.strLen("grantId", in.GrantID, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if !grantIDPattern.MatchString(in.GrantID) {
		return nil, newErr(fault.InvalidGrantID, "Invalid grant ID %s", in.GrantID)
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount, "kms:RevokeGrant", grantCallConditions())
	if err != nil {
		return nil, err
	}
	return nil, s.deleteGrant(ctx, k.Rec.Region, k.Rec.ID, in.GrantID, in.DryRun, func(tx store.Tx, _ *keyrepo.GrantRecord) error {
		// Judged again on the key as this transaction reads it
		// (reauthorize): a caller shut out of the key policy since it
		// was authorized revokes nothing.
		var rec keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &rec); err != nil {
			return err
		}
		return s.reauthorize(ctx, tx, &caller, "kms:RevokeGrant", k, &rec, grantCallConditions())
	})
}

func (s *Service) deleteGrant(ctx context.Context, region, keyID, grantID string, dryRun bool, allowed func(store.Tx, *keyrepo.GrantRecord) error) error {
	err := s.update(ctx, "DeleteGrant", func(tx store.Tx) error {
		var g keyrepo.GrantRecord
		err := getJSON(tx, keyrepo.GrantKey(region, keyID, grantID), &g)
		if errors.Is(err, store.ErrNotFound) {
			return newErr(fault.NotFound, "Grant ID %s not found", grantID)
		}
		if err != nil {
			return err
		}
		if gone, err := s.pastDeletionInTx(tx, region, keyID); err != nil || gone {
			if gone {
				err = newErr(fault.NotFound, "Grant ID %s not found", grantID)
			}
			return err
		}
		// A grant retired by its token names its key only here.
		audit.FromContext(ctx).AddKey(keyrepo.KeyARN(region, g.KeyOwner(), keyID))
		if err := allowed(tx, &g); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		g.ID = grantID
		return keyrepo.DeleteGrant(tx, region, keyID, &g)
	})
	if err != nil {
		s.repo.Invalidate(region, keyID, "")
		return err
	}
	s.repo.GrantRemoved(region, keyID, grantID)
	return nil
}
