package identity

import (
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/policy"
)

// authorize decides an IAM or STS call on resource: an account root may do
// anything in its account; users and role sessions need an identity policy
// that allows the action and none that denies it.
func authorize(p *Principal, action, resource string) error {
	if p.Type == TypeRoot {
		return nil
	}
	req := &policy.Request{Principal: p.PolicyPrincipal(), Action: action, Resource: resource}
	allowed := false
	for _, pol := range p.Policies {
		d := pol.EvaluateIdentity(req)
		if d.Deny {
			return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", p.ARN, action, resource)
		}
		allowed = allowed || d.Allow
	}
	if !allowed {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", p.ARN, action, resource, action)
	}
	return nil
}

func denied(p *Principal, action, resource string) error {
	return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s", p.ARN, action, resource)
}
