package authz

import (
	"context"
	"slices"
	"strings"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
)

// ChildGrant is the grant a CreateGrant call asks for, which a grant that
// allows CreateGrant must cover.
type ChildGrant struct {
	Operations  []string
	Constraints *kmsapi.GrantConstraints
}

// contextOperations are the grant operations that take an encryption
// context: a grant's constraints apply to these alone.
var contextOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}

// grantAllows reports whether a grant on k lets caller perform action.
// It fails only if the grants of a key read from the store for this call
// cannot be read.
func grantAllows(caller *Caller, action string, k *keyrepo.Key, cond *Conditions) (bool, error) {
	op := strings.TrimPrefix(action, "kms:")
	grants, err := k.GranteeGrants(caller.Principal.ARN, caller.Principal.RoleARN)
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		if g.IsGrantee(&caller.Principal) && grantCovers(g, op, cond) {
			return true, nil
		}
	}
	return false, nil
}

// grantCovers decides one grant, as AWS KMS does: the grant must list the
// operation; its constraints bind the encryption context of the operations
// that take one; and a grant that allows CreateGrant allows only grants
// for a subset of its own operations, with constraints at least as strict
// as its own, so that a grantee can never hand on more than it holds.
func grantCovers(g *keyrepo.GrantRecord, op string, cond *Conditions) bool {
	if !slices.Contains(g.Operations, op) {
		return false
	}
	switch {
	case op == "CreateGrant":
		if cond.Child == nil {
			return false
		}
		for _, o := range cond.Child.Operations {
			if !slices.Contains(g.Operations, o) {
				return false
			}
		}
		return atLeastAsStrict(cond.Child.Constraints, g.Constraints)
	case slices.Contains(contextOperations, op):
		return constraintsHold(g.Constraints, cond.EC)
	}
	return true
}

// atLeastAsStrict reports whether every encryption context that child
// allows is allowed by parent. A grant may carry both constraints, and
// allows a context only if it meets both: a parent's exact context that
// lacks its own required pairs allows nothing, and so must its children.
func atLeastAsStrict(child, parent *kmsapi.GrantConstraints) bool {
	if parent == nil || (parent.EncryptionContextEquals == nil && parent.EncryptionContextSubset == nil) {
		return true
	}
	if child == nil {
		return false
	}
	if child.EncryptionContextEquals != nil {
		// The child allows that one context at most: the parent must
		// allow it, under all its constraints.
		return constraintsHold(parent, child.EncryptionContextEquals)
	}
	if parent.EncryptionContextEquals != nil {
		// Only one context satisfies the parent; a child without an exact
		// context allows others.
		return false
	}
	// The parent requires its pairs: the child must require them too.
	return constraintsHold(&kmsapi.GrantConstraints{EncryptionContextSubset: parent.EncryptionContextSubset}, child.EncryptionContextSubset)
}

// constraintsHold applies a grant's encryption context constraints: keys
// match regardless of case, values exactly.
func constraintsHold(c *kmsapi.GrantConstraints, ec map[string]string) bool {
	if c == nil {
		return true
	}
	// A constraint key the context holds in two cases has no one value:
	// the constraint does not hold.
	find := func(k string) (string, bool) {
		v, n := "", 0
		for ek, ev := range ec {
			if strings.EqualFold(ek, k) {
				v, n = ev, n+1
			}
		}
		return v, n == 1
	}
	if c.EncryptionContextEquals != nil {
		if len(ec) != len(c.EncryptionContextEquals) {
			return false
		}
		for k, v := range c.EncryptionContextEquals {
			if got, ok := find(k); !ok || got != v {
				return false
			}
		}
	}
	for k, v := range c.EncryptionContextSubset {
		if got, ok := find(k); !ok || got != v {
			return false
		}
	}
	return true
}

// RetireGrant decides whether caller may retire grant g of key k, for
// the call ctx. The grant decides, not the key policy (AWS KMS Developer
// Guide, "Retiring and revoking grants"): its retiring principal may, its
// grantee if it allows RetireGrant, and the root of the account that
// made it. An
// identity policy that allows kms:RetireGrant delegates it to the
// principals of the account that owns the key, and to those of an
// account the grant names as its retiring principal. An explicit deny of
// kms:RetireGrant in the caller's identity policies refuses whoever the
// grant names. The grant's constraint is the request's
// kms:GrantConstraintType and encryption context, as in CreateGrant.
func (a *Authorizer) RetireGrant(ctx context.Context, caller *Caller, g *keyrepo.GrantRecord, k *keyrepo.Key) error {
	const action = "kms:RetireGrant"
	cond := &Conditions{a: a, ctx: ctx, caller: caller, k: k}
	if c := g.Constraints; c != nil {
		switch {
		case c.EncryptionContextEquals != nil:
			cond.Extra = map[string]string{"kms:grantconstrainttype": "EncryptionContextEquals"}
			cond.EC = c.EncryptionContextEquals
		case c.EncryptionContextSubset != nil:
			cond.Extra = map[string]string{"kms:grantconstrainttype": "EncryptionContextSubset"}
			cond.EC = c.EncryptionContextSubset
		}
	}
	req := &policy.Request{Principal: caller.Principal, Action: action, Resource: k.ARN, Context: cond}
	id := policy.EvaluateIdentities(caller.Policies, req)
	switch {
	case id.Deny:
		return Denied(caller, action, k.ARN, "with an explicit deny in an identity-based policy")
	case cond.ambiguous:
		return Denied(caller, action, k.ARN, ambiguousWhy)
	case g.IsRetiring(&caller.Principal),
		g.IsGrantee(&caller.Principal) && slices.Contains(g.Operations, "RetireGrant"),
		caller.Root && caller.AccountID == g.Account:
		return nil
	case (caller.Root || id.Allow) && (caller.AccountID == g.KeyOwner() || namesAccount(g.Retiring, caller.AccountID)):
		return nil
	}
	return Denied(caller, action, k.ARN, "because the caller is neither the retiring principal nor a grantee allowed to retire this grant")
}

// namesAccount reports whether a grant's principal p is account itself:
// its id, or its root's ARN.
func namesAccount(p, account string) bool {
	return p != "" && (p == account || p == "arn:aws:iam::"+account+":root")
}
