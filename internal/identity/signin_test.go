package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
)

func TestSignInWithPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, _, _ := f.user("alice", map[string]string{"all": allowAll})
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "alice", "Correct-Horse-9", false); err != nil {
		t.Fatal(err)
	}
	p, err := f.d.SignInWithPassword(f.ctx, acct, "alice", "Correct-Horse-9")
	if err != nil {
		t.Fatal(err)
	}
	if p.ARN != alice.ARN || p.Type != identity.TypeIAMUser || len(p.Policies) != 1 || p.AccessKeyID != "" {
		t.Fatalf("signed in as %+v", p)
	}
	for _, tc := range []struct{ name, account, user, password string }{
		{"a wrong password", acct, "alice", "Correct-Horse-8"},
		{"another account", other, "alice", "Correct-Horse-9"},
		{"no such user", acct, "nobody", "Correct-Horse-9"},
		{"an empty password", acct, "alice", ""},
		{"a bad account id", "1", "alice", "Correct-Horse-9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.d.SignInWithPassword(f.ctx, tc.account, tc.user, tc.password); !errors.Is(err, identity.ErrSignInFailed) {
				t.Fatalf("got %v, want ErrSignInFailed", err)
			}
		})
	}

	// A changed password takes effect at once, and ends the sessions
	// signed in with the old one; so does requiring a reset; so does
	// deleting the profile.
	if _, err := f.d.Refresh(f.ctx, p); err != nil {
		t.Fatalf("Refresh with the profile unchanged: %v", err)
	}
	pw := "Battery-Staple-7"
	if err := f.d.UpdateLoginProfile(f.ctx, f.root1, "alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "alice", "Correct-Horse-9"); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("the old password still signs in: %v", err)
	}
	if _, err := f.d.Refresh(f.ctx, p); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("Refresh of a session of the old password: %v", err)
	}
	p2, err := f.d.SignInWithPassword(f.ctx, acct, "alice", pw)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err = f.d.Refresh(f.ctx, p2); err != nil {
		t.Fatalf("Refresh of a session of the new password: %v", err)
	}
	if _, err := f.d.Refresh(f.ctx, p2); err != nil {
		t.Fatalf("Refresh of a refreshed session: %v", err)
	}
	reset := true
	if err := f.d.UpdateLoginProfile(f.ctx, f.root1, "alice", nil, &reset); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Refresh(f.ctx, p2); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("Refresh once a reset is required: %v", err)
	}
	if err := f.d.DeleteLoginProfile(f.ctx, f.root1, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Refresh(f.ctx, p2); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("Refresh after the profile is deleted: %v", err)
	}
}

func TestSignInWithAccessKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p, err := f.d.SignInWithAccessKey(f.ctx, f.rootAK.ID, f.rootAK.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != identity.TypeRoot || p.Account != acct {
		t.Fatalf("signed in as %+v", p)
	}
	bob, k, secret := f.user("bob", nil)
	for _, tc := range []struct{ name, akid, secret string }{
		{"a wrong secret", k.ID, secret + "x"},
		{"an unknown key", "AKIAUNKNOWNUNKNOWN00", secret},
		{"no key", "", secret},
		{"a session key", "ASIA" + k.ID[4:], secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.d.SignInWithAccessKey(f.ctx, tc.akid, tc.secret); !errors.Is(err, identity.ErrSignInFailed) {
				t.Fatalf("got %v, want ErrSignInFailed", err)
			}
		})
	}
	bp, err := f.d.SignInWithAccessKey(f.ctx, k.ID, secret)
	if err != nil || bp.ARN != bob.ARN {
		t.Fatalf("bob signs in as %+v, %v", bp, err)
	}
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "bob", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Refresh(f.ctx, bp); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("Refresh after the access key is deleted: %v", err)
	}
}

func TestLoginProfilePasswordPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("dave", nil)
	for _, tc := range []struct {
		password string
		code     fault.Code
	}{
		{"Correct-Horse-9", 0},
		{"short1A", fault.PasswordPolicyViolation},
		{"onlylowercaseletters", fault.PasswordPolicyViolation},
		{"lowercase123", fault.PasswordPolicyViolation},
		{"lowercase123!", 0},
		{"DAVE", fault.PasswordPolicyViolation},
		{"", fault.Validation},
		{"Tab\x01Control1", fault.Validation},
	} {
		_, err := f.d.CreateLoginProfile(f.ctx, f.root1, "dave", tc.password, false)
		if tc.code == 0 {
			if err != nil {
				t.Fatalf("%q refused: %v", tc.password, err)
			}
			if err := f.d.DeleteLoginProfile(f.ctx, f.root1, "dave"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wantErr(t, err, tc.code, "")
	}
}

func TestChangePasswordAtSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("gina", nil)
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "gina", "Temporary-Pass-1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Temporary-Pass-1"); !errors.Is(err, identity.ErrPasswordResetRequired) {
		t.Fatalf("the temporary password: %v", err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Wrong-Pass-1"); !errors.Is(err, identity.ErrSignInFailed) || errors.Is(err, identity.ErrPasswordResetRequired) {
		t.Fatalf("a wrong password while a reset is required: %v", err)
	}
	if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Wrong-Pass-1", "Chosen-Pass-2", nil, nil); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("a change with a wrong password: %v", err)
	}
	_, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Temporary-Pass-1", "short", nil, nil)
	wantErr(t, err, fault.PasswordPolicyViolation, "Password should have a minimum length of 8")
	p, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "GINA", "Temporary-Pass-1", "Chosen-Pass-2", nil, nil)
	if err != nil || p.Username != "gina" {
		t.Fatalf("the change: %+v %v", p, err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Chosen-Pass-2"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	// No reset is required any more: the change is refused, the password kept.
	if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Chosen-Pass-2", "Another-Pass-3", nil, nil); !errors.Is(err, identity.ErrSignInFailed) {
		t.Fatalf("a change without a required reset: %v", err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Chosen-Pass-2"); err != nil {
		t.Fatalf("the password after a refused change: %v", err)
	}
}

// readsFailAfterAWrite is a store whose reads fail once a write has
// committed through it: a store that fails between two transactions.
type readsFailAfterAWrite struct {
	store.Store
	wrote atomic.Bool
}

func (s *readsFailAfterAWrite) Update(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	if err == nil {
		s.wrote.Store(true)
	}
	return err
}

func (s *readsFailAfterAWrite) View(ctx context.Context, fn func(store.Tx) error) error {
	if s.wrote.Load() {
		return errors.New("the store fails")
	}
	return s.Store.View(ctx, fn)
}

// A password changed at sign-in is reported as changed, whatever fails
// after the change: its caller records the change it is told of, and an
// error must mean that nothing changed.
func TestChangePasswordAtSignInReportsTheChangeItMade(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("gina", nil)
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "gina", "Temporary-Pass-1", true); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.Store = &readsFailAfterAWrite{Store: f.st}
	p, err := identity.New(cfg).ChangePasswordAtSignIn(f.ctx, acct, "gina", "Temporary-Pass-1", "Chosen-Pass-2", nil, nil)
	_, changed := f.d.SignInWithPassword(f.ctx, acct, "gina", "Chosen-Pass-2")
	if err != nil || p == nil || p.Username != "gina" || changed != nil {
		t.Fatalf("the change: %+v, %v; the new password signs in: %v", p, err, changed)
	}
}

// The change is asked of mayChange only once the old password is verified
// and the new one accepted: a caller who does not know the password never
// reaches it. Its refusal changes nothing.
func TestChangePasswordAtSignInAsksBeforeTheChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("gina", nil)
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "gina", "Temporary-Pass-1", true); err != nil {
		t.Fatal(err)
	}
	asked := 0
	refuse := errors.New("not now")
	mayChange := func() error { asked++; return refuse }
	if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Wrong-Pass-1", "Chosen-Pass-2", mayChange, nil); !errors.Is(err, identity.ErrSignInFailed) || asked != 0 {
		t.Fatalf("a wrong password: %v, asked %d times", err, asked)
	}
	if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Temporary-Pass-1", "short", mayChange, nil); err == nil || asked != 0 {
		t.Fatalf("a weak new password: %v, asked %d times", err, asked)
	}
	if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Temporary-Pass-1", "Chosen-Pass-2", mayChange, nil); !errors.Is(err, refuse) || asked != 1 {
		t.Fatalf("a change refused: %v, asked %d times", err, asked)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Temporary-Pass-1"); !errors.Is(err, identity.ErrPasswordResetRequired) {
		t.Fatalf("the temporary password after a refused change: %v", err)
	}
}

