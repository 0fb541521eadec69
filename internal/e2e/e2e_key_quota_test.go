package e2e_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// TestE2EKeyQuota: an account has at most its quota of keys in a region,
// as on AWS. CreateKey and ReplicateKey past it get LimitExceededException
// and make nothing; a key pending deletion still counts, a deleted one no
// longer does; each region counts its own; and a store whose count record
// is gone counts its keys again.
func TestE2EKeyQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rk := make([]byte, 32)
	rand.Read(rk)
	path := filepath.Join(t.TempDir(), "kms.db")
	clock := testsupport.NewClock(e2eStart)
	quota := func(c *service.Config) { c.KeyQuota = 3 }
	e := openKMSEnvWith(t, path, rk, clock, quota)
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]

	first := e.newKey(t)
	e.newKey(t)
	mrk := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	refused := func(what string, err error) {
		t.Helper()
		expectAPIError(t, err, "LimitExceededException", "The account "+e2eAccount+" already has the maximum of 3 KMS keys in the Region "+e2eRegion+".")
		if n := len(e.listAllKeys(t)); n != 3 {
			t.Fatalf("%s: %d keys in %s after the refusal, want 3", what, n, e2eRegion)
		}
	}
	_, err := us.CreateKey(ctx, &kms.CreateKeyInput{})
	refused("CreateKey", err)

	// Another region counts its own keys: the replica is made there.
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatalf("ReplicateKey into a region with no keys: %v", err)
	}
	for range 2 {
		if _, err := eu.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
			t.Fatalf("CreateKey in %s: %v", e2eRegion2, err)
		}
	}
	_, err = eu.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "LimitExceededException", "The account "+e2eAccount+" already has the maximum of 3 KMS keys in the Region "+e2eRegion2+".")

	// A key pending deletion counts until it is deleted.
	e.scheduleDeletion(t, first, 7)
	_, err = us.CreateKey(ctx, &kms.CreateKeyInput{})
	refused("CreateKey with a key pending deletion", err)
	clock.Advance(8 * 24 * time.Hour)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want 1", n, err)
	}
	if _, err := us.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey once a key was deleted: %v", err)
	}

	// A store without the count record (one written before it) counts
	// its keys again at the next CreateKey.
	e = e.reopenEditedWith(t, func(path string) {
		editStore(t, path, e.root, func(tx store.Tx) error { return tx.Delete(keyrepo.KeyCountKey(e2eAccount, e2eRegion)) })
	}, quota)
	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	refused("CreateKey after the count was dropped", err)
}

// TestE2EKeyQuotaAtDeletionDate: a key past its deletion date no longer
// counts against the quota, before the maintenance round removes it; a
// millisecond before the date it still does. Once the round removes it,
// the count is right: the quota is full again.
func TestE2EKeyQuotaAtDeletionDate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rk := make([]byte, 32)
	rand.Read(rk)
	clock := testsupport.NewClock(e2eStart)
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), rk, clock, func(c *service.Config) { c.KeyQuota = 2 })
	full := "The account " + e2eAccount + " already has the maximum of 2 KMS keys in the Region " + e2eRegion + "."

	doomed := e.newKey(t)
	e.newKey(t)
	out := e.scheduleDeletion(t, doomed, 7)
	clock.Set(out.DeletionDate.Add(-time.Millisecond))
	_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "LimitExceededException", full)

	clock.Set(*out.DeletionDate)
	if _, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey with a key past its deletion date: %v", err)
	}
	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "LimitExceededException", full)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want 1", n, err)
	}
	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "LimitExceededException", full)
	if n := len(e.listAllKeys(t)); n != 2 {
		t.Errorf("%d keys, want 2", n)
	}
}
