package service

// The work the service does on its own, which no call asked for, is
// recorded in the audit trail as CloudTrail records it: a service event
// (audit.ServiceEvent) of the key's account, naming the key.
//
//   - DeleteKey: a key deleted after its waiting period (deleteKey), by
//     the maintenance round or by the call that first reads a multi-Region
//     key's regions after a replica's date (settleReplicas); whichever
//     deletes the key records it, once.
//   - RotateKey: a key rotated automatically (RotateDueKeys), or on
//     demand (RotateKeyOnDemand, beside the call's own record), with the
//     material it replaced and the new one.
//   - DeleteExpiredKeyMaterial: each imported material deleted past its
//     ValidTo (ExpireImportedMaterial).
//
// None of this work is done while the trail cannot record it
// (audit.Recorder.Err): it would change keys with no record of why. A
// key past its deletion date, or material past its ValidTo, is unusable
// all the same (keyrepo.Repo.Expired, keyrepo.Repo.StateOf); a rotation
// waits. Each is done, and recorded, once the trail records again. A
// trail that fails between the check and the record, or a server killed
// between the two, leaves the record with the work in the store
// (audit.Work, internal/outbox), written once the trail records again or
// at the next start.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keyrepo"
)

// errTrailDown wraps the reason work no call asked for is not done now.
var errTrailDown = errors.New("not done while the audit trail cannot record it")

// trailErr returns why work no call asked for must wait: the trail cannot
// record it now. It is nil without a trail.
func (s *Service) trailErr() error {
	if s.trail == nil {
		return nil
	}
	if err := s.trail.Err(); err != nil {
		return fmt.Errorf("%w: %w", errTrailDown, err)
	}
	return nil
}

// rotateKeyDetails are the serviceEventDetails of RotateKey, as CloudTrail
// gives them.
type rotateKeyDetails struct {
	RotationType          string `json:"rotationType"` // AUTOMATIC or ON_DEMAND
	KeyID                 string `json:"keyId"`
	KeyOrigin             string `json:"keyOrigin"`
	PreviousKeyMaterialID string `json:"previousKeyMaterialId,omitempty"`
	CurrentKeyMaterialID  string `json:"currentKeyMaterialId"`
}

// expiredMaterialDetails are the serviceEventDetails of
// DeleteExpiredKeyMaterial, as CloudTrail gives them.
type expiredMaterialDetails struct {
	KeyID         string `json:"keyId"`
	KeyMaterialID string `json:"keyMaterialId"`
}

// serviceEvent is the event of operation, done at t to key id of
// account in region, with details (nil for none) as its
// serviceEventDetails.
func serviceEvent(t time.Time, operation, region, account, id string, details any) (*audit.Event, error) {
	var raw json.RawMessage
	if details != nil {
		var err error
		if raw, err = json.Marshal(details); err != nil {
			return nil, err
		}
	}
	arn := keyrepo.KeyARN(region, account, id)
	ev := audit.ServiceEvent(t.UTC(), operation, region, account, arn, raw)
	if operation == "DeleteKey" {
		// As CloudTrail has since December 2022, though no call returned it.
		ev.SetResponse(json.RawMessage(`{"keyId":"` + arn + `"}`))
	}
	return ev, nil
}

// addServiceEvent adds the event serviceEvent makes to w, the work of
// the transaction that does it: the store keeps its record with the
// work until it is written (internal/outbox).
func addServiceEvent(w *audit.Work, t time.Time, operation, region, account, id string, details any) error {
	ev, err := serviceEvent(t, operation, region, account, id, details)
	if err != nil {
		return err
	}
	w.Events = append(w.Events, ev)
	return nil
}

// recordServiceEvents records the events of w, whose transaction has
// committed; it does nothing without a trail. The work is done by then,
// so the records are written even if ctx, a call's, ends first. Each
// event is offered to the trail even after one was refused: a refused
// record is written, marked recovered, as soon as the trail takes records
// again (internal/outbox), whereas one never offered waits for
// outbox.OrphanAge. Failures are logged and returned.
func (s *Service) recordServiceEvents(ctx context.Context, w *audit.Work) error {
	if s.trail == nil {
		return nil
	}
	var errs []error
	for _, ev := range w.Events {
		if err := s.trail.Record(context.WithoutCancel(ctx), ev); err != nil {
			keys := ev.Keys()
			s.log.Error("recording a service event in the audit trail", "event", ev.Operation, "key", keys, "region", ev.Region, "err", err)
			errs = append(errs, fmt.Errorf("recording %s of key %s in %s: %w", ev.Operation, keys, ev.Region, err))
		}
	}
	return errors.Join(errs...)
}
