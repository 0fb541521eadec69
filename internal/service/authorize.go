package service

import (
	"context"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// Authorization follows AWS KMS (reference §8.1): an explicit Deny in the key
// policy or an identity policy refuses; otherwise the key policy must allow
// the caller itself, or name the caller's account (which delegates to the
// account's identity policies: its root is allowed, its users and roles
// need an identity policy that allows), or a grant on the key must allow
// the operation.

// conditions supplies the condition keys of one request to the policy
// engine. Values are computed only when a policy asks for them.
type conditions struct {
	s      *Service
	caller *Caller
	k      *keyrepo.Key
	ec     map[string]string
	alias  string              // the alias name the request used, if any
	extra  map[string]string   // operation-specific keys, lowercase
	multi  map[string][]string // operation-specific multi-valued keys
	tags   []kmsapi.Tag        // aws:RequestTag for CreateKey/TagResource
	child  *childGrant         // CreateGrant: the grant asked for

	resourceAliases []string
	aliasesLoaded   bool
}

// Values implements policy.Context.
func (c *conditions) Values(key string) ([]string, bool) {
	if v, ok := c.extra[key]; ok {
		return []string{v}, true
	}
	if v, ok := c.multi[key]; ok {
		return v, len(v) > 0
	}
	switch {
	case strings.HasPrefix(key, "kms:encryptioncontext:"):
		want := key[len("kms:encryptioncontext:"):]
		for k, v := range c.ec {
			if strings.EqualFold(k, want) {
				return []string{v}, true
			}
		}
		return nil, false
	case key == "kms:encryptioncontextkeys":
		if len(c.ec) == 0 {
			return nil, false
		}
		out := make([]string, 0, len(c.ec))
		for k := range c.ec {
			out = append(out, k)
		}
		return out, true
	case key == "kms:requestalias":
		return one(c.alias)
	case key == "aws:sourceip":
		return one(c.caller.SourceIP)
	case key == "aws:currenttime":
		return []string{c.s.now().UTC().Format(time.RFC3339)}, true
	case key == "aws:epochtime":
		return []string{strconv.FormatInt(c.s.now().Unix(), 10)}, true
	case key == "aws:securetransport":
		return []string{"false"}, true
	case key == "aws:tagkeys" && c.tags != nil:
		out := make([]string, len(c.tags))
		for i, t := range c.tags {
			out[i] = t.TagKey
		}
		return out, true
	case strings.HasPrefix(key, "aws:requesttag/"):
		for _, t := range c.tags {
			if strings.EqualFold(t.TagKey, key[len("aws:requesttag/"):]) {
				return []string{t.TagValue}, true
			}
		}
		return nil, false
	}
	if c.k == nil {
		return nil, false
	}
	switch {
	case key == "kms:keyspec":
		return one(c.k.Rec.KeySpec)
	case key == "kms:keyusage":
		return one(c.k.Rec.KeyUsage)
	case key == "kms:keyorigin":
		return one(c.k.Rec.Origin)
	case key == "kms:multiregion":
		return []string{"false"}, true
	case strings.HasPrefix(key, "aws:resourcetag/"):
		for _, t := range c.k.Rec.Tags {
			if strings.EqualFold(t.TagKey, key[len("aws:resourcetag/"):]) {
				return []string{t.TagValue}, true
			}
		}
		return nil, false
	case key == "kms:resourcealiases":
		if !c.aliasesLoaded {
			c.aliasesLoaded = true
			c.resourceAliases = c.s.keyAliases(context.Background(), c.k.Rec.ID)
		}
		return c.resourceAliases, len(c.resourceAliases) > 0
	}
	return nil, false
}

func one(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	return []string{s}, true
}

// keyAliases lists the alias names of a key, for kms:ResourceAliases.
func (s *Service) keyAliases(ctx context.Context, id string) []string {
	var out []string
	prefix := keyrepo.KeyAliasPrefix(id)
	s.store.View(ctx, func(tx store.Tx) error {
		out = out[:0]
		return tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
			out = append(out, string(k[len(prefix):]))
			return true, nil
		})
	})
	return out
}

// authorize decides whether caller may perform action (e.g. "kms:Encrypt")
// on key k. cond may be nil when the operation has no condition keys of its
// own.
func (s *Service) authorize(caller *Caller, action string, k *keyrepo.Key, cond *conditions) error {
	if cond == nil {
		cond = &conditions{}
	}
	cond.s, cond.caller, cond.k = s, caller, k
	req := &policy.Request{Principal: caller.Principal, Action: action, Resource: k.ARN, Context: cond}
	kd := policy.Decision{}
	if k.Policy != nil {
		kd = k.Policy.EvaluateResource(req)
	}
	if kd.Deny {
		return errDenied(caller, action, k.ARN, "with an explicit deny in a resource-based policy")
	}
	id := policy.EvaluateIdentities(caller.Policies, req)
	if id.Deny {
		return errDenied(caller, action, k.ARN, "with an explicit deny in an identity-based policy")
	}
	idAllow := id.Allow
	sameAccount := caller.AccountID == k.Rec.Account
	switch {
	case kd.Allow && (sameAccount || caller.Root || idAllow):
		return nil
	case kd.AccountAllow && (caller.Root || idAllow):
		return nil
	case s.grantAllows(caller, action, k, cond):
		return nil
	case kd.AccountAllow || kd.Allow:
		return errDenied(caller, action, k.ARN, "because no identity-based policy allows the "+action+" action")
	}
	return errDenied(caller, action, k.ARN, "because no resource-based policy allows the "+action+" action")
}

// authorizeAccount decides an operation that AWS authorizes by identity
// policy alone (CreateKey, ListKeys, ListAliases, GenerateRandom, the alias
// side of alias operations): the root may, users and roles need an
// identity policy that allows it.
func (s *Service) authorizeAccount(caller *Caller, action, resource string, cond *conditions) error {
	if cond == nil {
		cond = &conditions{}
	}
	cond.s, cond.caller = s, caller
	req := &policy.Request{Principal: caller.Principal, Action: action, Resource: resource, Context: cond}
	id := policy.EvaluateIdentities(caller.Policies, req)
	if id.Deny {
		return errDenied(caller, action, resource, "with an explicit deny in an identity-based policy")
	}
	if !caller.Root && !id.Allow {
		return errDenied(caller, action, resource, "because no identity-based policy allows the "+action+" action")
	}
	return nil
}

func errDenied(caller *Caller, action, resource, why string) error {
	return newErr(fault.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s", caller.ARN, action, resource, why)
}
