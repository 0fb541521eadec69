package service

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

// violations collects input constraint failures and renders them the way
// AWS's request validation does (reference §1.3):
//
//	1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1
type violations struct {
	msgs []string
	// empty holds the members that the request gave as the empty
	// string (WithEmptyMembers), which a string field cannot tell from
	// members left out. AWS validates them as given: every such member
	// of the API has a minimum length of 1 or an enumeration.
	empty map[string]bool
	// null holds the members within structures that the request left
	// out or gave as null (WithNullMembers), which a string field cannot
	// tell from the empty string.
	null map[string]bool
}

// newViolations starts the validation of a request, knowing from ctx
// which of its members were given as the empty string.
func newViolations(ctx context.Context) violations {
	var v violations
	if names, _ := ctx.Value(emptyMembersKey{}).([]string); len(names) > 0 {
		v.empty = make(map[string]bool, len(names))
		for _, n := range names {
			v.empty[n] = true
		}
	}
	if names, _ := ctx.Value(nullMembersKey{}).([]string); len(names) > 0 {
		v.null = make(map[string]bool, len(names))
		for _, n := range names {
			v.null[n] = true
		}
	}
	return v
}

type (
	emptyMembersKey struct{}
	nullMembersKey  struct{}
)

// WithNullMembers returns ctx telling the operation it is passed to that
// the request left out, or gave as null, the members named (as
// validation messages name them: "tags.1.member.tagKey"), which the
// input's string fields hold the same as the empty string. A required
// member so given is refused (must not be null), with the request's
// other violations.
func WithNullMembers(ctx context.Context, names []string) context.Context {
	if len(names) == 0 {
		return ctx
	}
	return context.WithValue(ctx, nullMembersKey{}, names)
}

// WithEmptyMembers returns ctx telling the operation it is passed to that
// the request gave the members named (as validation messages name them:
// "keySpec", "grantId") as the empty string, which the input's string
// fields hold the same as members left out. A member given empty is
// refused as AWS refuses it (must have length greater than or equal to
// 1, or must satisfy the enum value set), not taken as absent.
func WithEmptyMembers(ctx context.Context, names []string) context.Context {
	if len(names) == 0 {
		return ctx
	}
	return context.WithValue(ctx, emptyMembersKey{}, names)
}

// givenEmpty reports whether field was given as the empty string, and
// counts it as checked.
func (v *violations) givenEmpty(field string) bool {
	if !v.empty[field] {
		return false
	}
	delete(v.empty, field)
	return true
}

func (v *violations) add(format string, args ...any) {
	v.msgs = append(v.msgs, fmt.Sprintf(format, args...))
}

// err is the ValidationException for the violations found, if any. A
// member given as the empty string that no check has looked at fails its
// minimum length.
func (v *violations) err() error {
	for _, field := range slices.Sorted(maps.Keys(v.empty)) {
		v.givenEmpty(field)
		v.add("Value '' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1", field)
	}
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return newErr(fault.Validation, "1 validation error detected: %s", v.msgs[0])
	default:
		return newErr(fault.Validation, "%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; "))
	}
}

// required records a violation if s is empty: null if the request left
// it out, too short if it gave the empty string.
func (v *violations) required(field, s string) bool {
	if s == "" {
		if v.givenEmpty(field) {
			v.add("Value '' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1", field)
		} else {
			v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
		}
		return false
	}
	return true
}

// requiredEnum checks a required member whose values are set.
func (v *violations) requiredEnum(field, s string, set []string) {
	if s == "" && !v.empty[field] {
		v.required(field, s)
		return
	}
	v.enum(field, s, set)
}

// keyID checks a required key identifier (1 to 2048 characters).
func (v *violations) keyID(field, s string) {
	if v.required(field, s) {
		v.strLen(field, s, 1, 2048)
	}
}

// strLen checks a string's length; the value is echoed as AWS does.
func (v *violations) strLen(field, s string, min, max int) {
	n := len([]rune(s))
	if n < min {
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", s, field, min)
	} else if n > max {
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", s, field, max)
	}
}