// A password replaced while a change at sign-in checks the old one (an
// administrator resetting a leaked temporary password, with the reset
// still required) is not overwritten by that change: the old password
// no longer holds when the change would be written. mayChange runs
// between the check and the change's transaction, which is where the
// replacement lands here.
func TestChangePasswordAtSignInRefusedOncePasswordReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		replace func(f *fixture) error
	}{
		{"updated", func(f *fixture) error {
			pw, reset := "Replaced-Pass-9", true
			return f.d.UpdateLoginProfile(f.ctx, f.root1, "gina", &pw, &reset)
		}},
		{"deleted and made again", func(f *fixture) error {
			if err := f.d.DeleteLoginProfile(f.ctx, f.root1, "gina"); err != nil {
				return err
			}
			_, err := f.d.CreateLoginProfile(f.ctx, f.root1, "gina", "Replaced-Pass-9", true)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.user("gina", nil)
			if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "gina", "Temporary-Pass-1", true); err != nil {
				t.Fatal(err)
			}
			mayChange := func() error { return tc.replace(f) }
			if _, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "gina", "Temporary-Pass-1", "Chosen-Pass-2", mayChange, nil); !errors.Is(err, identity.ErrSignInFailed) {
				t.Fatalf("a change with a password replaced meanwhile: %v", err)
			}
			if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Chosen-Pass-2"); !errors.Is(err, identity.ErrSignInFailed) {
				t.Fatalf("the password the refused change chose: %v", err)
			}
			if _, err := f.d.SignInWithPassword(f.ctx, acct, "gina", "Replaced-Pass-9"); !errors.Is(err, identity.ErrPasswordResetRequired) {
				t.Fatalf("the replacing password: %v", err)
			}
		})
	}
}

// A change that takes a password's hash out of the store (a password
// replaced by UpdateLoginProfile or at sign-in, a login profile deleted)
// marks the store for a compaction (store.NoteErased), as a deleted
// access key does; a change that keeps the hash, and a refused one, do
// not.
func TestPasswordHashErasuresAreMarked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("hank", nil)
	marks := func() int {
		t.Helper()
		m, err := store.Erased(f.ctx, f.st)
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	pw, weak, reset := "Battery-Staple-7", "short", true
	for _, tc := range []struct {
		name   string
		change func() error
		marked bool
	}{
		{"CreateLoginProfile", func() error {
			_, err := f.d.CreateLoginProfile(f.ctx, f.root1, "hank", "Correct-Horse-9", false)
			return err
		}, false},
		{"UpdateLoginProfile of the reset flag", func() error { return f.d.UpdateLoginProfile(f.ctx, f.root1, "hank", nil, &reset) }, false},
		{"UpdateLoginProfile with a password refused", func() error {
			if err := f.d.UpdateLoginProfile(f.ctx, f.root1, "hank", &weak, nil); err == nil {
				return errors.New("a weak password was accepted")
			}
			return nil
		}, false},
		{"ChangePasswordAtSignIn", func() error {
			_, err := f.d.ChangePasswordAtSignIn(f.ctx, acct, "hank", "Correct-Horse-9", "Chosen-Pass-2", nil, nil)
			return err
		}, true},
		{"UpdateLoginProfile with a password", func() error { return f.d.UpdateLoginProfile(f.ctx, f.root1, "hank", &pw, nil) }, true},
		{"DeleteLoginProfile", func() error { return f.d.DeleteLoginProfile(f.ctx, f.root1, "hank") }, true},
		{"DeleteLoginProfile of no profile", func() error {
			if err := f.d.DeleteLoginProfile(f.ctx, f.root1, "hank"); err == nil {
				return errors.New("a missing profile was deleted")
			}
			return nil
		}, false},
	} {
		before := marks()
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := marks() > before; got != tc.marked {
			t.Errorf("%s: marked the store for a compaction: %v, want %v", tc.name, got, tc.marked)
		}
	}
}

