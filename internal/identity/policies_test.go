package identity_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/identity"
)

func policyNames(t *testing.T, f *fixture, kind, owner string) []string {
	t.Helper()
	names, _, err := f.d.ListPolicies(f.ctx, f.root1, kind, owner, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPutPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "alice", "/p/"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateRole(f.ctx, f.root1, "ops", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", "existing", allowAll); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", nil)
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"` + strings.Repeat("a", 10240) + `"}]}`
	for _, tc := range []struct {
		name                  string
		caller                *identity.Principal
		kind, owner, pol, doc string
		code                  fault.Code
		msg                   string
	}{
		{"a user's", f.root1, "User", "alice", "read", allowIAM, 0, ""},
		{"a user's, named in another case", f.root1, "User", "ALICE", "other", allowIAM, 0, ""},
		{"a role's", f.root1, "Role", "ops", "read", allowIAM, 0, ""},
		{"replacing one", f.root1, "User", "alice", "existing", denyIAM, 0, ""},
		{"no user name", f.root1, "User", "", "p", allowAll, fault.Validation,
			"1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"},
		{"no role name", f.root1, "Role", "", "p", allowAll, fault.Validation,
			"1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"},
		{"no policy name", f.root1, "User", "alice", "", allowAll, fault.Validation,
			"1 validation error detected: Value null at 'policyName' failed to satisfy constraint: Member must not be null"},
		{"a policy name too long", f.root1, "User", "alice", strings.Repeat("p", 129), allowAll, fault.Validation, ""},
		{"a policy name with a colon", f.root1, "User", "alice", "a:b", allowAll, fault.Validation, ""},
		{"a document too big for a user", f.root1, "User", "alice", "big", big, fault.LimitExceeded, "Maximum policy size of 10240 bytes exceeded for user alice"},
		{"a document too big for a role", f.root1, "Role", "ops", "big", big, fault.LimitExceeded, "Maximum policy size of 10240 bytes exceeded for role ops"},
		{"a document that is not JSON", f.root1, "User", "alice", "bad", "{", fault.MalformedPolicyDocument, ""},
		{"a document with a principal", f.root1, "User", "alice", "bad", trustAccount(acct), fault.MalformedPolicyDocument, ""},
		{"no such user", f.root1, "User", "ghost", "p", allowAll, fault.NoSuchEntity, "The user with name ghost cannot be found."},
		{"no such role", f.root1, "Role", "ghost", "p", allowAll, fault.NoSuchEntity, "The role with name ghost cannot be found."},
		{"another account's user", f.root2, "User", "alice", "p", allowAll, fault.NoSuchEntity, ""},
		{"not allowed", nobody, "User", "alice", "p", allowAll, fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:PutUserPolicy on resource: user alice because no identity-based policy allows the iam:PutUserPolicy action"},
		{"not allowed, on itself", nobody, "User", "nobody", "p", allowAll, fault.AccessDenied, ""},
		{"not allowed, a role's", nobody, "Role", "ops", "p", allowAll, fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:PutRolePolicy on resource: role ops because no identity-based policy allows the iam:PutRolePolicy action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exists := tc.owner == "alice" || tc.owner == "ALICE" || tc.owner == "ops" || tc.owner == "nobody"
			var before []string
			if exists {
				before = policyNames(t, f, tc.kind, tc.owner)
			}
			err := f.d.PutPolicy(f.ctx, tc.caller, tc.kind, tc.owner, tc.pol, tc.doc)
			check(t, err, tc.code, tc.msg)
			if !exists {
				return
			}
			after := policyNames(t, f, tc.kind, tc.owner)
			if err != nil {
				if !slices.Equal(before, after) {
					t.Fatalf("a refused PutPolicy changed the policies: %v -> %v", before, after)
				}
				return
			}
			if !slices.Contains(after, tc.pol) {
				t.Fatalf("policies %v, want %s among them", after, tc.pol)
			}
			name, doc, err := f.d.GetPolicy(f.ctx, f.root1, tc.kind, tc.owner, tc.pol)
			if err != nil || doc != tc.doc || name != strings.ToLower(tc.owner) {
				t.Fatalf("GetPolicy gave %q, %q, %v", name, doc, err)
			}
		})
	}
	// The existing policy was replaced by the deny: alice can no longer
	// do what the other policies allow.
	ak, secret, err := f.d.CreateAccessKey(f.ctx, f.root1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.d.ListUsers(f.ctx, f.auth(ak.ID, secret, ""), "", "", 100)
	wantErr(t, err, fault.AccessDenied, "User: arn:aws:iam::"+acct+":user/p/alice is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+acct+":user/ with an explicit deny in an identity-based policy")
}

// TestPolicySizeIsPerOwner: the size limit holds for all of an owner's
// inline policies together, so that no one gives a user or role an
// unbounded number of them to read and evaluate on each request; a
// policy replaced counts once.
func TestPolicySizeIsPerOwner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "alice", ""); err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"` + strings.Repeat("a", 3000) + `"}]}`
	for i := range 3 {
		if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", fmt.Sprint("p", i), doc); err != nil {
			t.Fatalf("policy %d of %d bytes: %v", i, len(doc), err)
		}
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", "p2", doc); err != nil {
		t.Fatalf("a policy replaced by one of its size: %v", err)
	}
	wantErr(t, f.d.PutPolicy(f.ctx, f.root1, "User", "alice", "p3", doc), fault.LimitExceeded, "Maximum policy size of 10240 bytes exceeded for user alice")
	if names := policyNames(t, f, "User", "alice"); len(names) != 3 {
		t.Fatalf("policies %v after the refusal", names)
	}
}