// optStrLen checks the length of an optional string that was given.
func (v *violations) optStrLen(field string, s *string, min, max int) {
	if s != nil {
		v.strLen(field, *s, min, max)
	}
}

// blobLen checks a binary or sensitive value's length without echoing it.
func (v *violations) blobLen(field string, b []byte, min, max int) {
	if len(b) < min {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", field, min)
	} else if len(b) > max {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, max)
	}
}

// secretLen checks a sensitive string's length without echoing it.
func (v *violations) secretLen(field, s string, min, max int) {
	n := utf8.RuneCountInString(s)
	if n < min {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", field, min)
	} else if n > max {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, max)
	}
}

// secretPattern checks a sensitive string against re without echoing it.
func (v *violations) secretPattern(field, s string, re *regexp.Regexp, shown string) {
	if !re.MatchString(s) {
		v.add("Value at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", field, shown)
	}
}

func (v *violations) intRange(field string, n *int32, min, max int32) {
	if n == nil {
		return
	}
	if *n < min {
		v.add("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", *n, field, min)
	} else if *n > max {
		v.add("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", *n, field, max)
	}
}

// enum checks that a given value is one of set; the message lists set in
// the order given, which for AWS's own enums follows AWS's messages.
func (v *violations) enum(field, s string, set []string) {
	if s == "" && !v.givenEmpty(field) {
		return
	}
	for _, e := range set {
		if s == e {
			return
		}
	}
	v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", s, field, strings.Join(set, ", "))
}

// given reports whether the request gave the string member field: a
// value, or the empty string.
func (v *violations) given(field, s string) bool {
	return s != "" || v.givenEmpty(field)
}

// requiredGiven is given for a required member, recording a violation if
// the request left it out.
func (v *violations) requiredGiven(field, s string) bool {
	if v.given(field, s) {
		return true
	}
	v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	return false
}

// patterned checks a string member that the request gave against its
// length limits and its pattern, shown as the model writes it (re is
// anchored). AWS reports each constraint broken: the empty string breaks
// a minimum length of 1 and a pattern that wants a character both.
func (v *violations) patterned(field, s string, min, max int, re *regexp.Regexp, shown string) {
	v.strLen(field, s, min, max)
	if !re.MatchString(s) {
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", s, field, shown)
	}
}

// keyMaterialID checks an optional KeyMaterialId that was given: 64
// lower-case hex digits. An empty one is refused, not read as absent: on
// DeleteImportedKeyMaterial absent means the current material.
func (v *violations) keyMaterialID(id *string) {
	if id == nil {
		return
	}
	v.patterned("keyMaterialId", *id, 64, 64, keyMaterialIDPattern, keyMaterialIDPattern.String())
}

func (v *violations) grantTokens(tokens []string) {
	if len(tokens) > 10 {
		v.add("Value '%s' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10", "["+strings.Join(tokens, ", ")+"]")
	}
	for i, t := range tokens {
		v.strLen(fmt.Sprintf("grantTokens.%d.member", i+1), t, 1, 8192)
	}
}

// recipient checks a Recipient that the request gave, before the
// operation refuses it (refuseRecipient): AWS validates it first.
func (v *violations) recipient(r *kmsapi.RecipientInfo) {
	if r == nil {
		return
	}
	v.enum("recipient.keyEncryptionAlgorithm", r.KeyEncryptionAlgorithm, keyEncryptionMechanismEnum)
	if r.AttestationDocument != nil {
		v.blobLen("recipient.attestationDocument", r.AttestationDocument, 1, 262144)
	}
}

// policy checks a key policy document that the request gave: 1 to
// 131072 characters, each a tab, line feed, carriage return or from
// U+0020 to U+00FF.
func (v *violations) policy(p *string) {
	if p != nil {
		v.patterned("policy", *p, 1, 131072, policyPattern, `[\u0009\u000A\u000D\u0020-\u00FF]+`)
	}
}

