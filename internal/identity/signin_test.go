package identity_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
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
