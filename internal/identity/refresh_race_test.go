package identity_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

// A read of a credential in the background that an IAM change overtakes
// does not land: the access key deleted, here or by another process
// whose notification arrives, is refused from then on.
func TestCredentialRefreshOvertakenByAChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		delete func(f *fixture, d *identity.Directory, akid string)
	}{
		{"deleted here", func(f *fixture, d *identity.Directory, akid string) {
			if err := d.DeleteAccessKey(f.ctx, f.root1, "alice", akid); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted by another process", func(f *fixture, d *identity.Directory, akid string) {
			if err := identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "alice", akid); err != nil {
				t.Fatal(err)
			}
			d.Changed(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h := testsupport.NewHoldStore(f.st)
			cfg := f.cfg
			cfg.Store, cfg.CacheMaxAge = h, 10*time.Second
			d := identity.New(cfg)
			refreshed := make(chan struct{}, 4)
			identity.OnRefreshed(d, func() { refreshed <- struct{}{} })
			_, alice, secret := f.user("alice", nil)
			auth := func() error {
				req, body := f.request("sts", alice.ID, secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
				_, _, err := d.Authenticate(f.ctx, req, body, "sts")
				return err
			}
			if err := auth(); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(7500 * time.Millisecond)
			h.Arm()
			if err := auth(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-h.Held:
			case <-time.After(10 * time.Second):
				t.Fatal("no read in the background")
			}
			tc.delete(f, d, alice.ID)
			close(h.Release)
			select {
			case <-refreshed:
			case <-time.After(10 * time.Second):
				t.Fatal("the read in the background did not end")
			}
			wantErr(t, auth(), fault.InvalidClientTokenID, "The security token included in the request is invalid.")
		})
	}
}