// paging checks the Limit and Marker every listing takes. A Marker
// outside the model's pattern is a validation error, as on AWS, before
// its decoding could call it an InvalidMarkerException.
func (v *violations) paging(limit *int32, marker *string) {
	v.intRange("limit", limit, 1, 1000)
	if marker != nil {
		v.patterned("marker", *marker, 1, 1024, markerPattern, `[\u0020-\u00FF]*`)
	}
}

func (v *violations) encryptionContext(field string, ec map[string]string) {
	for k := range ec {
		if k == "" {
			v.add("Value at '%s' failed to satisfy constraint: Map keys must have length greater than or equal to 1", field)
			return
		}
	}
}

// dryRunModifiers checks the DryRunModifiers of Decrypt and ReEncrypt and
// reports whether the call is a dry run that ignores the ciphertext.
func (v *violations) dryRunModifiers(dryRun bool, mods []string) (ignoreCiphertext bool) {
	for i, m := range mods {
		v.enum(fmt.Sprintf("dryRunModifiers.%d.member", i+1), m, dryRunModifierEnum)
		ignoreCiphertext = ignoreCiphertext || m == "IGNORE_CIPHERTEXT"
	}
	return dryRun && ignoreCiphertext
}

// ciphertext checks the CiphertextBlob of Decrypt and ReEncrypt, which
// only a dry run that ignores it may leave out.
func (v *violations) ciphertext(blob []byte, optional bool) {
	switch {
	case blob != nil:
		v.blobLen("ciphertextBlob", blob, 1, 6144)
	case !optional:
		v.add("Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	}
}

// grantConstraints applies the limits AWS documents for a grant's
// encryption-context constraints: each of at most 8 pairs, each value at
// most 384 characters. A key is held to the same 384: AWS documents no
// bound of its own for it, and without one a grant could hold a megabyte,
// each of a key's 50,000 grants, all of them held in memory with the key.
func (v *violations) grantConstraints(c *kmsapi.GrantConstraints) {
	if c == nil {
		return
	}
	for _, m := range []struct {
		field string
		ec    map[string]string
	}{
		{"constraints.encryptionContextEquals", c.EncryptionContextEquals},
		{"constraints.encryptionContextSubset", c.EncryptionContextSubset},
	} {
		v.encryptionContext(m.field, m.ec)
		if len(m.ec) > 8 {
			v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to 8", m.field)
		}
		for k := range m.ec {
			if utf8.RuneCountInString(k) > 384 {
				v.add("Value at '%s' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 384]", m.field)
				break
			}
		}
		for _, val := range m.ec {
			if utf8.RuneCountInString(val) > 384 {
				v.add("Value at '%s' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 384]", m.field)
				break
			}
		}
	}
}

// Enumerations, in the order AWS lists them in its validation messages.
var (
	keySpecEnum = []string{"RSA_2048", "ECC_NIST_P384", "ECC_NIST_P256", "ECC_NIST_P521", "HMAC_384", "RSA_3072",
		"ECC_SECG_P256K1", "RSA_4096", "SYMMETRIC_DEFAULT", "HMAC_256", "HMAC_224", "HMAC_512",
		"SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
	customerMasterKeySpecEnum  = keySpecEnum[:13]
	keyUsageEnum               = []string{"ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"}
	originEnum                 = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	encryptionAlgorithmEnum    = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}
	dataKeySpecEnum            = []string{"AES_256", "AES_128"}
	dryRunModifierEnum         = []string{"IGNORE_CIPHERTEXT"}
	keyEncryptionMechanismEnum = []string{"RSAES_OAEP_SHA_256"}
)

var (
	aliasNamePattern     = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
	keyMaterialIDPattern = regexp.MustCompile(`^[a-f0-9]+$`)
	markerPattern        = regexp.MustCompile(`^[\x{20}-\x{FF}]*$`)
	policyPattern        = regexp.MustCompile(`^[\t\n\r\x{20}-\x{FF}]+$`)
	xksKeyIDPattern      = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	tagKeyReserved       = "aws:"
)
