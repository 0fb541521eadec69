// Package policy implements the IAM JSON policy language as AWS KMS applies
// it to key policies (resource-based) and to identity policies: parsing and
// validating a document, evaluating it against a request, and laying it
// out as AWS KMS returns a key policy (Pretty).
//
// It follows the IAM User Guide's "IAM JSON policy element reference"
// (Version, Id, Statement, Sid, Effect, Principal, NotPrincipal, Action,
// NotAction, Resource, NotResource, Condition), its condition operators
// (String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress, NotIpAddress,
// Arn*, Null, the ...IfExists suffix and the ForAnyValue:/ForAllValues: set
// prefixes), its policy variables (${aws:username}, ${key, 'default'} and
// the ${*}, ${?}, ${$} escapes, substituted only under Version 2012-10-17),
// and the KMS Developer Guide's rules for key policies and KMS condition
// keys, including the OverlyPermissiveCondition rejection of ForAllValues
// with kms:EncryptionContext:* and aws:RequestTag/*.
//
// Parse validates and compiles a document once. Evaluation does not
// allocate, except for BinaryEquals and for values over 511 bytes matched
// against a wildcard pattern. A Policy is safe for concurrent use.
//
// Evaluation answers for one policy only. Combining the key policy, identity
// policies and grants (explicit deny wins; a key policy that names only the
// account delegates to identity policies) is the caller's, as is checking
// that named principals exist and the 32 KB size limit.
//
// Where the documentation leaves room, this package chooses:
//   - NotPrincipal leaves a caller out only if every link of its chain is
//     listed: the account, then the role and the session, or the user.
//   - Negated operators under ForAnyValue/ForAllValues test each request
//     value against all policy values ("not equal to any of them"); without
//     a set operator, a multi-valued key matches when any value does.
//   - A policy variable without a value (and without a default) makes its
//     pattern match nothing, so a negated operator holds.
//   - An ArnLike/ArnEquals value with two to five colon-separated parts
//     matches nothing; one without a colon, such as "*", matches the whole.
//   - Element names are case-sensitive and may not repeat; operator names
//     and the ForAnyValue/ForAllValues prefixes ignore case.
//
// Limits: Service, Federated and CanonicalUser principals are parsed but
// never match, since callers here are always IAM principals; the partition
// of an account principal's ARN is not compared. Numeric values are
// float64, so integers beyond 2^53 lose precision. Values for Numeric, Date,
// Bool, Binary, IpAddress and Null are checked at parse time, which may
// reject a document AWS would store. A context key given with no values
// counts as absent.
package policy

// Effect is a statement's effect.
type Effect string

const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed, validated policy document.
type Policy struct {
	Version    string // "2012-10-17", "2008-10-17" or "" when absent
	ID         string
	Statements []Statement

	// ids, once bound, ties the IAM users and roles the policy names to
	// the ones that existed when it was stored (Bind).
	ids   map[string]string
	bound bool

	textBytes    int // the length of the document parsed (MemSize)
	patternBytes int // what its compiled patterns keep (MemSize)
}

// Bind ties the IAM users and roles that p names to the ones that existed
// when it was stored: ids maps each user or role ARN to that principal's
// unique id (AIDA..., AROA...). A bound policy's user or role ARN then
// matches only a caller with that id, so a user or role deleted and made
// again under the same name does not inherit what the policy gave the old
// one; an ARN missing from ids matches no one. A policy never bound
// matches users and roles by ARN alone. Bind before sharing p.
func (p *Policy) Bind(ids map[string]string) {
	p.ids, p.bound = ids, true
}

// Statement is one statement as written. Its exported fields describe the
// document; evaluation uses the form compiled by Parse, so changing them
// changes nothing.
type Statement struct {
	Sid    string
	Effect Effect

	Principal    *Principals // nil when absent
	NotPrincipal *Principals // nil when absent

	Action    []string
	NotAction []string

	Resource    []string
	NotResource []string

	Conditions []Condition // in document order

	c compiled
}

// Principals is the value of a Principal or NotPrincipal element.
type Principals struct {
	All           bool // the bare "*" form
	AWS           []string
	Service       []string
	Federated     []string
	CanonicalUser []string
}

// Condition is one key of one operator of a Condition block, as written.
type Condition struct {
	Operator string // e.g. "ForAnyValue:StringEqualsIfExists"
	Key      string // e.g. "kms:EncryptionContext:Purpose"
	Values   []string
}

// Error is a policy document that does not parse or validate. Its message is
// fit for a MalformedPolicyDocumentException.
type Error struct {
	Message string
	// Principal is, when the document names an "AWS" principal that is
	// not one (not an account, nor an IAM or STS ARN), that principal:
	// IAM names it in its own message.
	Principal string
	// Syntax is set when the document is not JSON at all: IAM answers
	// that in its own words.
	Syntax bool
}

func (e *Error) Error() string { return e.Message }

// Principal is who asks.
type Principal struct {
	// ARN is the caller, e.g. arn:aws:iam::111122223333:user/alice,
	// arn:aws:iam::111122223333:root or
	// arn:aws:sts::111122223333:assumed-role/role/session.
	ARN string
	// Account is the caller's 12-digit account id.
	Account string
	// RoleARN is, for an assumed-role session, the role:
	// arn:aws:iam::111122223333:role/role. Empty otherwise.
	RoleARN string
	// UserID is aws:userid; empty when unknown.
	UserID string
	// Username is aws:username, set for IAM users only.
	Username string
	// TokenIssueTime is aws:TokenIssueTime, when the caller's temporary
	// credentials were issued (RFC 3339, UTC); empty for long-term ones.
	TokenIssueTime string
}

// Context supplies the condition key values of a request. The engine asks
// only for keys a statement under evaluation needs, lower-cased (condition
// key names are case-insensitive, including the part after
// kms:EncryptionContext:), and asks again for every use: an implementation
// whose values are costly should remember them. ok=false, or no values,
// means the key is absent from the request. The returned slice is not kept
// or modified.
//
// These keys come from Request.Principal and are never asked of Context:
// aws:principalarn, aws:principalaccount, aws:principaltype, aws:userid,
// aws:username, aws:tokenissuetime, aws:multifactorauthpresent,
// aws:principalisawsservice, aws:viaawsservice and kms:calleraccount; nor
// is aws:resourceaccount, the account of Request.Resource.
type Context interface {
	Values(lowerKey string) (values []string, ok bool)
}

// MapContext is a Context backed by a map whose keys are lower-case.
type MapContext map[string][]string

// Values implements Context.
func (m MapContext) Values(lowerKey string) ([]string, bool) {
	v, ok := m[lowerKey]
	return v, ok
}

// Request is what is asked.
type Request struct {
	Principal Principal
	Action    string  // e.g. "kms:Encrypt"
	Resource  string  // e.g. the key ARN
	Context   Context // may be nil: no keys present
}

// Decision is what one policy says about a request.
type Decision struct {
	// Deny is an applicable Deny statement.
	Deny bool
	// Allow is an applicable Allow statement that names this principal
	// directly: by its ARN, by its role's ARN for an assumed-role session,
	// by "*", by the account when the caller is the account root itself, or
	// by a NotPrincipal that leaves it out. In an identity policy, any
	// applicable Allow statement.
	Allow bool
	// AccountAllow is an applicable Allow statement that names the
	// principal's account (arn:aws:iam::ACCOUNT:root or the bare id), which
	// in a key policy delegates the decision to the account's identity
	// policies. Never set by EvaluateIdentity.
	AccountAllow bool
}
