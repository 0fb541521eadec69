package policy

import (
	"errors"
	"fmt"
	"strings"
)

// kind is what a document is parsed as.
type kind uint8

const (
	kindAny         kind = iota // Parse: grammar only
	kindResource                // ParseResource: a key policy
	kindIdentity                // ParseIdentity: an identity policy
	kindTrust                   // ParseTrust: a role's trust policy
	kindStoredTrust             // ParseStoredTrust: one as an earlier version stored it
)

// written reports whether k is the kind of a document being written, to
// which rules added since earlier versions stored documents apply.
func (k kind) written() bool { return k == kindResource || k == kindTrust }

// compiled is a statement in the form evaluation uses.
type compiled struct {
	// applies is false for a statement with neither Resource nor
	// NotResource, which a key policy stored before ParseResource
	// refused it may hold, and which never applies.
	applies bool
	deny    bool

	hasPrincipal bool
	notPrincipal bool
	principals   principalSet

	notAction bool
	actions   []pattern

	notResource bool
	resources   []pattern

	conds []condition
}

// Parse parses and validates a policy document against the policy grammar,
// whatever its kind: a statement may have a Principal or not, and may lack
// Resource (it then never applies). A failure is an *Error whose message
// names the statement and what is wrong with it.
func Parse(doc string) (*Policy, error) { return parse(doc, kindAny) }

// ParseResource is Parse for a resource-based policy (a key policy): every
// statement needs a Principal or NotPrincipal, and a Resource or
// NotResource.
func ParseResource(doc string) (*Policy, error) { return parse(doc, kindResource) }

// ParseStoredResource is ParseResource for a key policy read back from the
// store, which ParseResource accepted when it was set: it takes what an
// earlier version accepted too (an Allow with NotPrincipal, or a statement
// without Resource, both of which evaluation applies to no one), so that a
// rule added since does not leave a stored key without its policy.
func ParseStoredResource(doc string) (*Policy, error) { return parse(doc, kindAny) }

// ParseIdentity is Parse for an identity-based policy: no statement may have
// a Principal or NotPrincipal, and every statement needs a Resource or
// NotResource.
func ParseIdentity(doc string) (*Policy, error) { return parse(doc, kindIdentity) }

// ParseTrust is ParseResource for a role's trust policy, whose statements
// have no Resource: each applies to the role it is attached to. As in IAM,
// a Resource or NotResource is refused.
func ParseTrust(doc string) (*Policy, error) { return parse(doc, kindTrust) }

// ParseStoredTrust is ParseTrust for a trust policy read back from the
// store: it takes a Resource or NotResource, which an earlier version
// accepted, and matches it against the role's ARN as that version did,
// so that a role keeps working as it did.
func ParseStoredTrust(doc string) (*Policy, error) { return parse(doc, kindStoredTrust) }

// CheckIdentitySids applies IAM's rule for the statement ids of an
// identity policy being written: each is alphanumeric, and no two
// statements share one. It is not applied to policies read back from the
// store, which earlier versions accepted without it.
func CheckIdentitySids(p *Policy) error {
	seen := make(map[string]bool, len(p.Statements))
	for _, st := range p.Statements {
		for _, r := range st.Sid {
			if !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z') {
				return fail("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")
			}
		}
		if st.Sid == "" {
			continue
		}
		if seen[st.Sid] {
			return fail("Statement IDs (SID) in a single policy must be unique.")
		}
		seen[st.Sid] = true
	}
	return nil
}

const invalidPrincipals = "Policy contains a statement with one or more invalid principals."

