package identity_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

// otherChanges are changes to what alice's credential is not read from:
// another user's access key, policies or record, or a role's, made by the
// directory itself or by another process that announces them.
var otherChanges = []struct {
	name   string
	change func(t *testing.T, f *fixture, d *identity.Directory, bobKey string)
}{
	{"another user's access key made inactive here", func(t *testing.T, f *fixture, d *identity.Directory, bobKey string) {
		must(t, d.UpdateAccessKey(f.ctx, f.root1, "bob", bobKey, "Inactive"))
	}},
	{"another user's access key deleted elsewhere", func(t *testing.T, f *fixture, d *identity.Directory, bobKey string) {
		must(t, identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "bob", bobKey))
		d.Changed([][]byte{[]byte("iam/accesskey/" + bobKey), []byte("iam/userkey/" + acct + "/bob/" + bobKey)})
	}},
	{"another user's policy put here", func(t *testing.T, f *fixture, d *identity.Directory, _ string) {
		must(t, d.PutPolicy(f.ctx, f.root1, "User", "bob", "more", allowAll))
	}},
	{"another user's policy deleted elsewhere", func(t *testing.T, f *fixture, d *identity.Directory, _ string) {
		must(t, identity.New(f.cfg).DeletePolicy(f.ctx, f.root1, "User", "bob", "p0"))
		d.Changed([][]byte{[]byte("iam/userpolicy/" + acct + "/bob/p0")})
	}},
	{"a role's policy put here", func(t *testing.T, f *fixture, d *identity.Directory, _ string) {
		must(t, d.PutPolicy(f.ctx, f.root1, "Role", "r", "p", allowAll))
	}},
	{"a role session made elsewhere", func(t *testing.T, f *fixture, d *identity.Directory, _ string) {
		d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2")})
	}},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// heldDirectory is a directory over f's store whose reads can be held,
// with a max age of 10 s, and a channel told after each read in the
// background; and the users alice and bob (with a policy) and a role.
func heldDirectory(t *testing.T, f *fixture) (d *identity.Directory, h *testsupport.HoldStore, refreshed chan struct{}, auth func() (*identity.Principal, error), aliceKey, bobKey string) {
	t.Helper()
	h = testsupport.NewHoldStore(f.st)
	cfg := f.cfg
	cfg.Store, cfg.CacheMaxAge = h, 10*time.Second
	d = identity.New(cfg)
	refreshed = make(chan struct{}, 4)
	identity.OnRefreshed(d, func() { refreshed <- struct{}{} })
	_, alice, secret := f.user("alice", nil)
	_, bob, _ := f.user("bob", map[string]string{"p0": allowIAM})
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	auth = func() (*identity.Principal, error) {
		req, body := f.request("sts", alice.ID, secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
		p, _, err := d.Authenticate(f.ctx, req, body, "sts")
		return p, err
	}
	return d, h, refreshed, auth, alice.ID, bob.ID
}

func awaitOr(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// A credential in use read again in the background lands though another
// user's records changed while the read was under way: on a cluster an
// access key or policy changes somewhere often enough that a read that
// any such change threw away would seldom land.
func TestCredentialRefreshLandsOverAnotherUsersChange(t *testing.T) {
	t.Parallel()
	for _, tc := range otherChanges {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			d, h, refreshed, auth, aliceKey, bobKey := heldDirectory(t, f)
			if _, err := auth(); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(7500 * time.Millisecond)
			h.Arm()
			if _, err := auth(); err != nil {
				t.Fatal(err)
			}
			awaitOr(t, h.Held, "no read in the background")
			tc.change(t, f, d, bobKey)
			close(h.Release)
			awaitOr(t, refreshed, "the read in the background did not end")

			// Alice's key is deleted elsewhere, untold: the credential read
			// in the background is trusted for its max age from that read.
			must(t, identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "alice", aliceKey))
			f.clock.Advance(5 * time.Second)
			if _, err := auth(); err != nil {
				t.Errorf("12.5 s after the first read, 5 s after the one in the background: %v; that read did not land", err)
			}
		})
	}
}

// A credential read on a call lands though another user's records changed
// while the read was under way.
func TestCredentialReadLandsOverAnotherUsersChange(t *testing.T) {
	t.Parallel()
	for _, tc := range otherChanges {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			d, h, _, auth, aliceKey, bobKey := heldDirectory(t, f)
			h.Arm()
			errs := make(chan error, 1)
			go func() {
				_, err := auth()
				errs <- err
			}()
			awaitOr(t, h.Held, "no read")
			tc.change(t, f, d, bobKey)
			close(h.Release)
			must(t, <-errs)
			must(t, identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "alice", aliceKey))
			if _, err := auth(); err != nil {
				t.Errorf("the credential read was not cached: %v", err)
			}
		})
	}
}

// A credential read, in the background or on a call, that a change to
// the credential's own user, access key or to everything overtook does
// not land.
func TestCredentialReadOvertakenByItsOwnChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *fixture, d *identity.Directory)
	}{
		{"its user's policy put here", func(t *testing.T, f *fixture, d *identity.Directory) {
			must(t, d.PutPolicy(f.ctx, f.root1, "User", "alice", "p", allowAll))
		}},
		{"its user's policy put elsewhere", func(t *testing.T, f *fixture, d *identity.Directory) {
			must(t, identity.New(f.cfg).PutPolicy(f.ctx, f.root1, "User", "alice", "p", allowAll))
			d.Changed([][]byte{[]byte("iam/userpolicy/" + acct + "/alice/p")})
		}},
		{"anything may have changed", func(t *testing.T, f *fixture, d *identity.Directory) {
			must(t, identity.New(f.cfg).PutPolicy(f.ctx, f.root1, "User", "alice", "p", allowAll))
			d.Changed(nil)
		}},
	} {
		for _, background := range []bool{true, false} {
			name := tc.name + ", on a call"
			if background {
				name = tc.name + ", in the background"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				d, h, refreshed, auth, _, _ := heldDirectory(t, f)
				errs := make(chan error, 1)
				if background {
					must(t, func() error { _, err := auth(); return err }())
					f.clock.Advance(7500 * time.Millisecond)
				}
				h.Arm()
				go func() {
					_, err := auth()
					errs <- err
				}()
				awaitOr(t, h.Held, "no read")
				tc.change(t, f, d)
				close(h.Release)
				must(t, <-errs)
				if background {
					awaitOr(t, refreshed, "the read in the background did not end")
				}
				p, err := auth()
				must(t, err)
				if len(p.Policies) != 1 {
					t.Errorf("alice has %d policies, want the one put: the read before the change landed over it", len(p.Policies))
				}
			})
		}
	}
}
