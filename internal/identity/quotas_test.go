package identity_test

import (
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
)

// TestUserAndRoleQuotas: an account holds at most IAM's quota of users
// and of roles; past it CreateUser and CreateRole get LimitExceeded with
// IAM's message and store nothing, another account is not held back, and
// deleting one makes room for one.
func TestUserAndRoleQuotas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind   string
		create func(f *fixture, caller *identity.Principal, name string) error
		remove func(f *fixture, name string) error
		exists func(f *fixture, name string) bool
	}{
		{"User",
			func(f *fixture, caller *identity.Principal, name string) error {
				_, err := f.d.CreateUser(f.ctx, caller, name, "")
				return err
			},
			func(f *fixture, name string) error { return f.d.DeleteUser(f.ctx, f.root1, name) },
			func(f *fixture, name string) bool { _, err := f.d.GetUser(f.ctx, f.root1, name); return err == nil }},
		{"Role",
			func(f *fixture, caller *identity.Principal, name string) error {
				_, err := f.d.CreateRole(f.ctx, caller, name, "", trustAccount(caller.Account), "", 0)
				return err
			},
			func(f *fixture, name string) error { return f.d.DeleteRole(f.ctx, f.root1, name) },
			func(f *fixture, name string) bool { _, err := f.d.GetRole(f.ctx, f.root1, name); return err == nil }},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			f := newFixture(t)
			const quota = 20 // the quota itself is checked below; a smaller one keeps the test short
			identity.SetQuotas(f.d, quota, quota)
			for i := range quota {
				if err := tc.create(f, f.root1, fmt.Sprintf("n%d", i)); err != nil {
					t.Fatalf("%s %d of %d: %v", tc.kind, i+1, quota, err)
				}
			}
			msg := fmt.Sprintf("Cannot exceed quota for %ssPerAccount: %d", tc.kind, quota)
			check(t, tc.create(f, f.root1, "over"), fault.LimitExceeded, msg)
			if tc.exists(f, "over") {
				t.Fatalf("a %s refused over the quota was stored", tc.kind)
			}
			// An existing name is refused as existing, not as over quota.
			check(t, tc.create(f, f.root1, "n0"), fault.EntityAlreadyExists, "")
			if err := tc.create(f, f.root2, "over"); err != nil {
				t.Fatalf("another account's first %s: %v", tc.kind, err)
			}
			if err := tc.remove(f, "n0"); err != nil {
				t.Fatal(err)
			}
			if err := tc.create(f, f.root1, "over"); err != nil {
				t.Fatalf("a %s in the room a deleted one left: %v", tc.kind, err)
			}
			check(t, tc.create(f, f.root1, "again"), fault.LimitExceeded, msg)
		})
	}
	if identity.DefaultUserQuota != 5000 || identity.DefaultRoleQuota != 1000 {
		t.Errorf("quotas of %d users and %d roles; IAM's are 5,000 and 1,000", identity.DefaultUserQuota, identity.DefaultRoleQuota)
	}
}
