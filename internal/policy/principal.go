package policy

import "strings"

// principalSet is a Principal or NotPrincipal element compiled for matching.
// Only the "AWS" kind can match: Service, Federated and CanonicalUser
// principals are kept in Principals for the record but never match a
// Principal, which is always an IAM identity here.
type principalSet struct {
	all      bool     // "*" or {"AWS": "*"}
	accounts []string // from 12-digit ids and arn:PARTITION:iam::ACCOUNT:root
	arns     []string // any other ARN, compared exactly
}

func (ps *principalSet) add(v string) {
	switch {
	case v == "*":
		ps.all = true
	case isAccountID(v):
		ps.accounts = append(ps.accounts, v)
	default:
		if acct, ok := rootAccount(v); ok {
			ps.accounts = append(ps.accounts, acct)
		} else {
			ps.arns = append(ps.arns, v)
		}
	}
}

// validAWSPrincipal reports whether v is a syntactically valid "AWS"
// principal: "*", an account id, or an IAM or STS ARN without wildcards.
func validAWSPrincipal(v string) bool {
	if v == "*" || isAccountID(v) {
		return true
	}
	if strings.ContainsAny(v, "*?") {
		return false
	}
	parts := strings.SplitN(v, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[5] == "" {
		return false
	}
	return (parts[2] == "iam" || parts[2] == "sts") && isAccountID(parts[4])
}

// hasRegion reports whether v, a valid "AWS" principal, is an ARN with a
// region. IAM and STS are global: their ARNs have none, and one with a
// region names no principal (it matches no request).
func hasRegion(v string) bool {
	parts := strings.SplitN(v, ":", 6)
	return len(parts) == 6 && parts[3] != ""
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// rootAccount returns ACCOUNT if arn is arn:PARTITION:iam::ACCOUNT:root.
func rootAccount(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, ":") // partition
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, "iam::")
	if !ok || len(rest) != len("123456789012:root") || !strings.HasSuffix(rest, ":root") {
		return "", false
	}
	acct := rest[:12]
	return acct, isAccountID(acct)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// match reports whether the set names p directly (its ARN, the role of its
// session, "*", or, for the account root itself, its account) and whether it
// names p's account. A user or role ARN of a bound policy names p only if
// p's unique id is the one it was bound to.
func (ps *principalSet) match(p *Principal, pol *Policy) (direct, account bool) {
	if ps.all {
		return true, false
	}
	if p.Account != "" && contains(ps.accounts, p.Account) {
		account = true
		if isRoot(p) {
			direct = true
		}
	}
	if p.ARN != "" && contains(ps.arns, p.ARN) && pol.holds(p.ARN, p.UserID) {
		direct = true
	}
	if p.RoleARN != "" && contains(ps.arns, p.RoleARN) && pol.holds(p.RoleARN, RoleID(p.UserID)) {
		direct = true
	}
	return direct, account
}

// excludes reports whether a NotPrincipal set leaves p out. AWS evaluates a
// caller as the chain account, then role, then session (or account, then
// user), and a NotPrincipal statement applies to the caller unless every
// link is listed: naming a user without its account does not exempt it.
func (ps *principalSet) excludes(p *Principal, pol *Policy) bool {
	if ps.all {
		return true
	}
	if p.Account == "" || !contains(ps.accounts, p.Account) {
		return false
	}
	if isRoot(p) {
		return true
	}
	if p.RoleARN != "" && !(contains(ps.arns, p.RoleARN) && pol.holds(p.RoleARN, RoleID(p.UserID))) {
		return false
	}
	return p.ARN != "" && contains(ps.arns, p.ARN) && pol.holds(p.ARN, p.UserID)
}

// holds reports whether a caller with unique id may be the principal arn
// names in pol: always for an unbound policy or an ARN that is not an IAM
// user's or role's, else only for the id arn was bound to.
func (pol *Policy) holds(arn, id string) bool {
	if pol == nil || !pol.bound || !IsUserOrRole(arn) {
		return true
	}
	want, ok := pol.ids[arn]
	return ok && id != "" && want == id
}

// RoleID is the role's unique id in a role session's aws:userid
// (AROA...:SESSION).
func RoleID(userID string) string {
	id, _, _ := strings.Cut(userID, ":")
	return id
}

// IsUserOrRole reports whether arn names an IAM user or role
// (arn:PARTITION:iam::ACCOUNT:user/... or :role/...), the principals a
// stored policy binds to their unique ids.
func IsUserOrRole(arn string) bool {
	parts := strings.SplitN(arn, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" &&
		(strings.HasPrefix(parts[5], "user/") || strings.HasPrefix(parts[5], "role/"))
}

func isRoot(p *Principal) bool {
	acct, ok := rootAccount(p.ARN)
	return ok && acct == p.Account
}