// A login profile's record holds its password's Argon2id hash sealed
// under the root key: a copy of the store or a backup, without the root
// key, gives nothing to check a guessed password against offline (it
// held the hash and its salt in the clear). A record written before,
// with the hash in the clear, still signs in, and the next password
// change seals it.
func TestLoginProfileHashIsSealed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user("alice", map[string]string{"all": allowAll})
	const pw = "Correct-Horse-9"
	if _, err := f.d.CreateLoginProfile(f.ctx, f.root1, "alice", pw, false); err != nil {
		t.Fatal(err)
	}
	name := []byte("iam/loginprofile/" + acct + "/alice")
	raw := func() []byte {
		t.Helper()
		var v []byte
		if err := f.st.View(f.ctx, func(tx store.Tx) error {
			var err error
			v, err = tx.Get(name)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var rec struct {
		Hash struct {
			Salt []byte `json:"salt"`
		}
	}
	if err := json.Unmarshal(raw(), &rec); err != nil || len(rec.Hash.Salt) == 0 {
		t.Fatalf("the record %s: %v", raw(), err)
	}
	sum := argon2.IDKey([]byte(pw), rec.Hash.Salt, 2, 19*1024, 1, 32)
	if v := raw(); bytes.Contains(v, sum) || bytes.Contains(v, []byte(base64.StdEncoding.EncodeToString(sum))) {
		t.Fatalf("the record holds the password's hash in the clear: %s", v)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "alice", pw); err != nil {
		t.Fatalf("sign-in with the password: %v", err)
	}

	// A record as written before.
	legacy, _ := json.Marshal(map[string]any{"v": 1, "userName": "alice", "created": start.UTC(),
		"Hash": map[string]any{"salt": rec.Hash.Salt, "hash": sum, "argon2Time": 2, "argon2MemoryKiB": 19 * 1024, "argon2Threads": 1}})
	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put(name, legacy) }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "alice", pw); err != nil {
		t.Fatalf("sign-in with the password of a record written before: %v", err)
	}
	// A start seals it, and marks the change erased for the compaction
	// that clears the store's files of the clear hash.
	if n, err := f.d.SealStoredPasswordHashes(f.ctx); err != nil || n != 1 {
		t.Fatalf("SealStoredPasswordHashes = %d, %v; want 1 sealed", n, err)
	}
	if v := raw(); bytes.Contains(v, sum) || bytes.Contains(v, []byte(base64.StdEncoding.EncodeToString(sum))) || !bytes.Contains(v, []byte(`"sealedHash"`)) {
		t.Fatalf("the record written before, once sealed at start: %s", v)
	}
	if !erasureNoted(t, f.st) {
		t.Error("sealing a clear hash noted no erasure")
	}
	if n, err := f.d.SealStoredPasswordHashes(f.ctx); err != nil || n != 0 {
		t.Fatalf("SealStoredPasswordHashes again = %d, %v; want none", n, err)
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "alice", pw); err != nil {
		t.Fatalf("sign-in with the password of a record sealed at start: %v", err)
	}
	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put(name, legacy) }); err != nil {
		t.Fatal(err)
	}
	pw2 := "Battery-Staple-7"
	if err := f.d.UpdateLoginProfile(f.ctx, f.root1, "alice", &pw2, nil); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw(), []byte(`"hash":"`)) {
		t.Errorf("a changed password's hash is in the clear: %s", raw())
	}
	if _, err := f.d.SignInWithPassword(f.ctx, acct, "alice", pw2); err != nil {
		t.Fatalf("sign-in with the changed password: %v", err)
	}

	// The sealed hash is a sealed value of the store: a root key
	// rotation rewraps it, and the password signs in under the new key.
	k := make([]byte, keys.RootKeySize)
	rand.Read(k)
	newRoot, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Update(f.ctx, func(tx store.Tx) error {
		return tx.Put(keys.RootCheckRecord, f.root.Seal(keys.RootCheckRecord, []byte("openkms root key check")))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rekey.Rotate(f.ctx, f.st, f.root, newRoot, nil); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.RootKey = newRoot
	if _, err := identity.New(cfg).SignInWithPassword(f.ctx, acct, "alice", pw2); err != nil {
		t.Fatalf("sign-in after a root key rotation: %v", err)
	}
}

// erasureNoted reports whether st holds an erasure mark (store.NoteErased).
func erasureNoted(t *testing.T, st store.Store) bool {
	t.Helper()
	found := false
	if err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("meta/erased/"), nil, func(k, v []byte) (bool, error) {
			found = true
			return false, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return found
}