// TestPolicyChangeAppliesAtOnce: a user's next request sees a policy put
// or deleted, though its credential is cached.
func TestPolicyChangeAppliesAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, k, secret := f.user("alice", nil)
	list := func() error {
		_, _, err := f.d.ListUsers(f.ctx, f.auth(k.ID, secret, ""), "", "", 100)
		return err
	}
	wantErr(t, list(), fault.AccessDenied, "")
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", "p", allowIAM); err != nil {
		t.Fatal(err)
	}
	if err := list(); err != nil {
		t.Fatalf("after PutPolicy: %v", err)
	}
	if err := f.d.DeletePolicy(f.ctx, f.root1, "User", "alice", "p"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, list(), fault.AccessDenied, "")
}

func TestGetListDeletePolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateRole(f.ctx, f.root1, "Ops", "/svc/", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"zeta", "Alpha", "mid"} {
		if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", p, allowAll); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "ops", "r1", allowIAM); err != nil {
		t.Fatal(err)
	}
	if got, want := policyNames(t, f, "User", "alice"), []string{"Alpha", "mid", "zeta"}; !slices.Equal(got, want) {
		t.Fatalf("ListPolicies = %v, want %v", got, want)
	}
	if got := policyNames(t, f, "Role", "OPS"); !slices.Equal(got, []string{"r1"}) {
		t.Fatalf("the role's policies are %v", got)
	}
	nobody, _, _ := f.user("nobody", nil)

	t.Run("get", func(t *testing.T) {
		for _, tc := range []struct {
			name                string
			caller              *identity.Principal
			kind, owner, policy string
			code                fault.Code
			msg                 string
			wantOwner, wantDoc  string
		}{
			{"a user's", f.root1, "User", "ALICE", "mid", 0, "", "alice", allowAll},
			{"a role's", f.root1, "Role", "ops", "r1", 0, "", "Ops", allowIAM},
			{"no such policy of a user", f.root1, "User", "alice", "r1", fault.NoSuchEntity, "The user policy with name r1 cannot be found.", "", ""},
			{"no such policy of a role", f.root1, "Role", "ops", "mid", fault.NoSuchEntity, "The role policy with name mid cannot be found.", "", ""},
			{"no such user", f.root1, "User", "ghost", "mid", fault.NoSuchEntity, "The user with name ghost cannot be found.", "", ""},
			{"no such role", f.root1, "Role", "ghost", "mid", fault.NoSuchEntity, "The role with name ghost cannot be found.", "", ""},
			{"not allowed", nobody, "Role", "ops", "r1", fault.AccessDenied,
				"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:GetRolePolicy on resource: role ops because no identity-based policy allows the iam:GetRolePolicy action", "", ""},
			{"another account", f.root2, "User", "alice", "mid", fault.NoSuchEntity, "", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				owner, doc, err := f.d.GetPolicy(f.ctx, tc.caller, tc.kind, tc.owner, tc.policy)
				check(t, err, tc.code, tc.msg)
				if err == nil && (owner != tc.wantOwner || doc != tc.wantDoc) {
					t.Fatalf("got %q, %q; want %q, %q", owner, doc, tc.wantOwner, tc.wantDoc)
				}
			})
		}
	})

	t.Run("list", func(t *testing.T) {
		_, _, err := f.d.ListPolicies(f.ctx, nobody, "User", "alice", "", 100)
		wantErr(t, err, fault.AccessDenied, "User: arn:aws:iam::"+acct+":user/nobody is not authorized to perform: iam:ListUserPolicies on resource: user alice because no identity-based policy allows the iam:ListUserPolicies action")
		_, _, err = f.d.ListPolicies(f.ctx, f.root1, "Role", "ghost", "", 100)
		wantErr(t, err, fault.NoSuchEntity, "The role with name ghost cannot be found.")
		if names, _, err := f.d.ListPolicies(f.ctx, f.root1, "User", "nobody", "", 100); err != nil || len(names) != 0 {
			t.Fatalf("a user without policies: %v, %v", names, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		for _, tc := range []struct {
			name                string
			caller              *identity.Principal
			kind, owner, policy string
			code                fault.Code
			msg                 string
		}{
			{"not allowed", nobody, "User", "alice", "mid", fault.AccessDenied,
				"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:DeleteUserPolicy on resource: user alice because no identity-based policy allows the iam:DeleteUserPolicy action"},
			{"no such policy", f.root1, "User", "alice", "r1", fault.NoSuchEntity, "The user policy with name r1 cannot be found."},
			{"no such role policy", f.root1, "Role", "ops", "mid", fault.NoSuchEntity, "The role policy with name mid cannot be found."},
			{"no such user", f.root1, "User", "ghost", "mid", fault.NoSuchEntity, "The user with name ghost cannot be found."},
			{"another account", f.root2, "User", "alice", "mid", fault.NoSuchEntity, ""},
			{"a user's", f.root1, "User", "alice", "mid", 0, ""},
			{"a role's", f.root1, "Role", "OPS", "r1", 0, ""},
			{"the same again", f.root1, "Role", "ops", "r1", fault.NoSuchEntity, "The role policy with name r1 cannot be found."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var before []string
				if tc.owner != "ghost" {
					before = policyNames(t, f, tc.kind, tc.owner)
				}
				err := f.d.DeletePolicy(f.ctx, tc.caller, tc.kind, tc.owner, tc.policy)
				check(t, err, tc.code, tc.msg)
				if tc.owner == "ghost" {
					return
				}
				after := policyNames(t, f, tc.kind, tc.owner)
				if err != nil && !slices.Equal(before, after) {
					t.Fatalf("a refused DeletePolicy changed the policies: %v -> %v", before, after)
				}
				if err == nil && (slices.Contains(after, tc.policy) || len(after) != len(before)-1) {
					t.Fatalf("policies %v -> %v, want %s gone", before, after, tc.policy)
				}
			})
		}
	})
	if got := policyNames(t, f, "User", "alice"); !slices.Equal(got, []string{"Alpha", "zeta"}) {
		t.Fatalf("left %v", got)
	}
}
