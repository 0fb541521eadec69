package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/store"
)

// The changes of calls and of the service's own work are stored with
// their records: with a Recorder that does not tell the outbox of the
// records it wrote (as if each had been refused), every change leaves
// an entry holding the record it was to get, service events included,
// and Recover, once they are taken for lost, finds each of them in the
// trail and writes none again.
func TestE2EChangesKeepTheirRecordsInTheOutbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	trail, err := audit.Open(filepath.Join(dir, audit.FirstSegment))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	var box *outbox.Box
	var e *kmsEnv
	now := func() time.Time {
		if e == nil {
			return e2eStart
		}
		return e.clock.Now()
	}
	e = newEnvOnTrail(t, dir, func(st store.Store) store.Store {
		box = outbox.New(trail, audit.NewFileTrail(dir), now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		return box.Wrap(st)
	}, trail)
	ctx := context.Background()

	doomed, rotating := e.newKey(t), e.newKey(t)
	e.scheduleDeletion(t, doomed, 7)
	if _, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(rotating), RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(rotating), Plaintext: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * 24 * time.Hour)
	e.maintain(t)

	kept := map[string]int{}
	err = e.store.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(outbox.Prefix), nil, func(k, v []byte) (bool, error) {
			var entry struct {
				Record audit.Record `json:"record"`
			}
			if err := json.Unmarshal(v, &entry); err != nil {
				return false, err
			}
			if !strings.HasSuffix(string(k), entry.Record.EventID) {
				t.Errorf("entry %s holds the record of event %s", k, entry.Record.EventID)
			}
			kept[entry.Record.EventType+" "+entry.Record.EventName]++
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"AwsApiCall CreateKey": 2, "AwsApiCall ScheduleKeyDeletion": 1, "AwsApiCall EnableKeyRotation": 1,
		"AwsServiceEvent DeleteKey": 1, "AwsServiceEvent RotateKey": 1}
	for name, n := range want {
		if kept[name] != n {
			t.Errorf("%d entries of %s, want %d", kept[name], name, n)
		}
	}
	if len(kept) != len(want) {
		t.Errorf("entries: %v, want %v (nothing for Encrypt, a read)", kept, want)
	}

	// Calls whose records the outbox was not told of are taken for lost
	// once OrphanAge old.
	e.clock.Advance(outbox.OrphanAge)
	if n, err := box.Recover(ctx, false); err != nil || n != 0 {
		t.Fatalf("Recover of changes whose records are in the trail: %d records, %v", n, err)
	}
	if err := box.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	err = e.store.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(outbox.Prefix), nil, func(_, _ []byte) (bool, error) { left++; return true, nil })
	})
	if err != nil || left != 0 {
		t.Fatalf("entries left after Recover: %d, %v", left, err)
	}
}
