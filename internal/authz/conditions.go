package authz

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
)

// Conditions supplies the condition keys of one request to the policy
// engine. An operation fills in what its request brings; the Authorizer
// adds the caller and the key. Values are computed only when a policy asks
// for them. A Conditions serves one decision (or the decisions of one
// request): it is not safe for concurrent use.
type Conditions struct {
	EC    map[string]string   // the encryption context
	Alias string              // the alias name the request used, if any
	Extra map[string]string   // operation-specific keys, lowercase
	Multi map[string][]string // operation-specific multi-valued keys
	Tags  []kmsapi.Tag        // aws:RequestTag for CreateKey/TagResource
	Child *ChildGrant         // CreateGrant: the grant asked for
	// IdleDays, for DisableKey and ScheduleKeyDeletion, is
	// kms:TrailingDaysWithoutKeyUsage of a key: the whole days since its
	// last cryptographic use, or with none since uses of it began to be
	// tracked. It is asked only when a policy names the key.
	IdleDays func(k *keyrepo.Key) int

	ctx    context.Context // the call's, for what a decision reads
	a      *Authorizer
	caller *Caller
	k      *keyrepo.Key

	resourceAliases []string
	aliasesLoaded   bool
	// readErr is the error of a read of a value a policy asked for (the
	// key's alias names): a decision made without that value is no
	// decision, and the request fails with it instead.
	readErr error

	// ambiguous is set when a policy named a key of the encryption context
	// or a tag that the request (or key) holds twice, in two cases: AWS
	// matches those names without regard to case, so the condition has no
	// one value, and the decision is a denial (Authorizer.Key, Account).
	ambiguous bool
}

// lookupFold returns the value of the entry of keys/values whose key is
// want without regard to case; more than one makes c ambiguous.
func (c *Conditions) lookupFold(want string, n int, entry func(i int) (string, string)) ([]string, bool) {
	var out []string
	for i := 0; i < n; i++ {
		if k, v := entry(i); strings.EqualFold(k, want) {
			if out != nil {
				c.ambiguous = true
				return out, true
			}
			out = []string{v}
		}
	}
	return out, out != nil
}

// Values implements policy.Context.
func (c *Conditions) Values(key string) ([]string, bool) {
	// The deprecated names of kms:KeySpec and kms:KeyUsage, which AWS
	// KMS still honours: a policy written with them must decide as it
	// does there, its denials above all.
	switch key {
	case "kms:customermasterkeyspec":
		key = "kms:keyspec"
	case "kms:customermasterkeyusage":
		key = "kms:keyusage"
	}
	if v, ok := c.Extra[key]; ok {
		return []string{v}, true
	}
	if v, ok := c.Multi[key]; ok {
		return v, len(v) > 0
	}
	switch {
	case strings.HasPrefix(key, "kms:encryptioncontext:"):
		want := key[len("kms:encryptioncontext:"):]
		var out []string
		for k, v := range c.EC {
			if strings.EqualFold(k, want) {
				if out != nil {
					c.ambiguous = true
				}
				out = []string{v}
			}
		}
		return out, out != nil
	case key == "kms:encryptioncontextkeys":
		if len(c.EC) == 0 {
			return nil, false
		}
		out := make([]string, 0, len(c.EC))
		for k := range c.EC {
			out = append(out, k)
		}
		return out, true
	case key == "kms:requestalias":
		return one(c.Alias)
	case key == "aws:sourceip":
		return one(c.caller.SourceIP)
	case key == "aws:requestedregion":
		// The region the call is authorized in: for ReplicateKey's
		// kms:CreateKey, and UpdatePrimaryRegion's check of the new
		// primary, the other region's.
		if c.caller.Region != "" {
			return one(c.caller.Region)
		}
		return one(c.a.region)
	case key == "aws:currenttime":
		return []string{c.a.now().UTC().Format(time.RFC3339)}, true
	case key == "aws:epochtime":
		return []string{strconv.FormatInt(c.a.now().Unix(), 10)}, true
	case key == "aws:securetransport":
		return []string{strconv.FormatBool(c.caller.SecureTransport)}, true
	case key == "aws:tagkeys" && c.Tags != nil:
		out := make([]string, len(c.Tags))
		for i, t := range c.Tags {
			out[i] = t.TagKey
		}
		return out, true
	case strings.HasPrefix(key, "aws:requesttag/"):
		return c.lookupFold(key[len("aws:requesttag/"):], len(c.Tags), func(i int) (string, string) { return c.Tags[i].TagKey, c.Tags[i].TagValue })
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
		return []string{strconv.FormatBool(c.k.Rec.MultiRegion)}, true
	case key == "kms:trailingdayswithoutkeyusage" && c.IdleDays != nil:
		return []string{strconv.Itoa(c.IdleDays(c.k))}, true
	case key == "kms:multiregionkeytype":
		switch {
		case !c.k.Rec.MultiRegion:
			return nil, false
		case c.k.Rec.IsPrimary():
			return []string{"PRIMARY"}, true
		}
		return []string{"REPLICA"}, true
	case strings.HasPrefix(key, "aws:resourcetag/"):
		tags := c.k.Rec.Tags
		return c.lookupFold(key[len("aws:resourcetag/"):], len(tags), func(i int) (string, string) { return tags[i].TagKey, tags[i].TagValue })
	case key == "kms:resourcealiases":
		if !c.aliasesLoaded {
			names, ok, err := c.k.AliasNames()
			if !ok {
				names, err = c.a.aliases(c.callCtx(), c.k.Rec.Region, c.k.Rec.ID)
			}
			if err != nil {
				if c.readErr == nil {
					c.readErr = err
				}
				return nil, false
			}
			c.resourceAliases, c.aliasesLoaded = names, true
		}
		return c.resourceAliases, len(c.resourceAliases) > 0
	}
	return nil, false
}

// callCtx is the context of the call a decision is for; Background for
// Conditions whose Values are asked outside a decision.
func (c *Conditions) callCtx() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

func one(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	return []string{s}, true
}
