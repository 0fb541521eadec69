package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
)

// offeredTrail is a Recorder that keeps the events offered to it and
// refuses those refuse names.
type offeredTrail struct {
	mu      sync.Mutex
	offered []*audit.Event
	refuse  func(*audit.Event) bool
}

func (r *offeredTrail) Err() error { return nil }

func (r *offeredTrail) Record(_ context.Context, e *audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offered = append(r.offered, e)
	if r.refuse != nil && r.refuse(e) {
		return errors.New("the trail refuses the record")
	}
	return nil
}

// The service events of one piece of work are each offered to the trail,
// even after the trail refused one: a refused record is written, marked
// recovered, as soon as the trail takes records again, whereas one never
// offered would wait far longer.
func TestEveryServiceEventOfTheWorkIsOffered(t *testing.T) {
	f := newFixture(t)
	trail := &offeredTrail{}
	f.svc = f.newService(service.Config{Trail: trail})
	id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	expires := f.now.Add(10 * day)
	f.must2(f.importMaterial(id, newMaterial(), kmsapi.ImportKeyMaterialInput{ValidTo: validTo(expires)}))
	f.must2(f.importMaterial(id, newMaterial(), kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ValidTo: validTo(expires)}))
	f.must2(f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))

	refusedOne := false
	trail.refuse = func(e *audit.Event) bool { // the first material's record
		if refusedOne || e.Operation != "DeleteExpiredKeyMaterial" {
			return false
		}
		refusedOne = true
		return true
	}
	f.now = expires
	n, err := f.svc.ExpireImportedMaterial(f.ctx)
	if n != 1 || err == nil {
		t.Fatalf("ExpireImportedMaterial with a record refused: %d keys, %v", n, err)
	}
	var expired []*audit.Event
	for _, e := range trail.offered {
		if e.Operation == "DeleteExpiredKeyMaterial" {
			expired = append(expired, e)
		}
	}
	if len(expired) != 2 || string(expired[0].Details) == string(expired[1].Details) {
		t.Fatalf("DeleteExpiredKeyMaterial events offered to the trail: %d, want one per material (2)", len(expired))
	}
}
