package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// A replica past its deletion date is gone everywhere at once, not only
// in its own region: before the maintenance round deletes its records,
// its primary and the other replicas no longer list it, ReplicateKey
// makes a new replica in its region (without the old one's aliases), and
// a primary that waited for it starts its own waiting period from the
// replica's deletion date, the one the maintenance round gives it too.
func TestE2EMultiRegionReplicaPastItsDeletionDate(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu, ap := c[e2eRegion], c[e2eRegion2], c[e2eRegion3]
	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	for _, r := range []string{e2eRegion2, e2eRegion3} {
		if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(r)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eu.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/old-replica"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour + time.Second)

	_, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "NotFoundException", "Key '"+arnIn(e2eRegion2, id)+"' does not exist")
	checkConfig(t, us, e2eRegion, id, e2eRegion, e2eRegion3)
	checkConfig(t, ap, e2eRegion3, id, e2eRegion, e2eRegion3)
	rep, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)})
	if err != nil {
		t.Fatalf("ReplicateKey into the region whose replica is past its deletion date: %v", err)
	}
	if m := rep.ReplicaKeyMetadata; m.KeyState != types.KeyStateEnabled || m.DeletionDate != nil {
		t.Fatalf("the new replica is %s, deletion date %v", m.KeyState, m.DeletionDate)
	}
	for region, cl := range map[string]*kms.Client{e2eRegion: us, e2eRegion2: eu, e2eRegion3: ap} {
		checkConfig(t, cl, region, id, e2eRegion, e2eRegion2, e2eRegion3)
	}
	aliases := e.listAliasesIn(t, eu)
	if _, ok := aliases["alias/old-replica"]; ok {
		t.Fatal("the new replica has the deleted replica's alias")
	}
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want nothing left to delete", n, err)
	}
	checkConfig(t, us, e2eRegion, id, e2eRegion, e2eRegion2, e2eRegion3)

	// A primary waiting for its replicas: once the last of them is past
	// its deletion date, the primary's waiting period runs from that date.
	if _, err := us.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ap.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	last, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	want := last.DeletionDate.Add(10 * 24 * time.Hour)
	m := describeIn(t, us, id)
	if m.KeyState != types.KeyStatePendingDeletion || !sameInstant(want, m.DeletionDate) || len(m.MultiRegionConfiguration.ReplicaKeys) != 0 {
		t.Fatalf("the primary after its replicas' dates: state %s, date %v (want %v), replicas %+v",
			m.KeyState, aws.ToTime(m.DeletionDate), want, m.MultiRegionConfiguration.ReplicaKeys)
	}
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want nothing left to delete", n, err)
	}
	if m := describeIn(t, us, id); !sameInstant(want, m.DeletionDate) {
		t.Fatalf("the primary's deletion date is %v after the maintenance round, %v before", aws.ToTime(m.DeletionDate), want)
	}
	_, err = us.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, us, e2eRegion, id, e2eRegion)
}

// listAliasesIn is the aliases c lists, by name, with their target key ids.
func (e *kmsEnv) listAliasesIn(t *testing.T, c *kms.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Aliases {
			out[aws.ToString(a.AliasName)] = aws.ToString(a.TargetKeyId)
		}
	}
	return out
}
