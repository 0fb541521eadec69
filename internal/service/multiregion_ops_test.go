package service_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
)

func inRegion(c service.Caller, region string) service.Caller { c.Region = region; return c }

// An UpdatePrimaryRegion that a ScheduleKeyDeletion of the primary
// overtook between its checks and its commit is refused: it would turn
// the primary, waiting for its replicas' deletion, into a replica in that
// state, which no one ever deletes.
func TestUpdatePrimaryRegionRacingDeletion(t *testing.T) {
	f := newFixture(t)
	regions := []string{"us-east-1", "eu-west-1"}
	plain := f.newService(service.Config{Regions: regions})
	us, eu := inRegion(rootA, "us-east-1"), inRegion(rootA, "eu-west-1")
	out, err := plain.CreateKey(f.ctx, us, &kmsapi.CreateKeyInput{MultiRegion: true})
	f.must(err)
	id := out.KeyMetadata.KeyID
	f.must2(plain.ReplicateKey(f.ctx, us, &kmsapi.ReplicateKeyInput{KeyID: id, ReplicaRegion: "eu-west-1"}))
	racing, err := service.New(service.Config{Store: &beforeUpdateStore{Store: f.st, before: func() {
		f.must2(plain.ScheduleKeyDeletion(f.ctx, us, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)}))
	}}, RootKey: f.rk, Region: region, Regions: regions, Now: func() time.Time { return f.now }})
	f.must(err)
	_, err = racing.UpdatePrimaryRegion(f.ctx, us, &kmsapi.UpdatePrimaryRegionInput{KeyID: id, PrimaryRegion: "eu-west-1"})
	if !fault.Is(err, fault.InvalidState) {
		t.Fatalf("UpdatePrimaryRegion overtaken by ScheduleKeyDeletion: %v, want KMSInvalidStateException", err)
	}
	for _, c := range []struct {
		caller          service.Caller
		state, multiReg string
	}{{us, string(keyrepo.StatePendingReplicaDeletion), "PRIMARY"}, {eu, string(keyrepo.StateEnabled), "REPLICA"}} {
		d, err := plain.DescribeKey(f.ctx, c.caller, &kmsapi.DescribeKeyInput{KeyID: id})
		f.must(err)
		if d.KeyMetadata.KeyState != c.state || d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType != c.multiReg {
			t.Errorf("%s: %s %s, want %s %s", c.caller.Region, d.KeyMetadata.KeyState, d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType, c.state, c.multiReg)
		}
	}
}
