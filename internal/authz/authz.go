// Package authz decides who may do what with a key, as AWS KMS does
// (reference §8.1): an explicit Deny in the key policy or an identity
// policy refuses; otherwise the key policy must allow the caller itself, or
// name the caller's account (which delegates to the account's identity
// policies: its root is allowed, its users and roles need an identity
// policy that allows), or a grant on the key must allow the operation,
// within its constraints. It also holds the key-policy lockout check.
//
// It reads keys (keyrepo) and policies (policy) and changes nothing;
// identity policies are evaluated as a set by policy.EvaluateIdentities,
// the one evaluator shared with internal/identity.
package authz

import (
	"context"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/policy"
)

// Caller is the authenticated principal a request is made as.
type Caller struct {
	AccountID string // 12-digit account id
	ARN       string // e.g. arn:aws:iam::111122223333:root
	Root      bool   // the account's root
	Principal policy.Principal
	Policies  []*policy.Policy // identity policies of the principal
	SourceIP  string
	// SecureTransport is whether the request came over TLS (or through
	// a TLS-terminating proxy the operator declared): aws:SecureTransport.
	SecureTransport bool
	// Region is the region the request was made in (its signature's
	// credential scope); empty means the service's default region.
	Region string
}

// Authorizer makes the decisions. It is safe for concurrent use.
type Authorizer struct {
	now     func() time.Time
	region  string
	aliases func(ctx context.Context, region, keyID string) ([]string, error)
}

// New returns an Authorizer that reads the time from now (for
// aws:CurrentTime) and a key's alias names from aliases (for
// kms:ResourceAliases, read only when a policy asks). A decision whose
// policies asked for the alias names, and whose read of them failed, is
// that read's error, not a decision as if the key had no alias: that
// would skip a Deny on them. region is the service's default region:
// aws:RequestedRegion of a caller that names none.
func New(now func() time.Time, region string, aliases func(ctx context.Context, region, keyID string) ([]string, error)) *Authorizer {
	return &Authorizer{now: now, region: region, aliases: aliases}
}

// MayPutKeyPolicy is the lockout safety check: whether policy p, put on
// key k, would still let caller put a key policy on it. k is the key as it
// will be (for a key being created, a stand-in with its spec, usage,
// origin, tags, region and id), so that conditions on the key's own keys
// (kms:KeySpec, aws:ResourceTag/...) are judged as the later call will
// judge them. An explicit deny in the caller's identity policies refuses,
// as it would refuse that later PutKeyPolicy. err is that of a read the
// decision needed (the key's alias names), which decided nothing.
func (a *Authorizer) MayPutKeyPolicy(ctx context.Context, caller *Caller, p *policy.Policy, k *keyrepo.Key) (bool, error) {
	// The later call is judged as it would be made: without the bypass.
	cond := &Conditions{ctx: ctx, a: a, caller: caller, k: k, Extra: map[string]string{"kms:bypasspolicylockoutsafetycheck": "false"}}
	req := &policy.Request{Principal: caller.Principal, Action: "kms:PutKeyPolicy", Resource: k.ARN, Context: cond}
	d := p.EvaluateResource(req)
	id := policy.EvaluateIdentities(caller.Policies, req)
	if cond.readErr != nil {
		return false, cond.readErr
	}
	return !d.Deny && !id.Deny && !cond.ambiguous && (d.Allow || (d.AccountAllow && (caller.Root || id.Allow))), nil
}

// Key decides whether caller may perform action (e.g. "kms:Encrypt")
// on key k. cond may be nil when the operation has no condition keys of its
// own. What the decision reads (the key's alias names) is read within ctx,
// the call's.
func (a *Authorizer) Key(ctx context.Context, caller *Caller, action string, k *keyrepo.Key, cond *Conditions) error {
	if cond == nil {
		cond = &Conditions{}
	}
	if cond.k != k {
		// The aliases remembered are another key's.
		cond.resourceAliases, cond.aliasesLoaded = nil, false
	}
	cond.ctx, cond.a, cond.caller, cond.k, cond.ambiguous, cond.readErr = ctx, a, caller, k, false, nil
	req := &policy.Request{Principal: caller.Principal, Action: action, Resource: k.ARN, Context: cond}
	kd := policy.Decision{}
	if k.Policy != nil {
		kd = k.Policy.EvaluateResource(req)
	}
	id := policy.EvaluateIdentities(caller.Policies, req)
	if cond.readErr != nil {
		return cond.readErr
	}
	if kd.Deny {
		return Denied(caller, action, k.ARN, "with an explicit deny in a resource-based policy")
	}
	if id.Deny {
		return Denied(caller, action, k.ARN, "with an explicit deny in an identity-based policy")
	}
	if cond.ambiguous {
		return Denied(caller, action, k.ARN, ambiguousWhy)
	}
	idAllow := id.Allow
	sameAccount := caller.AccountID == k.Rec.Account
	switch {
	case kd.Allow && (sameAccount || caller.Root || idAllow):
		return nil
	case kd.AccountAllow && (caller.Root || idAllow):
		return nil
	}
	switch ok, err := grantAllows(caller, action, k, cond); {
	case err != nil:
		return err
	case ok:
		return nil
	}
	switch {
	case kd.AccountAllow || kd.Allow:
		return Denied(caller, action, k.ARN, "because no identity-based policy allows the "+action+" action")
	}
	return Denied(caller, action, k.ARN, "because no resource-based policy allows the "+action+" action")
}

// Account decides an operation that AWS authorizes by identity
// policy alone (CreateKey, ListKeys, ListAliases, GenerateRandom, the alias
// side of alias operations): the root may, users and roles need an
// identity policy that allows it.
func (a *Authorizer) Account(caller *Caller, action, resource string, cond *Conditions) error {
	if cond == nil {
		cond = &Conditions{}
	}
	cond.a, cond.caller, cond.ambiguous = a, caller, false
	req := &policy.Request{Principal: caller.Principal, Action: action, Resource: resource, Context: cond}
	id := policy.EvaluateIdentities(caller.Policies, req)
	if id.Deny {
		return Denied(caller, action, resource, "with an explicit deny in an identity-based policy")
	}
	if cond.ambiguous {
		return Denied(caller, action, resource, ambiguousWhy)
	}
	if !caller.Root && !id.Allow {
		return Denied(caller, action, resource, "because no identity-based policy allows the "+action+" action")
	}
	return nil
}

// ambiguousWhy explains a denial because a policy condition named an
// encryption context key or tag the request holds in two cases.
const ambiguousWhy = "because a policy condition names an encryption context key or tag that the request holds more than once, in different cases"

// Denied is AWS's AccessDenied for caller, action and resource, saying why.
func Denied(caller *Caller, action, resource, why string) error {
	return fault.Newf(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s", caller.ARN, action, resource, why)
}
