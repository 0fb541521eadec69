package policy

import "strings"

// values is a request's values for one condition key, held without
// allocating whether they come from the Principal (one) or the Context
// (a slice).
type values struct {
	one  string
	many []string
	n    int
}

func (v values) len() int { return v.n }

func (v values) at(i int) string {
	if v.many != nil {
		return v.many[i]
	}
	return v.one
}

// lookup returns the request's values for a lower-cased condition key.
func lookup(r *Request, key string) values {
	if s, ok := principalKey(&r.Principal, key); ok {
		if s == "" {
			return values{}
		}
		return values{one: s, n: 1}
	}
	if r.Context == nil {
		return values{}
	}
	vs, ok := r.Context.Values(key)
	if !ok {
		return values{}
	}
	return values{many: vs, n: len(vs)}
}

// principalKey answers the condition keys that describe the caller. handled
// is true for those keys even when the value is empty, that is, absent.
func principalKey(p *Principal, key string) (value string, handled bool) {
	switch key {
	case "aws:principalarn":
		// For a role session, AWS gives the role's ARN.
		if p.RoleARN != "" {
			return p.RoleARN, true
		}
		return p.ARN, true
	case "aws:principalaccount", "kms:calleraccount":
		return p.Account, true
	case "aws:userid":
		return p.UserID, true
	case "aws:username":
		return p.Username, true
	case "aws:principaltype":
		return principalType(p), true
	}
	return "", false
}

func principalType(p *Principal) string {
	switch {
	case p.ARN == "":
		return ""
	case isRoot(p):
		return "Account"
	case strings.Contains(p.ARN, ":assumed-role/"):
		return "AssumedRole"
	case strings.Contains(p.ARN, ":federated-user/"):
		return "FederatedUser"
	case strings.Contains(p.ARN, ":user/"):
		return "User"
	}
	return ""
}

// resolve returns the value of a policy variable: the key's single value,
// else its default. A key that is absent or has several values, with no
// default, does not resolve, and the pattern holding it matches nothing.
func resolve(r *Request, v *elem) (string, bool) {
	if vs := lookup(r, v.text); vs.len() == 1 {
		return vs.at(0), true
	}
	return v.def, v.hasDef
}
