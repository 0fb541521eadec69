package identity

import (
	"context"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/policy"
)

// authorize decides an IAM or STS call on resource: an account root may do
// anything in its account; users and role sessions need an identity policy
// that allows the action and none that denies it. Conditions see the
// request ctx carries (WithRequest).
func (d *Directory) authorize(ctx context.Context, p *Principal, action, resource string) error {
	if p.Type == TypeRoot {
		return nil
	}
	dec := policy.EvaluateIdentities(p.Policies, &policy.Request{Principal: p.PolicyPrincipal(), Action: action, Resource: resource, Context: d.contextOf(ctx)})
	if dec.Deny {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", p.ARN, action, resource)
	}
	if !dec.Allow {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", p.ARN, action, resource, action)
	}
	return nil
}

// AuthorizeGlobal decides an action without resource-level permissions
// (reading the audit trail), by identity policy alone: an account root
// may; users and role sessions need an identity policy that allows the
// action on "*" and none that denies it. The messages are AWS's for such
// actions, which name no resource.
func (d *Directory) AuthorizeGlobal(ctx context.Context, p *Principal, action string) error {
	if p.Type == TypeRoot {
		return nil
	}
	dec := policy.EvaluateIdentities(p.Policies, &policy.Request{Principal: p.PolicyPrincipal(), Action: action, Resource: "*", Context: d.contextOf(ctx)})
	if dec.Deny {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s with an explicit deny in an identity-based policy", p.ARN, action)
	}
	if !dec.Allow {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s because no identity-based policy allows the %s action", p.ARN, action, action)
	}
	return nil
}

func denied(p *Principal, action, resource string) error {
	return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s", p.ARN, action, resource)
}