func fail(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

func parse(doc string, k kind) (*Policy, error) {
	root, err := decodeJSON(doc)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("The policy is not valid JSON: %v.", err), Syntax: true}
	}
	if root.kind != jsonObject {
		return nil, fail("The policy must be a JSON object.")
	}
	p := &Policy{textBytes: len(doc)}
	var stmts *jsonValue
	for _, m := range root.obj {
		switch m.name {
		case "Version":
			if m.val.kind != jsonString || (m.val.str != "2012-10-17" && m.val.str != "2008-10-17") {
				return nil, fail(`Version must be "2012-10-17" or "2008-10-17".`)
			}
			p.Version = m.val.str
		case "Id":
			if m.val.kind != jsonString {
				return nil, fail("Id must be a string.")
			}
			p.ID = m.val.str
		case "Statement":
			stmts = &m.val
		default:
			return nil, fail("The policy has an unknown element %s.", quote(m.name))
		}
	}
	if stmts == nil {
		return nil, fail("The policy has no Statement.")
	}
	vars := p.Version == "2012-10-17"
	switch stmts.kind {
	case jsonObject:
		st, err := parseStatement("Statement", stmts, k, vars)
		if err != nil {
			return nil, err
		}
		p.Statements = []Statement{st}
	case jsonArray:
		if len(stmts.arr) == 0 {
			return nil, fail("Statement must not be empty.")
		}
		p.Statements = make([]Statement, 0, len(stmts.arr))
		for i := range stmts.arr {
			st, err := parseStatement(fmt.Sprintf("Statement[%d]", i), &stmts.arr[i], k, vars)
			if err != nil {
				return nil, err
			}
			p.Statements = append(p.Statements, st)
		}
	default:
		return nil, fail("Statement must be an object or an array of objects.")
	}
	p.patternBytes = patternBytes(p.Statements)
	return p, nil
}

// elements records which of the paired statement elements are present.
type elements struct {
	action, notAction, resource, notResource bool
}

func parseStatement(at string, v *jsonValue, k kind, vars bool) (Statement, error) {
	var st Statement
	if v.kind != jsonObject {
		return st, fail("%s must be an object.", at)
	}
	var has elements
	for _, m := range v.obj {
		var err error
		switch m.name {
		case "Sid":
			if m.val.kind != jsonString {
				return st, fail("%s.Sid must be a string.", at)
			}
			st.Sid = m.val.str
		case "Effect":
			if m.val.kind != jsonString || (m.val.str != string(Allow) && m.val.str != string(Deny)) {
				return st, fail(`%s.Effect must be "Allow" or "Deny".`, at)
			}
			st.Effect = Effect(m.val.str)
		case "Principal":
			st.Principal, err = parsePrincipals(&m.val, &st.c.principals, k.written())
		case "NotPrincipal":
			st.NotPrincipal, err = parsePrincipals(&m.val, &st.c.principals, k.written())
		case "Action":
			st.Action, err = actions(at, m.name, &m.val)
			has.action = true
		case "NotAction":
			st.NotAction, err = actions(at, m.name, &m.val)
			has.notAction = true
		case "Resource":
			st.Resource, err = resources(at, m.name, &m.val)
			has.resource = true
		case "NotResource":
			st.NotResource, err = resources(at, m.name, &m.val)
			has.notResource = true
		case "Condition":
			st.Conditions, st.c.conds, err = conditions(at, &m.val, vars)
		default:
			return st, fail("%s has an unknown element %s.", at, quote(m.name))
		}
		if err != nil {
			return st, err
		}
	}
	if err := checkStatement(at, &st, has, k); err != nil {
		return st, err
	}
	if (k == kindTrust || k == kindStoredTrust) && !has.resource && !has.notResource {
		st.Resource, has.resource = []string{"*"}, true
	}
	compileStatement(&st, has, vars)
	return st, nil
}

