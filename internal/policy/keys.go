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
	if key == "aws:resourceaccount" {
		// The account that owns the resource asked for, as its ARN
		// says; absent for a request on no one resource ("*").
		if acct := arnAccount(r.Resource); acct != "" {
			return values{one: acct, n: 1}
		}
		return values{}
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

// principalKey answers the condition keys that describe the caller and how
// it called. handled is true for those keys even when the value is empty,
// that is, absent.
func principalKey(p *Principal, key string) (value string, handled bool) {
	switch key {
	case "aws:principalisawsservice", "aws:viaawsservice":
		// AWS puts these in every signed request's context. The caller
		// here is always an IAM principal calling for itself: no AWS
		// service is a principal of this server, nor calls it for one.
		if p.ARN == "" {
			return "", true
		}
		return "false", true
	case "aws:multifactorauthpresent":
		// Present, on AWS, exactly when the caller signs with temporary
		// credentials; no session here is started with MFA.
		if p.TokenIssueTime == "" {
			return "", true
		}
		return "false", true
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
	case "aws:tokenissuetime":
		return p.TokenIssueTime, true
	}
	return "", false
}

// arnAccount is the account field of an ARN
// (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE) when it is an account
// id, else "".
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !isAccountID(parts[4]) {
		return ""
	}
	return parts[4]
}

// principalType is aws:PrincipalType, read from the caller's ARN by its
// fields (arn:PARTITION:SERVICE::ACCOUNT:RESOURCE), not by a search of
// its text: a user's path may hold ":assumed-role/".
func principalType(p *Principal) string {
	if p.ARN == "" {
		return ""
	}
	if isRoot(p) {
		return "Account"
	}
	parts := strings.SplitN(p.ARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	switch service, res := parts[2], parts[5]; {
	case service == "sts" && strings.HasPrefix(res, "assumed-role/"):
		return "AssumedRole"
	case service == "sts" && strings.HasPrefix(res, "federated-user/"):
		return "FederatedUser"
	case service == "iam" && strings.HasPrefix(res, "user/"):
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
