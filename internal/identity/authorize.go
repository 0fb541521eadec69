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
	return d.authorizeShown(ctx, p, action, resource, resource)
}

// authorizeNamed is authorize for a call on the user or role (kind "user"
// or "role") that a request names, decided before the caller is told
// whether it exists, so that a caller who may not act on it learns
// nothing of it: the decision is on arn, the entity's own, or when there
// is none ("") the ARN name would have without a path; and a refusal
// names it as AWS does, "user NAME", as the caller wrote it, whatever its
// path and whether or not it exists.
func (d *Directory) authorizeNamed(ctx context.Context, p *Principal, action, kind, name, arn string) error {
	if arn == "" {
		arn = "arn:aws:iam::" + p.Account + ":" + kind + "/" + name
	}
	return d.authorizeShown(ctx, p, action, arn, kind+" "+name)
}

// authorizeShown decides action on resource, and names the resource as
// shown in a refusal.
func (d *Directory) authorizeShown(ctx context.Context, p *Principal, action, resource, shown string) error {
	if p.Type == TypeRoot {
		return nil
	}
	dec := policy.EvaluateIdentities(p.Policies, &policy.Request{Principal: p.PolicyPrincipal(), Action: action, Resource: resource, Context: d.contextOf(ctx)})
	if dec.Deny {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", p.ARN, action, shown)
	}
	if !dec.Allow {
		return errf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", p.ARN, action, shown, action)
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
