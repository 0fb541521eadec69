package authz_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/testsupport"
)

// The authorization tests decide requests against keys built in memory
// with real parsed policies, as the key repository hands them over.

const (
	acctA  = "111122223333"
	acctB  = "444455556666"
	region = "us-east-1"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// aliasSource stands in for the store's index of a key's aliases and
// counts how often it is read.
type aliasSource struct {
	names map[string][]string // by key id
	reads int
	err   error // of every read, when set
}

func (s *aliasSource) aliases(_ context.Context, _, keyID string) ([]string, error) {
	s.reads++
	return s.names[keyID], s.err
}

func newAuthorizer() (*authz.Authorizer, *testsupport.Clock, *aliasSource) {
	clock := testsupport.NewClock(start)
	src := &aliasSource{names: map[string][]string{}}
	return authz.New(clock.Now, "us-east-1", src.aliases), clock, src
}

func identityPolicies(t *testing.T, docs []string) []*policy.Policy {
	t.Helper()
	var out []*policy.Policy
	for _, doc := range docs {
		p, err := policy.ParseIdentity(doc)
		if err != nil {
			t.Fatalf("identity policy %s: %v", doc, err)
		}
		out = append(out, p)
	}
	return out
}

func keyPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.ParseResource(doc)
	if err != nil {
		t.Fatalf("key policy %s: %v", doc, err)
	}
	return p
}

// root is an account's root.
func root(account string) *authz.Caller {
	arn := "arn:aws:iam::" + account + ":root"
	return &authz.Caller{AccountID: account, ARN: arn, Root: true,
		Principal: policy.Principal{ARN: arn, Account: account, UserID: account}}
}

// user is an IAM user with identity policies.
func user(t *testing.T, account, name string, docs ...string) *authz.Caller {
	arn := "arn:aws:iam::" + account + ":user/" + name
	return &authz.Caller{AccountID: account, ARN: arn, Policies: identityPolicies(t, docs),
		Principal: policy.Principal{ARN: arn, Account: account, UserID: "AIDA" + name, Username: name}}
}

// session is an assumed-role session of role with identity policies.
func session(t *testing.T, account, role string, docs ...string) *authz.Caller {
	arn := "arn:aws:sts::" + account + ":assumed-role/" + role + "/s1"
	return &authz.Caller{AccountID: account, ARN: arn, Policies: identityPolicies(t, docs),
		Principal: policy.Principal{ARN: arn, Account: account, RoleARN: roleARN(account, role), UserID: "AROA" + role + ":s1"}}
}

func userARN(account, name string) string { return "arn:aws:iam::" + account + ":user/" + name }
func roleARN(account, role string) string { return "arn:aws:iam::" + account + ":role/" + role }

// statement is one key policy statement. principal is a JSON value.
func statement(effect, principal string, actions []string, condition string) string {
	s := fmt.Sprintf(`{"Effect":%q,"Principal":{"AWS":%s},"Action":%s,"Resource":"*"`, effect, principal, jsonList(actions))
	if condition != "" {
		s += `,"Condition":` + condition
	}
	return s + "}"
}

func policyDoc(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

// delegate is the default key policy: the account delegates to IAM.
func delegate(account string) string {
	return policyDoc(statement("Allow", `"arn:aws:iam::`+account+`:root"`, []string{"kms:*"}, ""))
}

func identityDoc(effect string, actions ...string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":%q,"Action":%s,"Resource":"*"}]}`, effect, jsonList(actions))
}

func jsonList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// newKey is a symmetric key of account with key policy doc ("" for none)
// and grants.
func newKey(t *testing.T, account, doc string, grants ...*keyrepo.GrantRecord) *keyrepo.Key {
	t.Helper()
	id := keys.NewID().String()
	k := &keyrepo.Key{
		Rec: keyrepo.KeyRecord{V: 1, ID: id, Account: account, KeySpec: keys.SymmetricDefault, KeyUsage: keys.UsageEncrypt,
			Origin: "AWS_KMS", State: keyrepo.StateEnabled, Policy: doc,
			Tags: []kmsapi.Tag{{TagKey: "Team", TagValue: "blue"}}},
		ARN:    "arn:aws:kms:" + region + ":" + account + ":key/" + id,
		Grants: grants,
	}
	if doc != "" {
		k.Policy = keyPolicy(t, doc)
	}
	for _, g := range grants {
		g.KeyID = id
	}
	return k
}

func grant(grantee string, c *kmsapi.GrantConstraints, ops ...string) *keyrepo.GrantRecord {
	return &keyrepo.GrantRecord{V: 1, ID: "g-" + grantee, Account: acctA, Grantee: grantee, Operations: ops, Constraints: c}
}

// checkDecision fails unless err is nil for why == "", or else AWS's
// AccessDenied for caller, action and resource, ending in why.
func checkDecision(t *testing.T, err error, caller *authz.Caller, action, resource, why string) {
	t.Helper()
	if why == "" {
		if err != nil {
			t.Fatalf("denied: %v", err)
		}
		return
	}
	want := "User: " + caller.ARN + " is not authorized to perform: " + action + " on resource: " + resource + " " + why
	if err == nil {
		t.Fatalf("allowed, want AccessDenied %q", want)
	}
	if !fault.Is(err, fault.AccessDenied) || err.Error() != want {
		t.Fatalf("error %v (class %d), want AccessDenied %q", err, fault.CodeOf(err), want)
	}
}

const (
	explicitKeyDeny      = "with an explicit deny in a resource-based policy"
	explicitIdentityDeny = "with an explicit deny in an identity-based policy"
)

func noIdentity(action string) string {
	return "because no identity-based policy allows the " + action + " action"
}
func noResource(action string) string {
	return "because no resource-based policy allows the " + action + " action"
}
