package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/service"
)

// A multi-Region key whose replicas are in regions the server no longer
// serves (--regions narrowed since they were made) can still be deleted,
// and never waits for what no call can do: a replica whose deletion was
// scheduled while its region was served is deleted when due, and the
// primary's deletion is refused, changing nothing, while a replica no one
// scheduled is in such a region, since no call could ever schedule it.
// Serving the region again lets its replica, then the primary, be
// deleted.
func TestE2EMultiRegionDeletionWithReplicasInUnservedRegions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	for _, r := range []string{e2eRegion2, e2eRegion3} {
		if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(r)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}

	// Restarted serving us-east-1 alone: eu-west-1's replica is pending
	// deletion, ap-southeast-2's is not.
	e = e.reopenEditedWith(t, nil, func(cfg *service.Config) { cfg.Regions = []string{e2eRegion} })
	us = e.clientIn(e2eRegion, e.creds.ID, e.creds.Secret, "")
	_, err := us.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	expectAPIError(t, err, "UnsupportedOperationException", "The replica "+arnIn(e2eRegion3, id)+
		" is in a Region this server does not serve: serve ap-southeast-2 again and schedule the replica's deletion there before the primary's.")
	if m := describeIn(t, us, id); m.KeyState != types.KeyStateEnabled {
		t.Fatalf("the primary is %s after a refused ScheduleKeyDeletion", m.KeyState)
	}
	_, err = e.clientIn(e2eRegion3, e.creds.ID, e.creds.Secret, "").ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "InvalidSignatureException")

	// eu-west-1's replica, scheduled while served, is deleted when due.
	e.clock.Advance(7*24*time.Hour + time.Second)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want eu-west-1's replica", n, err)
	}
	checkConfig(t, us, e2eRegion, id, e2eRegion, e2eRegion3)

	// Served again, ap-southeast-2's replica is scheduled there; served no
	// more, it is still deleted when due, and the primary then waits for
	// nothing.
	e = e.reopenEditedWith(t, nil, func(cfg *service.Config) { cfg.Regions = []string{e2eRegion, e2eRegion3} })
	apGone, err := e.clientIn(e2eRegion3, e.creds.ID, e.creds.Secret, "").ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	e = e.reopenEditedWith(t, nil, func(cfg *service.Config) { cfg.Regions = []string{e2eRegion} })
	us = e.clientIn(e2eRegion, e.creds.ID, e.creds.Secret, "")
	sched, err := us.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	if err != nil || sched.KeyState != types.KeyStatePendingReplicaDeletion {
		t.Fatalf("ScheduleKeyDeletion of the primary whose replica is pending deletion: %+v, %v", sched, err)
	}
	e.clock.Advance(7*24*time.Hour + time.Second)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want ap-southeast-2's replica", n, err)
	}
	m := describeIn(t, us, id)
	if want := apGone.DeletionDate.Add(7 * 24 * time.Hour); m.KeyState != types.KeyStatePendingDeletion || !sameInstant(want, m.DeletionDate) {
		t.Fatalf("the primary after its last replica went: %s, deletion date %v, want %v", m.KeyState, aws.ToTime(m.DeletionDate), want)
	}
}
