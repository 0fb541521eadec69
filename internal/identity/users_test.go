package identity_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/identity"
)

func userNames(t *testing.T, f *fixture, caller *identity.Principal) []string {
	t.Helper()
	us, _, err := f.d.ListUsers(f.ctx, caller, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range us {
		names = append(names, u.UserName)
	}
	return names
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "Existing", ""); err != nil {
		t.Fatal(err)
	}
	reader, _, _ := f.user("reader", map[string]string{"read": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}`})
	admin, _, _ := f.user("admin", map[string]string{"all": allowIAM})
	denied, _, _ := f.user("denied", map[string]string{"all": allowIAM, "deny": denyIAM})
	scoped, _, _ := f.user("scoped", map[string]string{"ops": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreateUser","Resource":"arn:aws:iam::` + acct + `:user/ops/*"}]}`})
	long := strings.Repeat("u", 65)
	for _, tc := range []struct {
		name       string
		caller     *identity.Principal
		user, path string
		code       fault.Code
		msg        string
		wantARN    string
	}{
		{"root, default path", f.root1, "alice", "", 0, "", "arn:aws:iam::" + acct + ":user/alice"},
		{"root, with a path", f.root1, "bob", "/team/a/", 0, "", "arn:aws:iam::" + acct + ":user/team/a/bob"},
		{"the longest name", f.root1, strings.Repeat("u", 64), "/", 0, "", "arn:aws:iam::" + acct + ":user/" + strings.Repeat("u", 64)},
		{"a name with every allowed symbol", f.root1, "a_b+c=d,e.f@g-h", "", 0, "", "arn:aws:iam::" + acct + ":user/a_b+c=d,e.f@g-h"},
		{"an identity policy allows it", admin, "carol", "", 0, "", "arn:aws:iam::" + acct + ":user/carol"},
		{"a policy scoped to a path, inside it", scoped, "dave", "/ops/", 0, "", "arn:aws:iam::" + acct + ":user/ops/dave"},
		{"no name", f.root1, "", "", fault.Validation,
			"1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null", ""},
		{"a name too long", f.root1, long, "", fault.Validation,
			"1 validation error detected: Value '" + long + "' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64", ""},
		{"a name with a slash", f.root1, "a/b", "", fault.Validation,
			"1 validation error detected: Value 'a/b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", ""},
		{"a name with a space", f.root1, "a b", "", fault.Validation, "", ""},
		{"a path without the leading slash", f.root1, "erin", "team/", fault.Validation,
			"The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.", ""},
		{"a path without the trailing slash", f.root1, "erin", "/team", fault.Validation, "", ""},
		{"a path with a space", f.root1, "erin", "/a b/", fault.Validation, "", ""},
		{"a path too long", f.root1, "erin", "/" + strings.Repeat("p", 511) + "/", fault.Validation, "", ""},
		{"the same name", f.root1, "Existing", "", fault.EntityAlreadyExists, "User with name Existing already exists.", ""},
		{"the same name in another case", f.root1, "EXISTING", "/other/", fault.EntityAlreadyExists, "User with name EXISTING already exists.", ""},
		{"no identity policy allows it", reader, "frank", "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/reader is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::" + acct + ":user/frank because no identity-based policy allows the iam:CreateUser action", ""},
		{"an explicit deny wins", denied, "frank", "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/denied is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::" + acct + ":user/frank with an explicit deny in an identity-based policy", ""},
		{"a policy scoped to a path, outside it", scoped, "frank", "/dev/", fault.AccessDenied, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := userNames(t, f, f.root1)
			u, err := f.d.CreateUser(f.ctx, tc.caller, tc.user, tc.path)
			check(t, err, tc.code, tc.msg)
			after := userNames(t, f, f.root1)
			if err != nil {
				if !slices.Equal(before, after) {
					t.Fatalf("a refused CreateUser changed the users: %v -> %v", before, after)
				}
				return
			}
			wantPath := tc.path
			if wantPath == "" {
				wantPath = "/"
			}
			if u.UserName != tc.user || u.Path != wantPath || u.Arn != tc.wantARN || !u.Created.Equal(start) ||
				len(u.UserID) != 21 || !strings.HasPrefix(u.UserID, "AIDA") {
				t.Fatalf("created %+v", u)
			}
			got, err := f.d.GetUser(f.ctx, f.root1, strings.ToUpper(tc.user))
			if err != nil || *got != *u {
				t.Fatalf("GetUser in another case gave %+v, %v; want %+v", got, err, u)
			}
			if len(after) != len(before)+1 {
				t.Fatalf("users %v -> %v", before, after)
			}
		})
	}
	// Accounts are separate: the other account has none of these users.
	if names := userNames(t, f, f.root2); len(names) != 0 {
		t.Fatalf("the other account lists %v", names)
	}
	if _, err := f.d.CreateUser(f.ctx, f.root2, "alice", ""); err != nil {
		t.Fatalf("the same name in another account: %v", err)
	}
}