// checkStatement checks the elements a statement must have, or must not
// have together.
func checkStatement(at string, st *Statement, has elements, k kind) error {
	switch {
	case st.Effect == "":
		return fail("%s has no Effect.", at)
	case st.Principal != nil && st.NotPrincipal != nil:
		return fail("%s has both Principal and NotPrincipal.", at)
	case has.action && has.notAction:
		return fail("%s has both Action and NotAction.", at)
	case !has.action && !has.notAction:
		return fail("%s has neither Action nor NotAction.", at)
	case has.resource && has.notResource:
		return fail("%s has both Resource and NotResource.", at)
	}
	hasPrincipal := st.Principal != nil || st.NotPrincipal != nil
	trust := k == kindTrust || k == kindStoredTrust
	switch {
	case k == kindTrust && has.resource:
		// IAM's words. A trust policy applies to its role alone: a
		// Resource naming anything else (the role's ARN without its
		// path, say) would leave the statement applying to no one.
		return fail("Has prohibited field Resource")
	case k == kindTrust && has.notResource:
		return fail("Has prohibited field NotResource")
	case trust && st.NotPrincipal != nil:
		// IAM: a role trust policy cannot use NotPrincipal, whose Allow
		// would let in every principal of every account but those named.
		return fail("%s has prohibited field NotPrincipal: a role trust policy names whom it trusts with Principal.", at)
	case k == kindResource && st.NotPrincipal != nil && st.Effect != Deny:
		// IAM: NotPrincipal is for Deny only. An Allow with it would let
		// in, directly and without an identity policy, every principal
		// of every account but those named; even a user named is let in
		// unless its account is named too.
		return fail("%s has NotPrincipal with Effect Allow: NotPrincipal may be used only with Deny.", at)
	case (k == kindResource || trust) && !hasPrincipal:
		return fail("%s has neither Principal nor NotPrincipal, which a key policy statement needs.", at)
	case k == kindIdentity && hasPrincipal:
		// IAM's words: an identity policy applies to its owner.
		return fail("Policy document should not specify a principal.")
	case (k == kindIdentity || k == kindResource) && !has.resource && !has.notResource:
		// AWS KMS has refused a key policy statement without Resource
		// since August 2025; one stored before applies to no one, so a
		// Deny written without it would never have denied.
		return fail("%s has neither Resource nor NotResource.", at)
	}
	return nil
}

// compileStatement fills in st.c beyond the principals and conditions,
// which parseStatement compiled as it read them.
func compileStatement(st *Statement, has elements, vars bool) {
	c := &st.c
	c.applies = has.resource || has.notResource
	c.deny = st.Effect == Deny
	c.hasPrincipal = st.Principal != nil || st.NotPrincipal != nil
	c.notPrincipal = st.NotPrincipal != nil
	c.notAction = has.notAction
	c.notResource = has.notResource
	actionSyntax := syntax{wild: true, fold: true}
	for _, a := range st.Action {
		c.actions = append(c.actions, compilePattern(a, actionSyntax))
	}
	for _, a := range st.NotAction {
		c.actions = append(c.actions, compilePattern(a, actionSyntax))
	}
	resourceSyntax := syntax{wild: true, vars: vars, resource: true}
	for _, r := range st.Resource {
		c.resources = append(c.resources, compilePattern(r, resourceSyntax))
	}
	for _, r := range st.NotResource {
		c.resources = append(c.resources, compilePattern(r, resourceSyntax))
	}
}

// stringList reads a string or a non-empty array of strings.
func stringList(v *jsonValue) ([]string, bool) {
	switch v.kind {
	case jsonString:
		return []string{v.str}, true
	case jsonArray:
		if len(v.arr) == 0 {
			return nil, false
		}
		out := make([]string, len(v.arr))
		for i, e := range v.arr {
			if e.kind != jsonString {
				return nil, false
			}
			out[i] = e.str
		}
		return out, true
	}
	return nil, false
}

func actions(at, name string, v *jsonValue) ([]string, error) {
	list, ok := stringList(v)
	if !ok {
		return nil, fail("%s.%s must be a string or a non-empty array of strings.", at, name)
	}
	for _, a := range list {
		if !validAction(a) {
			return nil, fail("%s.%s has an invalid action %s.", at, name, quote(a))
		}
	}
	return list, nil
}

