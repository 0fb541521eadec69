package identity_test

import (
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

var accessKeyRE = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)

// keyIDs lists the access key ids of a user ("" for the root of acct), as
// the root sees them.
func keyIDs(t *testing.T, f *fixture, user string) []string {
	t.Helper()
	ks, _, err := f.d.ListAccessKeys(f.ctx, f.root1, user, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range ks {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestCreateAccessKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, n := range []string{"alice", "full", "nokeys"} {
		if _, err := f.d.CreateUser(f.ctx, f.root1, n, "/p/"); err != nil {
			t.Fatal(err)
		}
	}
	self, _, _ := f.user("self", map[string]string{"own": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::` + acct + `:user/self"}]}`})
	nobody, _, _ := f.user("nobody", nil)
	for range 2 {
		if _, _, err := f.d.CreateAccessKey(f.ctx, f.root1, "full"); err != nil {
			t.Fatal(err)
		}
	}
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
		user     string // as asked
		owner    string // whose keys to count: "" the root's
		code     fault.Code
		msg      string
		wantType string
		wantARN  string
		wantUser string
	}{
		{"the root, for a user", f.root1, "alice", "alice", 0, "", identity.TypeIAMUser, "arn:aws:iam::" + acct + ":user/p/alice", "alice"},
		{"the root, for a user named in another case", f.root1, "ALICE", "alice", 0, "", identity.TypeIAMUser, "arn:aws:iam::" + acct + ":user/p/alice", "alice"},
		{"the root, for itself", f.root1, "", "", 0, "", identity.TypeRoot, "arn:aws:iam::" + acct + ":root", ""},
		{"a user allowed to, for itself", self, "", "self", 0, "", identity.TypeIAMUser, "arn:aws:iam::" + acct + ":user/self", "self"},
		{"the root, a third key for itself", f.root1, "", "", fault.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: 2", "", "", ""},
		{"the root, a third key for a user", f.root1, "full", "full", fault.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: 2", "", "", ""},
		{"no such user", f.root1, "ghost", "ghost", fault.NoSuchEntity, "The user with name ghost cannot be found.", "", "", ""},
		{"another account's user", f.root2, "nokeys", "nokeys", fault.NoSuchEntity, "The user with name nokeys cannot be found.", "", "", ""},
		{"a user not allowed to, for another", nobody, "nokeys", "nokeys", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: iam:CreateAccessKey on resource: user nokeys because no identity-based policy allows the iam:CreateAccessKey action", "", "", ""},
		{"a user allowed for itself only, for another", self, "nokeys", "nokeys", fault.AccessDenied, "", "", "", ""},
		{"a user not allowed to, for itself", nobody, "", "nobody", fault.AccessDenied, "", "", "", ""},
		{"a role session, for no one", session, "", "", fault.Validation, "Must specify userName when calling with non-User credentials", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before []string
			if tc.owner != "ghost" {
				before = keyIDs(t, f, tc.owner)
			}
			info, secret, err := f.d.CreateAccessKey(f.ctx, tc.caller, tc.user)
			check(t, err, tc.code, tc.msg)
			if err != nil {
				if tc.owner != "ghost" {
					if after := keyIDs(t, f, tc.owner); !slices.Equal(before, after) {
						t.Fatalf("a refused CreateAccessKey changed the keys: %v -> %v", before, after)
					}
				}
				return
			}
			if !accessKeyRE.MatchString(info.ID) || len(secret) != 40 || info.Status != "Active" || !info.Created.Equal(start) || info.UserName != tc.wantUser {
				t.Fatalf("created %+v with a %d-character secret", info, len(secret))
			}
			if after := keyIDs(t, f, tc.owner); !slices.Contains(after, info.ID) || len(after) != len(before)+1 {
				t.Fatalf("keys %v -> %v, want %s added", before, after, info.ID)
			}
			p := f.auth(info.ID, secret, "")
			if p.Type != tc.wantType || p.ARN != tc.wantARN || p.Username != tc.wantUser || p.Account != acct || p.AccessKeyID != info.ID {
				t.Fatalf("the new key authenticates as %+v", p)
			}
			if _, err := f.authenticate(info.ID, secret+"x", ""); err == nil {
				t.Fatal("the new key authenticates with the wrong secret")
			}
		})
	}
}

func TestListAccessKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, aliceKey, _ := f.user("alice", nil)
	bob, bobKey, _ := f.user("Bob", map[string]string{"list": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListAccessKeys","Resource":"*"}]}`})
	quarantined, _, _ := f.user("q", map[string]string{"all": allowAll, "quarantine": denyIAM})
	f.clock.Advance(time.Second)
	second, _, err := f.d.CreateAccessKey(f.ctx, f.root1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		caller *identity.Principal
		user   string
		code   fault.Code
		msg    string
		want   []string
	}{
		{"the root, its own", f.root1, "", 0, "", []string{f.rootAK.ID}},
		{"the root, a user's", f.root1, "alice", 0, "", []string{aliceKey.ID, second.ID}},
		{"a user without a policy, its own by no name", alice, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/alice is not authorized to perform: iam:ListAccessKeys on resource: user alice because no identity-based policy allows the iam:ListAccessKeys action", nil},
		{"a user without a policy, its own by name", alice, "alice", fault.AccessDenied, "", nil},
		{"a user allowed to, its own by no name", bob, "", 0, "", []string{bobKey.ID}},
		{"a quarantined user, its own", quarantined, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/q is not authorized to perform: iam:ListAccessKeys on resource: user q with an explicit deny in an identity-based policy", nil},
		{"a user, another's", alice, "bob", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/alice is not authorized to perform: iam:ListAccessKeys on resource: user bob because no identity-based policy allows the iam:ListAccessKeys action", nil},
		{"a user allowed to, another's", bob, "alice", 0, "", []string{aliceKey.ID, second.ID}},
		{"a user allowed to, its own in another case", bob, "BOB", 0, "", []string{bobKey.ID}},
		{"no such user", f.root1, "ghost", fault.NoSuchEntity, "The user with name ghost cannot be found.", nil},
		{"the other account's root, its own", f.root2, "", 0, "", []string{f.root2.AccessKeyID}},
		{"the other account's root, a user here", f.root2, "alice", fault.NoSuchEntity, "The user with name alice cannot be found.", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, _, err := f.d.ListAccessKeys(f.ctx, tc.caller, tc.user, "", 100)
			check(t, err, tc.code, tc.msg)
			if err != nil {
				return
			}
			var ids []string
			for _, k := range ks {
				ids = append(ids, k.ID)
				if k.Status != "Active" {
					t.Errorf("%s: status %q", k.ID, k.Status)
				}
			}
			slices.Sort(ids)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(ids, want) {
				t.Fatalf("listed %v, want %v", ids, want)
			}
		})
	}
	ks, _, _ := f.d.ListAccessKeys(f.ctx, f.root1, "ALICE", "", 100)
	for _, k := range ks {
		want := start
		if k.ID == second.ID {
			want = start.Add(time.Second)
		}
		if k.UserName != "alice" || !k.Created.Equal(want) {
			t.Fatalf("listed %+v, want user alice created %v", k, want)
		}
	}
}

func TestDeleteAccessKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, aliceKey, aliceSecret := f.user("alice", nil)
	_, bobKey, _ := f.user("bob", nil)
	admin, _, _ := f.user("admin", map[string]string{"all": allowIAM})
	second, secondSecret, err := f.d.CreateAccessKey(f.ctx, f.root1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		caller *identity.Principal
		user   string
		id     string
		code   fault.Code
		msg    string
	}{
		{"no id", f.root1, "alice", "", fault.Validation,
			"1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null"},
		{"no such key", f.root1, "alice", "AKIAAAAAAAAAAAAAAAAA", fault.NoSuchEntity, "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found."},
		{"another user's key", f.root1, "bob", aliceKey.ID, fault.NoSuchEntity, "The Access Key with id " + aliceKey.ID + " cannot be found."},
		{"a user's key as the root's", f.root1, "", aliceKey.ID, fault.NoSuchEntity, ""},
		{"the root's key as a user's", f.root1, "alice", second.ID, fault.NoSuchEntity, ""},
		{"from another account", f.root2, "alice", aliceKey.ID, fault.NoSuchEntity, ""},
		{"the other account's root, this root's key", f.root2, "", second.ID, fault.NoSuchEntity, ""},
		{"a user, another's key", alice, "bob", bobKey.ID, fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/alice is not authorized to perform: iam:DeleteAccessKey on resource: user bob because no identity-based policy allows the iam:DeleteAccessKey action"},
		{"a user, its own key, without a policy", alice, "", aliceKey.ID, fault.AccessDenied, ""},
		{"a user allowed to, another's key", admin, "bob", bobKey.ID, 0, ""},
		{"the root, a user's key named in another case", f.root1, "ALICE", aliceKey.ID, 0, ""},
		{"the root, its second key", f.root1, "", second.ID, 0, ""},
		{"the same key again", f.root1, "", second.ID, fault.NoSuchEntity, "The Access Key with id " + second.ID + " cannot be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := tc.user
			if owner == "" && tc.caller.Type == identity.TypeIAMUser {
				owner = tc.caller.Username
			}
			var before []string
			if tc.caller.Account == acct {
				before = keyIDs(t, f, owner)
			}
			err := f.d.DeleteAccessKey(f.ctx, tc.caller, tc.user, tc.id)
			check(t, err, tc.code, tc.msg)
			if tc.caller.Account == acct {
				after := keyIDs(t, f, owner)
				if err != nil && !slices.Equal(before, after) {
					t.Fatalf("a refused DeleteAccessKey changed the keys: %v -> %v", before, after)
				}
				if err == nil && (slices.Contains(after, tc.id) || len(after) != len(before)-1) {
					t.Fatalf("keys %v -> %v, want %s gone", before, after, tc.id)
				}
			}
		})
	}
	// A deleted key no longer authenticates, from the next request on.
	for id, secret := range map[string]string{aliceKey.ID: aliceSecret, second.ID: secondSecret} {
		_, err := f.authenticate(id, secret, "")
		wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	}
}

// TestDeleteRootBootstrapKey: deleting the root's first key never makes
// InitAccount give it another: it returns the root's other key, or
// ErrNoRootKey when it has none.
func TestDeleteRootBootstrapKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	second, secondSecret, err := f.d.CreateAccessKey(f.ctx, f.root1, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "", f.rootAK.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.authenticate(f.rootAK.ID, f.rootAK.Secret, "")
	wantErr(t, err, fault.InvalidClientTokenID, "")
	ak, created, err := identity.InitAccount(f.ctx, f.st, f.root, acct)
	if err != nil || created || ak != (identity.AccessKey{ID: second.ID, Secret: secondSecret}) {
		t.Fatalf("InitAccount after the first key was deleted = %v, %v, %v; want the second key %s, not created", ak.ID, created, err, second.ID)
	}
	// The root signing with its first key, deleted, does nothing more:
	// it deletes its last key signing with that one.
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "", second.ID); !fault.Is(err, fault.InvalidClientTokenID) {
		t.Fatalf("DeleteAccessKey signed with a deleted key: %v, want InvalidClientTokenId", err)
	}
	root2, err := f.authenticate(second.ID, secondSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.DeleteAccessKey(f.ctx, root2, "", second.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.InitAccount(f.ctx, f.st, f.root, acct); !errors.Is(err, identity.ErrNoRootKey) {
		t.Fatalf("InitAccount for a root without keys: %v, want ErrNoRootKey", err)
	}
	if ids := keyIDs(t, f, ""); len(ids) != 0 {
		t.Fatalf("the root's keys are %v, want none", ids)
	}
	if ak, created, err := identity.InitAccount(f.ctx, f.st, f.root, other); err != nil || created || ak.ID == "" {
		t.Fatalf("the other account: %v, %v, %v", ak.ID, created, err)
	}
}

// TestInitAccountOfAnOlderStore: a store written before the account
// record existed is initialised if its account has IAM records, even with
// its root's first key gone, and gets the record then.
func TestInitAccountOfAnOlderStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		prepare func(*fixture) error
		deleted func(*fixture) []string // records the older store lacks
	}{
		{"first key kept", nil, func(*fixture) []string { return nil }},
		{"first key deleted, another kept", func(f *fixture) error {
			_, _, err := f.d.CreateAccessKey(f.ctx, f.root1, "")
			return err
		}, func(f *fixture) []string {
			return []string{"iam/rootkey/" + acct, "iam/rootkeys/" + acct + "/" + f.rootAK.ID, "iam/accesskey/" + f.rootAK.ID}
		}},
		{"users only", func(f *fixture) error {
			_, err := f.d.CreateUser(f.ctx, f.root1, "alice", "")
			return err
		}, func(f *fixture) []string {
			return []string{"iam/rootkey/" + acct, "iam/rootkeys/" + acct + "/" + f.rootAK.ID, "iam/accesskey/" + f.rootAK.ID}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.prepare != nil {
				if err := tc.prepare(f); err != nil {
					t.Fatal(err)
				}
			}
			err := f.st.Update(f.ctx, func(tx store.Tx) error {
				for _, k := range append(tc.deleted(f), "iam/account/"+acct) {
					if err := tx.Delete([]byte(k)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			f.d.Changed(nil)
			before := keyIDs(t, f, "")
			_, created, err := identity.InitAccount(f.ctx, f.st, f.root, acct)
			if created || (err != nil && !errors.Is(err, identity.ErrNoRootKey)) {
				t.Fatalf("InitAccount = created %v, %v", created, err)
			}
			if after := keyIDs(t, f, ""); !slices.Equal(after, before) {
				t.Fatalf("the root's keys went from %v to %v", before, after)
			}
			err = f.st.View(f.ctx, func(tx store.Tx) error {
				_, err := tx.Get([]byte("iam/account/" + acct))
				return err
			})
			if err != nil {
				t.Fatalf("the account record was not written: %v", err)
			}
		})
	}
}

// TestRecordsFromBeforeTheRootKeyIndex: data written before the index of
// the root's keys existed has only the bootstrap key, and key records
// without a status; the bootstrap key still counts towards the root's
// two and reads as Active.
func TestRecordsFromBeforeTheRootKeyIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	err := f.st.Update(f.ctx, func(tx store.Tx) error {
		if err := tx.Delete([]byte("iam/rootkeys/" + acct + "/" + f.rootAK.ID)); err != nil {
			return err
		}
		var rec map[string]any
		if err := store.GetJSON(tx, []byte("iam/accesskey/"+f.rootAK.ID), &rec); err != nil {
			return err
		}
		delete(rec, "status")
		return store.PutJSON(tx, []byte("iam/accesskey/"+f.rootAK.ID), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.d.Changed(nil)
	ks, _, err := f.d.ListAccessKeys(f.ctx, f.root1, "", "", 100)
	if err != nil || len(ks) != 1 || ks[0].ID != f.rootAK.ID || ks[0].Status != "Active" {
		t.Fatalf("ListAccessKeys = %+v, %v; want the bootstrap key, Active", ks, err)
	}
	f.auth(f.rootAK.ID, f.rootAK.Secret, "")
	second, _, err := f.d.CreateAccessKey(f.ctx, f.root1, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.d.CreateAccessKey(f.ctx, f.root1, "")
	wantErr(t, err, fault.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: 2")
	if got, want := keyIDs(t, f, ""), slices.Sorted(slices.Values([]string{f.rootAK.ID, second.ID})); !slices.Equal(got, want) {
		t.Fatalf("the root's keys are %v, want %v", got, want)
	}
}

// TestRoleSessionCannotManageRootKeys: a role session has no access keys
// of its own, so without a UserName each access-key call is refused as AWS
// refuses it; none reaches the account root's keys, however broad the
// role's policies.
func TestRoleSessionCannotManageRootKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "admin", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "admin", "all", allowAll); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "admin"), "s1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	session := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	const msg = "Must specify userName when calling with non-User credentials"
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateAccessKey", func() error { _, _, err := f.d.CreateAccessKey(f.ctx, session, ""); return err }},
		{"ListAccessKeys", func() error { _, _, err := f.d.ListAccessKeys(f.ctx, session, "", "", 100); return err }},
		{"DeleteAccessKey", func() error { return f.d.DeleteAccessKey(f.ctx, session, "", f.rootAK.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), fault.Validation, msg)
			if ids := keyIDs(t, f, ""); !slices.Equal(ids, []string{f.rootAK.ID}) {
				t.Fatalf("the root's keys are now %v", ids)
			}
			f.auth(f.rootAK.ID, f.rootAK.Secret, "")
		})
	}
	// Named, a user's keys are the session's to manage as its policies say.
	if _, err := f.d.CreateUser(f.ctx, f.root1, "alice", ""); err != nil {
		t.Fatal(err)
	}
	k, _, err := f.d.CreateAccessKey(f.ctx, session, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ks, _, err := f.d.ListAccessKeys(f.ctx, session, "alice", "", 100); err != nil || len(ks) != 1 {
		t.Fatalf("ListAccessKeys of alice = %v, %v", ks, err)
	}
	if err := f.d.DeleteAccessKey(f.ctx, session, "alice", k.ID); err != nil {
		t.Fatal(err)
	}
}