func TestListUsersIsOrderedByName(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, n := range []string{"zed", "Bob", "alice", "carol"} {
		if _, err := f.d.CreateUser(f.ctx, f.root1, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Stored lowercased: the order ignores case.
	if got, want := userNames(t, f, f.root1), []string{"alice", "Bob", "carol", "zed"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers = %v, want %v", got, want)
	}
	nobody, _, _ := f.user("nobody", nil)
	_, _, err := f.d.ListUsers(f.ctx, nobody, "", "", 100)
	wantErr(t, err, fault.AccessDenied, "User: arn:aws:iam::"+acct+":user/nobody is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+acct+":user/ because no identity-based policy allows the iam:ListUsers action")
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, _, _ := f.user("alice", nil)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "bob", "/p/"); err != nil {
		t.Fatal(err)
	}
	admin, _, _ := f.user("admin", map[string]string{"all": allowIAM})
	self, _, _ := f.user("self", map[string]string{"self": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::*:user/${aws:username}"}]}`})
	quarantined, _, _ := f.user("q", map[string]string{"all": allowAll, "quarantine": denyIAM})
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), "arn:aws:iam::"+acct+":role/r", "s1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	session := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	for _, tc := range []struct {
		name     string
		caller   *identity.Principal
		user     string
		code     fault.Code
		msg      string
		wantARN  string
		wantName string
	}{
		{"a user itself, by no name", self, "", 0, "", "arn:aws:iam::" + acct + ":user/self", "self"},
		{"a user itself, by name", self, "SELF", 0, "", "arn:aws:iam::" + acct + ":user/self", "self"},
		{"a user itself, without a policy", alice, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/alice is not authorized to perform: iam:GetUser on resource: user alice because no identity-based policy allows the iam:GetUser action", "", ""},
		{"a user itself, by name, without a policy", alice, "alice", fault.AccessDenied, "", "", ""},
		{"a quarantined user itself", quarantined, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/q is not authorized to perform: iam:GetUser on resource: user q with an explicit deny in an identity-based policy", "", ""},
		{"the root itself", f.root1, "", 0, "", "arn:aws:iam::" + acct + ":root", ""},
		{"the root, a user", f.root1, "bob", 0, "", "arn:aws:iam::" + acct + ":user/p/bob", "bob"},
		{"a user allowed to, another", admin, "bob", 0, "", "arn:aws:iam::" + acct + ":user/p/bob", "bob"},
		{"a user, another", alice, "bob", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/alice is not authorized to perform: iam:GetUser on resource: user bob because no identity-based policy allows the iam:GetUser action", "", ""},
		{"no such user", f.root1, "nobody", fault.NoSuchEntity, "The user with name nobody cannot be found.", "", ""},
		{"another account's user", f.root2, "bob", fault.NoSuchEntity, "The user with name bob cannot be found.", "", ""},
		{"a role session, by no name", session, "", fault.Validation, "Must specify userName when calling with non-User credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := f.d.GetUser(f.ctx, tc.caller, tc.user)
			check(t, err, tc.code, tc.msg)
			if err == nil && (u.Arn != tc.wantARN || u.UserName != tc.wantName) {
				t.Fatalf("got %+v, want %s named %q", u, tc.wantARN, tc.wantName)
			}
		})
	}
	if u, _ := f.d.GetUser(f.ctx, f.root1, ""); u.UserID != acct {
		t.Fatalf("the root's user id is %q, want the account", u.UserID)
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, key, _ := f.user("withkey", nil)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "withpolicy", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "withpolicy", "p", allowAll); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateUser(f.ctx, f.root1, "Plain", "/x/"); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", nil)
	for _, tc := range []struct {
		name   string
		caller *identity.Principal
		user   string
		code   fault.Code
		msg    string
	}{
		{"no name", f.root1, "", fault.Validation, "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"},
		{"no such user", f.root1, "ghost", fault.NoSuchEntity, "The user with name ghost cannot be found."},
		{"from another account", f.root2, "Plain", fault.NoSuchEntity, "The user with name Plain cannot be found."},
		{"with an access key", f.root1, "withkey", fault.DeleteConflict, "Cannot delete entity, must delete access keys first."},
		{"with a policy", f.root1, "withpolicy", fault.DeleteConflict, "Cannot delete entity, must delete policies first."},
		{"not allowed", nobody, "Plain", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:DeleteUser on resource: user Plain because no identity-based policy allows the iam:DeleteUser action"},
		{"in another case", f.root1, "plain", 0, ""},
		{"again", f.root1, "plain", fault.NoSuchEntity, "The user with name plain cannot be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := userNames(t, f, f.root1)
			err := f.d.DeleteUser(f.ctx, tc.caller, tc.user)
			check(t, err, tc.code, tc.msg)
			after := userNames(t, f, f.root1)
			if err != nil && !slices.Equal(before, after) {
				t.Fatalf("a refused DeleteUser changed the users: %v -> %v", before, after)
			}
			if err == nil && (len(after) != len(before)-1 || slices.Contains(after, "Plain")) {
				t.Fatalf("users %v -> %v", before, after)
			}
		})
	}
	// Once its key and policy are gone, each can go.
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "withkey", key.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.d.DeletePolicy(f.ctx, f.root1, "User", "withpolicy", "p"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"withkey", "withpolicy"} {
		if err := f.d.DeleteUser(f.ctx, f.root1, n); err != nil {
			t.Fatalf("deleting %s: %v", n, err)
		}
	}
}

func TestPrincipalID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "Alice", "/team/"); err != nil {
		t.Fatal(err)
	}
	bob, err := f.d.CreateUser(f.ctx, f.root1, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateRole(f.ctx, f.root1, "Ops", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	for arn, want := range map[string]bool{
		"arn:aws:iam::" + acct + ":user/team/Alice":          true,
		"arn:aws:iam::" + acct + ":user/bob":                 true,
		"arn:aws:iam::" + acct + ":role/Ops":                 true,
		"arn:aws:iam::" + acct + ":user/Alice":               false, // wrong path
		"arn:aws:iam::" + acct + ":user/team/alice":          false, // ARNs keep the case
		"arn:aws:iam::" + acct + ":user/other/bob":           false,
		"arn:aws:iam::" + acct + ":role/bob":                 false,
		"arn:aws:iam::" + acct + ":user/Ops":                 false,
		"arn:aws:iam::" + other + ":user/bob":                false,
		"arn:aws:iam::" + acct + ":group/bob":                false,
		"arn:aws:iam::" + acct + ":root":                     false,
		"arn:aws:iam::" + acct + ":bob":                      false,
		"arn:aws:sts::" + acct + ":assumed-role/Ops/session": false,
		"arn:aws:iam:us-east-1:" + acct + ":user/bob":        false, // IAM ARNs have no region
		"arn:aws-cn:iam::" + acct + ":user/bob":              false, // another partition
		"arn:aws:sts::" + acct + ":user/bob":                 false, // another service
		"arn:aws:iam::" + acct + ":role/Ops:x":               false,
		"aws:aws:iam::" + acct + ":user/bob":                 false,
		"bob":                                                false,
		"":                                                   false,
	} {
		if id, err := f.d.PrincipalID(f.ctx, arn); err != nil || (id != "") != want {
			t.Errorf("PrincipalID(%q) = %q, %v; want found %v", arn, id, err, want)
		}
	}
	if id, _ := f.d.PrincipalID(f.ctx, "arn:aws:iam::"+acct+":user/bob"); id != bob.UserID || !strings.HasPrefix(id, "AIDA") {
		t.Errorf("PrincipalID(bob) = %q, want %q", id, bob.UserID)
	}
	// Made again under the same name, bob is another principal.
	if err := f.d.DeleteUser(f.ctx, f.root1, "bob"); err != nil {
		t.Fatal(err)
	}
	again, err := f.d.CreateUser(f.ctx, f.root1, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := f.d.PrincipalID(f.ctx, "arn:aws:iam::"+acct+":user/bob"); id != again.UserID || id == bob.UserID {
		t.Errorf("PrincipalID(bob made again) = %q, want a new id %q (old %q)", id, again.UserID, bob.UserID)
	}
}

// TestNamedEntitiesTellNothingToTheUnauthorized: a caller who may not act
// on a user or role learns nothing of it, not even whether it exists:
// every call on one by name is refused alike for one that exists (with
// any path) and one that does not, naming it as AWS does ("user NAME").
// A caller allowed by a Resource with a path is decided on the entity's
// real ARN, and on the ARN without a path for a name that names no one.
func TestNamedEntitiesTellNothingToTheUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "bob", "/team/"); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "bob", "p", allowAll); err != nil {
		t.Fatal(err)
	}
	bobKey, _, err := f.d.CreateAccessKey(f.ctx, f.root1, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "bob", "Correct-Horse-9", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateRole(f.ctx, f.root1, "ops", "/svc/", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "ops", "p", allowAll); err != nil {
		t.Fatal(err)
	}
	nobody, _, _ := f.user("nobody", map[string]string{"kms": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`})
	team, _, _ := f.user("team-admin", map[string]string{"team": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":["arn:aws:iam::` + acct + `:user/team/*","arn:aws:iam::` + acct + `:role/svc/*"]}]}`})
	anyone, _, _ := f.user("any-admin", map[string]string{"all": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":["arn:aws:iam::` + acct + `:user/*","arn:aws:iam::` + acct + `:role/*"]}]}`})
	calls := []struct {
		action, kind string
		call         func(p *identity.Principal, name string) error
	}{
		{"iam:GetUser", "user", func(p *identity.Principal, n string) error { _, err := f.d.GetUser(f.ctx, p, n); return err }},
		{"iam:DeleteUser", "user", func(p *identity.Principal, n string) error { return f.d.DeleteUser(f.ctx, p, n) }},
		{"iam:GetUserPolicy", "user", func(p *identity.Principal, n string) error {
			_, _, err := f.d.GetPolicy(f.ctx, p, "User", n, "p")
			return err
		}},
		{"iam:ListUserPolicies", "user", func(p *identity.Principal, n string) error {
			_, _, err := f.d.ListPolicies(f.ctx, p, "User", n, "", 100)
			return err
		}},
		{"iam:DeleteUserPolicy", "user", func(p *identity.Principal, n string) error { return f.d.DeletePolicy(f.ctx, p, "User", n, "nope") }},
		{"iam:PutUserPolicy", "user", func(p *identity.Principal, n string) error { return f.d.PutPolicy(f.ctx, p, "User", n, "q", allowAll) }},
		{"iam:CreateAccessKey", "user", func(p *identity.Principal, n string) error { _, _, err := f.d.CreateAccessKey(f.ctx, p, n); return err }},
		{"iam:ListAccessKeys", "user", func(p *identity.Principal, n string) error {
			_, _, err := f.d.ListAccessKeys(f.ctx, p, n, "", 100)
			return err
		}},
		{"iam:DeleteAccessKey", "user", func(p *identity.Principal, n string) error {
			return f.d.DeleteAccessKey(f.ctx, p, n, "AKIANOSUCHKEY0000000")
		}},
		{"iam:UpdateAccessKey", "user", func(p *identity.Principal, n string) error {
			return f.d.UpdateAccessKey(f.ctx, p, n, bobKey.ID, "Active")
		}},
		{"iam:GetLoginProfile", "user", func(p *identity.Principal, n string) error { _, err := f.d.GetLoginProfile(f.ctx, p, n); return err }},
		{"iam:DeleteLoginProfile", "user", func(p *identity.Principal, n string) error { return f.d.DeleteLoginProfile(f.ctx, p, n) }},
		{"iam:GetRole", "role", func(p *identity.Principal, n string) error { _, err := f.d.GetRole(f.ctx, p, n); return err }},
		{"iam:DeleteRole", "role", func(p *identity.Principal, n string) error { return f.d.DeleteRole(f.ctx, p, n) }},
		{"iam:GetRolePolicy", "role", func(p *identity.Principal, n string) error {
			_, _, err := f.d.GetPolicy(f.ctx, p, "Role", n, "p")
			return err
		}},
		{"iam:ListRolePolicies", "role", func(p *identity.Principal, n string) error {
			_, _, err := f.d.ListPolicies(f.ctx, p, "Role", n, "", 100)
			return err
		}},
		{"iam:DeleteRolePolicy", "role", func(p *identity.Principal, n string) error { return f.d.DeletePolicy(f.ctx, p, "Role", n, "nope") }},
	}
	existing := map[string]string{"user": "bob", "role": "ops"}
	for _, c := range calls {
		t.Run(c.action, func(t *testing.T) {
			for _, name := range []string{existing[c.kind], strings.ToUpper(existing[c.kind]), "ghost"} {
				err := c.call(nobody, name)
				wantErr(t, err, fault.AccessDenied, "User: arn:aws:iam::"+acct+":user/nobody is not authorized to perform: "+c.action+
					" on resource: "+c.kind+" "+name+" because no identity-based policy allows the "+c.action+" action")
			}
			// Allowed on the path: the one there, but not a name that names
			// no one, which has no path.
			wantErr(t, c.call(team, "ghost"), fault.AccessDenied, "User: arn:aws:iam::"+acct+":user/team-admin is not authorized to perform: "+c.action+
				" on resource: "+c.kind+" ghost because no identity-based policy allows the "+c.action+" action")
			if err := c.call(team, existing[c.kind]); err != nil && fault.CodeOf(err) == fault.AccessDenied {
				t.Errorf("allowed by its path: %v", err)
			}
			// Allowed on every name: told what does not exist.
			wantErr(t, c.call(anyone, "ghost"), fault.NoSuchEntity, "")
		})
	}
}