// validAction accepts "*" and SERVICE:NAME, where NAME may hold wildcards.
func validAction(a string) bool {
	if a == "*" {
		return true
	}
	service, name, ok := strings.Cut(a, ":")
	if !ok || service == "" || name == "" {
		return false
	}
	for i := 0; i < len(service); i++ {
		if c := service[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '*' && c != '?' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func resources(at, name string, v *jsonValue) ([]string, error) {
	list, ok := stringList(v)
	if !ok {
		return nil, fail("%s.%s must be a string or a non-empty array of strings.", at, name)
	}
	for _, r := range list {
		if r == "" {
			return nil, fail("%s.%s has an empty resource.", at, name)
		}
	}
	return list, nil
}

// parsePrincipals reads a Principal or NotPrincipal. An "AWS" principal
// with a region is refused only in a document being written (written): a
// stored one an earlier version took still parses, applying to no one.
func parsePrincipals(v *jsonValue, set *principalSet, written bool) (*Principals, error) {
	ps := &Principals{}
	switch v.kind {
	case jsonString:
		if v.str != "*" {
			return nil, &Error{Message: invalidPrincipals}
		}
		ps.All = true
		set.all = true
		return ps, nil
	case jsonObject:
	default:
		return nil, &Error{Message: invalidPrincipals}
	}
	if len(v.obj) == 0 {
		return nil, &Error{Message: invalidPrincipals}
	}
	for _, m := range v.obj {
		list, ok := stringList(&m.val)
		if !ok {
			return nil, &Error{Message: invalidPrincipals}
		}
		switch m.name {
		case "AWS":
			for _, p := range list {
				if !validAWSPrincipal(p) || written && hasRegion(p) {
					return nil, &Error{Message: invalidPrincipals, Principal: p}
				}
				set.add(p)
			}
			ps.AWS = list
		case "Service":
			ps.Service = list
		case "Federated":
			ps.Federated = list
		case "CanonicalUser":
			ps.CanonicalUser = list
		default:
			return nil, &Error{Message: invalidPrincipals}
		}
	}
	return ps, nil
}

func conditions(at string, v *jsonValue, vars bool) ([]Condition, []condition, error) {
	if v.kind != jsonObject {
		return nil, nil, fail("%s.Condition must be an object.", at)
	}
	var written []Condition
	var compiled []condition
	for _, op := range v.obj {
		if op.val.kind != jsonObject {
			return nil, nil, fail("%s.Condition[%s] must be an object.", at, quote(op.name))
		}
		for _, key := range op.val.obj {
			where := fmt.Sprintf("%s.Condition[%s][%s]", at, quote(op.name), quote(key.name))
			vals, ok := conditionValues(&key.val)
			if !ok {
				return nil, nil, fail("%s must be a string, number or boolean, or an array of them.", where)
			}
			c, err := compileCondition(op.name, key.name, vals, vars)
			if err != nil {
				var pe *Error
				if errors.As(err, &pe) {
					return nil, nil, pe
				}
				return nil, nil, fail("%s: %v.", where, err)
			}
			written = append(written, Condition{Operator: op.name, Key: key.name, Values: vals})
			compiled = append(compiled, c)
		}
	}
	return written, compiled, nil
}

// conditionValues reads a scalar or an array of scalars as strings: numbers
// keep their literal text and booleans become "true" or "false".
func conditionValues(v *jsonValue) ([]string, bool) {
	scalar := func(e *jsonValue) bool {
		return e.kind == jsonString || e.kind == jsonNumber || e.kind == jsonBool
	}
	if scalar(v) {
		return []string{v.str}, true
	}
	if v.kind != jsonArray {
		return nil, false
	}
	out := make([]string, len(v.arr))
	for i := range v.arr {
		if !scalar(&v.arr[i]) {
			return nil, false
		}
		out[i] = v.arr[i].str
	}
	return out, true
}
