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

	a      *Authorizer
	caller *Caller
	k      *keyrepo.Key

	resourceAliases []string
	aliasesLoaded   bool
}

// Values implements policy.Context.
func (c *Conditions) Values(key string) ([]string, bool) {
	if v, ok := c.Extra[key]; ok {
		return []string{v}, true
	}
	if v, ok := c.Multi[key]; ok {
		return v, len(v) > 0
	}
	switch {
	case strings.HasPrefix(key, "kms:encryptioncontext:"):
		want := key[len("kms:encryptioncontext:"):]
		for k, v := range c.EC {
			if strings.EqualFold(k, want) {
				return []string{v}, true
			}
		}
		return nil, false
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
	case key == "aws:currenttime":
		return []string{c.a.now().UTC().Format(time.RFC3339)}, true
	case key == "aws:epochtime":
		return []string{strconv.FormatInt(c.a.now().Unix(), 10)}, true
	case key == "aws:securetransport":
		return []string{"false"}, true
	case key == "aws:tagkeys" && c.Tags != nil:
		out := make([]string, len(c.Tags))
		for i, t := range c.Tags {
			out[i] = t.TagKey
		}
		return out, true
	case strings.HasPrefix(key, "aws:requesttag/"):
		for _, t := range c.Tags {
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
		return []string{strconv.FormatBool(c.k.Rec.MultiRegion)}, true
	case key == "kms:multiregionkeytype":
		switch {
		case !c.k.Rec.MultiRegion:
			return nil, false
		case c.k.Rec.IsPrimary():
			return []string{"PRIMARY"}, true
		}
		return []string{"REPLICA"}, true
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
			c.resourceAliases = c.a.aliases(context.Background(), c.k.Rec.Region, c.k.Rec.ID)
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
