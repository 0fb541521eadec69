package identity_test

import (
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

// FuzzIAMRecords replaces one stored IAM record (an access key, a user,
// its inline policy, a role, a session) with arbitrary bytes, as a data
// directory that was damaged or tampered with may hold, and then uses
// them: authenticating the user's key, the session and the root, and
// reading users, roles, keys and policies. Nothing panics, and a failed
// authentication returns no principal.
func FuzzIAMRecords(f *testing.F) {
	fx := newFixture(f)
	_, key, secret := fx.user("app", map[string]string{"all": allowAll})
	if _, err := fx.d.CreateRole(fx.ctx, fx.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		f.Fatal(err)
	}
	sess, _, err := fx.d.AssumeRole(fx.ctx, fx.assumer(), roleARN(acct, "r"), "work", 0, "")
	if err != nil {
		f.Fatal(err)
	}
	records := [][]byte{
		[]byte("iam/accesskey/" + key.ID),
		[]byte("iam/user/" + acct + "/app"),
		[]byte("iam/userpolicy/" + acct + "/app/all"),
		[]byte("iam/role/" + acct + "/r"),
		[]byte("iam/session/" + sess.AccessKeyID),
	}
	var stored [][]byte
	if err := fx.st.View(fx.ctx, func(tx store.Tx) error {
		for _, k := range records {
			v, err := tx.Get(k)
			if err != nil {
				return err
			}
			stored = append(stored, append([]byte(nil), v...))
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	// Read every record from the store, not from the directory's cache.
	fx.ctx = identity.WithoutCache(fx.ctx)
	for i, v := range stored {
		f.Add(uint8(i), v)
		f.Add(uint8(i), v[:len(v)/2])
		f.Add(uint8(i), []byte(`{"v":1}`))
		f.Add(uint8(i), []byte(`null`))
	}
	f.Add(uint8(0), []byte(`{"id":"`+key.ID+`","account":"`+acct+`","userName":"../../role/`+acct+`/r"}`))
	f.Fuzz(func(t *testing.T, which uint8, value []byte) {
		fx.t = t
		i := int(which) % len(records)
		put := func(v []byte) {
			if err := fx.st.Update(fx.ctx, func(tx store.Tx) error { return tx.Put(records[i], v) }); err != nil {
				t.Fatal(err)
			}
		}
		put(value)
		defer put(stored[i])
		for _, c := range []struct{ id, secret, token string }{
			{key.ID, secret, ""}, {sess.AccessKeyID, sess.SecretAccessKey, sess.SessionToken}, {fx.rootAK.ID, fx.rootAK.Secret, ""},
		} {
			if p, err := fx.authenticate(c.id, c.secret, c.token); err != nil && p != nil {
				t.Fatalf("authenticating %s failed with %v, and returned %s", c.id, err, p.ARN)
			}
		}
		fx.d.GetUser(fx.ctx, fx.root1, "app")
		fx.d.ListUsers(fx.ctx, fx.root1, "", "", 100)
		fx.d.ListAccessKeys(fx.ctx, fx.root1, "app", "", 100)
		fx.d.GetPolicy(fx.ctx, fx.root1, "User", "app", "all")
		fx.d.ListPolicies(fx.ctx, fx.root1, "User", "app", "", 100)
		fx.d.GetRole(fx.ctx, fx.root1, "r")
		fx.d.ListRoles(fx.ctx, fx.root1, "", "", 100)
		if p, err := fx.d.Refresh(fx.ctx, fx.root1); err != nil || p == nil {
			t.Fatalf("the root's principal no longer refreshes: %v", err)
		}
	})
}
