package policy

// EvaluateResource evaluates p as a resource-based policy (a key policy):
// a statement applies only to the principals its Principal names, or to
// those its NotPrincipal leaves out (for a Deny; an Allow with
// NotPrincipal applies to no one); a statement with neither applies to
// no one.
func (p *Policy) EvaluateResource(r *Request) Decision { return p.evaluate(r, true) }

// EvaluateIdentity evaluates p as an identity-based policy attached to
// r.Principal: every applicable Allow statement sets Allow. A Principal or
// NotPrincipal element, which only Parse lets through, is still honoured.
func (p *Policy) EvaluateIdentity(r *Request) Decision { return p.evaluate(r, false) }

// EvaluateIdentities evaluates a principal's identity-based policies
// together, as AWS does: Deny if any denies (the others are not
// evaluated), Allow if any allows. This is the one evaluation of a set of
// identity policies every authorizer uses.
func EvaluateIdentities(policies []*Policy, r *Request) Decision {
	var d Decision
	for _, p := range policies {
		pd := p.EvaluateIdentity(r)
		if pd.Deny {
			return Decision{Deny: true}
		}
		d.Allow = d.Allow || pd.Allow
	}
	return d
}

// Allows reports whether p, as a resource-based policy, allows r directly or
// through the account (AccountAllow) without denying it. Callers use it for
// the lockout safety check: a new key policy must still let its author put a
// key policy.
func (p *Policy) Allows(r *Request) bool {
	d := p.EvaluateResource(r)
	return !d.Deny && (d.Allow || d.AccountAllow)
}

func (p *Policy) evaluate(r *Request, resource bool) Decision {
	var d Decision
	for i := range p.Statements {
		c := &p.Statements[i].c
		if !c.applies {
			continue
		}
		// Skip what cannot change the decision.
		if c.deny && d.Deny || !c.deny && d.Allow && (d.AccountAllow || !resource) {
			continue
		}
		if matchAny(c.actions, r.Action, r) == c.notAction {
			continue
		}
		direct, account := true, false
		if c.hasPrincipal || resource {
			direct, account = c.principalMatch(&r.Principal, p)
			if !direct && !account {
				continue
			}
		}
		if matchAny(c.resources, r.Resource, r) == c.notResource {
			continue
		}
		if !c.conditionsHold(r) {
			continue
		}
		switch {
		case c.deny:
			d.Deny = true
		case !resource:
			d.Allow = true
		default:
			d.Allow = d.Allow || direct
			d.AccountAllow = d.AccountAllow || account
		}
	}
	return d
}

// principalMatch reports whether the statement applies to p, directly or
// through p's account. A statement with no principal element applies to no
// one.
func (c *compiled) principalMatch(p *Principal, pol *Policy) (direct, account bool) {
	switch {
	case !c.hasPrincipal:
		return false, false
	case c.notPrincipal && !c.deny:
		// An Allow with NotPrincipal, which ParseResource refuses, in a
		// policy stored before it did: it lets no one in.
		return false, false
	case c.notPrincipal:
		return !c.principals.excludes(p, pol), false
	}
	return c.principals.match(p, pol)
}

func (c *compiled) conditionsHold(r *Request) bool {
	for i := range c.conds {
		if !c.conds[i].eval(r) {
			return false
		}
	}
	return true
}
