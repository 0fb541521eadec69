package server

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

var rootCaller = service.Caller{AccountID: DevAccount, ARN: "arn:aws:iam::" + DevAccount + ":root", Root: true,
	Principal: policy.Principal{ARN: "arn:aws:iam::" + DevAccount + ":root", Account: DevAccount, UserID: DevAccount}}

// node is one cluster node in this process: its own store connection,
// service, directory and maintainer, as a kms server process has.
type node struct {
	pg  *pgstore.Store
	svc *service.Service
	m   *maintainer
}

func newNode(t *testing.T, dsn string, root *keys.RootKey, clock *testsupport.Clock) *node {
	t.Helper()
	ctx := context.Background()
	pg, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	log := slog.New(slog.DiscardHandler)
	dir := identity.New(identity.Config{Store: pg, RootKey: root, Region: "us-east-1", Now: clock.Now, Logger: log})
	svc, err := service.New(service.Config{Store: pg, RootKey: root, Region: "us-east-1", Now: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{pg: pg, svc: svc, m: &maintainer{svc: svc, dir: dir, pg: pg, log: log}}
	t.Cleanup(func() {
		if n.m.lease != nil {
			n.m.lease.Close()
		}
	})
	return n
}

// TestMaintenanceRunsOnOneNode runs the background work of three nodes,
// round after round, with the clock past a key's rotation date: one node
// leads, and the key rotates once. When the leader goes, another takes over.
func TestMaintenanceRunsOnOneNode(t *testing.T) {
	dsn := pgtest.Start(t)
	k := make([]byte, 32)
	rand.Read(k)
	root, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	clock := testsupport.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	nodes := []*node{newNode(t, dsn, root, clock), newNode(t, dsn, root, clock), newNode(t, dsn, root, clock)}
	ctx := context.Background()

	created, err := nodes[0].svc.CreateKey(ctx, rootCaller, &kmsapi.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.KeyMetadata.KeyID
	period := int32(90)
	if _, err := nodes[1].svc.EnableKeyRotation(ctx, rootCaller, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: &period}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(91 * 24 * time.Hour)

	// The nodes tick concurrently, several rounds, as their timers would.
	for range 3 {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.m.tick(ctx) }()
		}
		wg.Wait()
	}
	leaders := 0
	var leader *node
	for _, n := range nodes {
		if n.m.lease != nil {
			leaders++
			leader = n
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes hold the maintenance lease, want 1", leaders)
	}
	rotations, err := nodes[2].svc.ListKeyRotations(ctx, rootCaller, &kmsapi.ListKeyRotationsInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(rotations.Rotations) != 1 {
		t.Fatalf("the key rotated %d times, want once", len(rotations.Rotations))
	}

	// The leader stops (its lease ends with its connection); another node
	// takes over on its next round and does the next rotation, once.
	leader.m.lease.Close()
	leader.m.lease = nil
	clock.Advance(91 * 24 * time.Hour)
	var others []*node
	for _, n := range nodes {
		if n != leader {
			others = append(others, n)
		}
	}
	for range 2 {
		for _, n := range others {
			n.m.tick(ctx)
		}
	}
	if (others[0].m.lease != nil) == (others[1].m.lease != nil) {
		t.Fatalf("after the leader left, leases held: %v, %v; want exactly one", others[0].m.lease != nil, others[1].m.lease != nil)
	}
	rotations, err = others[0].svc.ListKeyRotations(ctx, rootCaller, &kmsapi.ListKeyRotationsInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(rotations.Rotations) != 2 {
		t.Fatalf("the key rotated %d times in all, want 2", len(rotations.Rotations))
	}
}
