package identity_test

import (
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/identity"
)

func TestCreateRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "Existing", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", nil)
	admin, _, _ := f.user("admin", map[string]string{"all": allowIAM})
	trust := trustAccount(acct)
	for _, tc := range []struct {
		name, role, path, trust, desc string
		caller                        *identity.Principal
		max                           int32
		code                          fault.Code
		msg                           string
		wantMax                       int32
	}{
		{name: "defaults", caller: f.root1, role: "a", trust: trust, wantMax: 3600},
		{name: "everything given", caller: f.root1, role: "b", path: "/svc/", trust: trust, desc: "for b", max: 43200, wantMax: 43200},
		{name: "an identity policy allows it", caller: admin, role: "c", trust: trust, max: 3600, wantMax: 3600},
		{name: "no name", caller: f.root1, trust: trust, code: fault.Validation,
			msg: "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"},
		{name: "a bad name", caller: f.root1, role: "a:b", trust: trust, code: fault.Validation,
			msg: "1 validation error detected: Value 'a:b' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"},
		{name: "a bad path", caller: f.root1, role: "d", path: "svc", trust: trust, code: fault.Validation,
			msg: "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters."},
		{name: "no trust policy", caller: f.root1, role: "d", code: fault.Validation,
			msg: "1 validation error detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null"},
		{name: "a trust policy that is not JSON", caller: f.root1, role: "d", trust: "{", code: fault.MalformedPolicyDocument},
		{name: "a trust policy without a principal", caller: f.root1, role: "d", trust: allowAll, code: fault.MalformedPolicyDocument},
		{name: "a session too short", caller: f.root1, role: "d", trust: trust, max: 3599, code: fault.Validation,
			msg: "1 validation error detected: Value '3599' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"},
		{name: "a session too long", caller: f.root1, role: "d", trust: trust, max: 43201, code: fault.Validation,
			msg: "1 validation error detected: Value '43201' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"},
		{name: "a negative session", caller: f.root1, role: "d", trust: trust, max: -1, code: fault.Validation},
		{name: "the same name in another case", caller: f.root1, role: "EXISTING", trust: trust, code: fault.EntityAlreadyExists,
			msg: "Role with name EXISTING already exists."},
		{name: "not allowed", caller: nobody, role: "d", path: "/x/", trust: trust, code: fault.AccessDenied,
			msg: "User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::" + acct + ":role/x/d because no identity-based policy allows the iam:CreateRole action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := f.d.CreateRole(f.ctx, tc.caller, tc.role, tc.path, tc.trust, tc.desc, tc.max)
			check(t, err, tc.code, tc.msg)
			if err != nil {
				if tc.code != fault.EntityAlreadyExists {
					if r, err := f.d.GetRole(f.ctx, f.root1, tc.role); err == nil {
						t.Fatalf("a refused CreateRole made %+v", r)
					}
				}
				return
			}
			path := tc.path
			if path == "" {
				path = "/"
			}
			want := identity.Role{Path: path, RoleName: tc.role, RoleID: r.RoleID, Arn: "arn:aws:iam::" + acct + ":role" + path + tc.role,
				Created: start, TrustPolicy: tc.trust, Description: tc.desc, MaxSession: tc.wantMax}
			if *r != want || len(r.RoleID) != 21 || !strings.HasPrefix(r.RoleID, "AROA") {
				t.Fatalf("created %+v, want %+v", r, want)
			}
			got, err := f.d.GetRole(f.ctx, f.root1, strings.ToUpper(tc.role))
			if err != nil || *got != want {
				t.Fatalf("GetRole gave %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestGetRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "/p/", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", nil)
	reader, _, _ := f.user("reader", map[string]string{"get": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"arn:aws:iam::` + acct + `:role/p/*"}]}`})
	for _, tc := range []struct {
		name   string
		caller *identity.Principal
		role   string
		code   fault.Code
		msg    string
	}{
		{"the root", f.root1, "r", 0, ""},
		{"a user allowed to", reader, "R", 0, ""},
		{"a user not allowed to", nobody, "r", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:GetRole on resource: role r because no identity-based policy allows the iam:GetRole action"},
		{"no name", f.root1, "", fault.Validation, "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"},
		{"no such role", f.root1, "ghost", fault.NoSuchEntity, "The role with name ghost cannot be found."},
		{"another account's", f.root2, "r", fault.NoSuchEntity, "The role with name r cannot be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := f.d.GetRole(f.ctx, tc.caller, tc.role)
			check(t, err, tc.code, tc.msg)
			if err == nil && r.Arn != "arn:aws:iam::"+acct+":role/p/r" {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestDeleteRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, n := range []string{"plain", "withpolicy"} {
		if _, err := f.d.CreateRole(f.ctx, f.root1, n, "", trustAccount(acct), "", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "withpolicy", "p", allowAll); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", nil)
	for _, tc := range []struct {
		name   string
		caller *identity.Principal
		role   string
		code   fault.Code
		msg    string
	}{
		{"no name", f.root1, "", fault.Validation, "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"},
		{"no such role", f.root1, "ghost", fault.NoSuchEntity, "The role with name ghost cannot be found."},
		{"from another account", f.root2, "plain", fault.NoSuchEntity, "The role with name plain cannot be found."},
		{"with a policy", f.root1, "withpolicy", fault.DeleteConflict, "Cannot delete entity, must delete policies first."},
		{"not allowed", nobody, "plain", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:DeleteRole on resource: role plain because no identity-based policy allows the iam:DeleteRole action"},
		{"in another case", f.root1, "PLAIN", 0, ""},
		{"again", f.root1, "plain", fault.NoSuchEntity, "The role with name plain cannot be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.d.DeleteRole(f.ctx, tc.caller, tc.role)
			check(t, err, tc.code, tc.msg)
			if tc.role == "" {
				return
			}
			_, gerr := f.d.GetRole(f.ctx, f.root1, tc.role)
			exists := gerr == nil
			if wantExists := tc.role != "ghost" && err != nil && tc.name != "again"; exists != wantExists {
				t.Fatalf("after DeleteRole (%v) the role exists: %v", err, exists)
			}
		})
	}
}
