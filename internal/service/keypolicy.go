package service

import (
	"context"
	"regexp"
	"strings"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

const defaultPolicyName = "default"

var (
	policyNamePattern = regexp.MustCompile(`^[\w]+$`)
	errLockout        = newErr(fault.MalformedPolicyDocument, "The new key policy will not allow you to update the key policy in the future.")
	errBadPrincipals  = newErr(fault.MalformedPolicyDocument, "Policy contains a statement with one or more invalid principals.")
	accountIDPattern  = regexp.MustCompile(`^\d{12}$`)
)

// policyName checks a PolicyName against the model's constraints.
func (v *violations) policyName(name string) {
	if v.given("policyName", name) {
		v.patterned("policyName", name, 1, 128, policyNamePattern, `[\w]+`)
	}
}

// checkPolicyName accepts only the one key policy name AWS KMS has. The
// name has passed request validation (policyName).
func checkPolicyName(name string) error {
	if name != "" && name != defaultPolicyName {
		return newErr(fault.NotFound, "No such policy exists")
	}
	return nil
}

// parseKeyPolicy validates a key policy document for key k (for a key
// being created or replicated, a stand-in: its record as it will be
// stored, and its ARN) as caller would set it: size, syntax, that
// every named principal exists, and unless bypass, that the caller could
// change the policy again afterwards. It returns the unique ids of the
// users and roles the policy names, to be stored with it
// (KeyRecord.PolicyPrincipalIDs).
func (s *Service) parseKeyPolicy(ctx context.Context, caller *Caller, doc string, k *keyrepo.Key, bypass bool) (*policy.Policy, map[string]string, error) {
	if err := checkPolicy(doc); err != nil {
		return nil, nil, err
	}
	p, err := policy.ParseResource(doc)
	if err != nil {
		return nil, nil, newErr(fault.MalformedPolicyDocument, "%s", err.Error())
	}
	var ids map[string]string
	for _, st := range p.Statements {
		for _, ps := range []*policy.Principals{st.Principal, st.NotPrincipal} {
			if ps == nil {
				continue
			}
			for _, a := range ps.AWS {
				id, ok, err := s.validPrincipal(ctx, a)
				if err != nil {
					return nil, nil, err
				}
				if !ok {
					return nil, nil, errBadPrincipals
				}
				if id != "" {
					if ids == nil {
						ids = make(map[string]string)
					}
					ids[a] = id
				}
			}
		}
	}
	if ids != nil {
		p.Bind(ids)
	}
	if bypass {
		return p, ids, nil
	}
	switch may, err := s.authz.MayPutKeyPolicy(ctx, caller, p, k); {
	case err != nil:
		return nil, nil, err
	case !may:
		return nil, nil, errLockout
	}
	return p, ids, nil
}

// validPrincipal accepts "*", a 12-digit account, an account root ARN, an
// assumed-role ARN, and a user or role ARN that exists, whose unique id it
// returns; err is the store's.
func (s *Service) validPrincipal(ctx context.Context, arn string) (id string, ok bool, err error) {
	switch {
	case arn == "*" || accountIDPattern.MatchString(arn):
		return "", true, nil
	case !strings.HasPrefix(arn, "arn:aws:"):
		return "", false, nil
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[3] != "" || !accountIDPattern.MatchString(parts[4]) {
		// IAM and STS ARNs have no region.
		return "", false, nil
	}
	res := parts[5]
	switch {
	case parts[2] == "iam" && res == "root":
		return "", true, nil
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		return "", true, nil
	case parts[2] == "iam" && (strings.HasPrefix(res, "user/") || strings.HasPrefix(res, "role/")):
		if s.principalID == nil {
			return "", true, nil
		}
		id, err := s.principalID(ctx, arn)
		return id, id != "", err
	}
	return "", false, nil
}

// GetKeyPolicy returns a key's policy document, in AWS's layout
// (policy.Pretty) whatever the layout it was put in.
func (s *Service) GetKeyPolicy(ctx context.Context, caller Caller, in *kmsapi.GetKeyPolicyInput) (*kmsapi.GetKeyPolicyOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.policyName(in.PolicyName)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:GetKeyPolicy", nil)
	if err != nil {
		return nil, err
	}
	doc, err := s.showPolicy(ctx, k.Rec.Policy, k.Rec.PolicyPrincipalIDs)
	if err != nil {
		return nil, err
	}
	return &kmsapi.GetKeyPolicyOutput{Policy: policy.Pretty(doc), PolicyName: defaultPolicyName}, nil
}

// showPolicy is a key policy as GetKeyPolicy shows it: each user or role
// it names that has been deleted since (or deleted and made again) shows
// as the unique id the policy was bound to, as on AWS. Such a principal
// matches no one, and a policy naming a bare id cannot be put back:
// whoever edits the policy sees what to remove.
func (s *Service) showPolicy(ctx context.Context, doc string, ids map[string]string) (string, error) {
	if len(ids) == 0 || s.principalID == nil {
		return doc, nil
	}
	var gone map[string]string
	for arn, id := range ids {
		if id == "" {
			continue // bound to no one when bound at a start (bindStored)
		}
		now, err := s.principalID(ctx, arn)
		if err != nil {
			return "", err
		}
		if now != id {
			if gone == nil {
				gone = make(map[string]string)
			}
			gone[arn] = id
		}
	}
	return policy.RenamePrincipals(doc, gone), nil
}

// PutKeyPolicy replaces a key's policy, refusing one that would lock the
// caller out unless BypassPolicyLockoutSafetyCheck.
func (s *Service) PutKeyPolicy(ctx context.Context, caller Caller, in *kmsapi.PutKeyPolicyInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.Policy == nil {
		v.add("Value null at 'policy' failed to satisfy constraint: Member must not be null")
	} else {
		v.policy(in.Policy)
	}
	v.policyName(in.PolicyName)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	k, err := s.resolve(ctx, caller, in.KeyID, keyrepo.IDOrARN)
	if err != nil {
		return nil, err
	}
	bypass := "false"
	if in.BypassPolicyLockoutSafetyCheck {
		bypass = "true"
	}
	cond := &authz.Conditions{Extra: map[string]string{"kms:bypasspolicylockoutsafetycheck": bypass}}
	if err := s.authz.Key(ctx, &caller, "kms:PutKeyPolicy", k, cond); err != nil {
		return nil, err
	}
	_, ids, err := s.parseKeyPolicy(ctx, &caller, *in.Policy, k, in.BypassPolicyLockoutSafetyCheck)
	if err != nil {
		return nil, err
	}
	_, err = s.mutateKey(ctx, caller, k.Rec.ID, "", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, _ string) error {
		if err := s.reauthorize(ctx, tx, &caller, "kms:PutKeyPolicy", k, rec, cond); err != nil {
			return err
		}
		rec.Policy, rec.PolicyPrincipalIDs = *in.Policy, ids
		return nil
	})
	return nil, err
}

// ListKeyPolicies lists the key's policy names: always just "default".
func (s *Service) ListKeyPolicies(ctx context.Context, caller Caller, in *kmsapi.ListKeyPoliciesInput) (*kmsapi.ListKeyPoliciesOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	marker, err := parseMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:ListKeyPolicies", nil)
	if err != nil {
		return nil, err
	}
	// One page, so no marker of this listing's: any is another's.
	if _, err := marker.position(newListing("ListKeyPolicies", k.Rec.Region, k.Rec.ID)); err != nil {
		return nil, err
	}
	return &kmsapi.ListKeyPoliciesOutput{PolicyNames: []string{defaultPolicyName}}, nil
}
