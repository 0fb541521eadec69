package e2e_test

// End-to-end tests of the service events: the work the server does on its
// own (a key's deletion after its waiting period, automatic rotation),
// recorded in the trail as CloudTrail records it, and not done while the
// trail cannot record it.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
)

// trailEvents is every record creds may read through the trail API, as
// GetAuditRecords hands them out page by page.
func (e *kmsEnv) trailEvents(t testing.TB, creds aws.Credentials) []*audit.Record {
	t.Helper()
	var out []*audit.Record
	after := int64(0)
	for {
		p := decodeOK[struct {
			trailPage
			LastSequence int64
		}](t, e.trailCall(t, creds, "GetAuditRecords", `{"AfterSequence":`+jsonInt(after)+`}`))
		for _, r := range p.Records {
			var ln struct {
				Event audit.Record `json:"event"`
			}
			if err := json.Unmarshal([]byte(r.Line), &ln); err != nil {
				t.Fatal(err)
			}
			out = append(out, &ln.Event)
		}
		if !p.Truncated {
			return out
		}
		after = p.LastSequence
	}
}

// named is the records of recs named name.
func named(recs []*audit.Record, name string) []*audit.Record {
	var out []*audit.Record
	for _, r := range recs {
		if r.EventName == name {
			out = append(out, r)
		}
	}
	return out
}

// checkServiceEvent checks that r is the service event name of the key
// arn of the tests' account in region, made at t, as CloudTrail shapes
// it.
func checkServiceEvent(t testing.TB, r *audit.Record, name, region, arn string, at time.Time) {
	t.Helper()
	id := r.UserIdentity
	if id.Type != "AWSService" || id.AccountID != e2eAccount || id.InvokedBy != audit.Internal || id.ARN != "" || id.AccessKeyID != "" {
		t.Errorf("%s: userIdentity %+v, want the service acting in account %s", name, id, e2eAccount)
	}
	if r.EventName != name || r.EventType != "AwsServiceEvent" || r.EventSource != "kms.amazonaws.com" || r.AWSRegion != region ||
		r.RecipientAccountID != e2eAccount || r.ReadOnly || r.ErrorCode != "" || r.SourceIPAddress != audit.Internal || r.UserAgent != audit.Internal ||
		r.RequestID != "" || string(r.RequestParameters) != "null" {
		t.Errorf("%s: record %+v, want an AwsServiceEvent of kms.amazonaws.com in %s for account %s", name, r, region, e2eAccount)
	}
	if len(r.Resources) != 1 || r.Resources[0].ARN != arn || r.Resources[0].AccountID != e2eAccount || r.Resources[0].Type != "AWS::KMS::Key" {
		t.Errorf("%s: resources %+v, want the key %s alone", name, r.Resources, arn)
	}
	if r.EventTime != audit.FormatTime(at) {
		t.Errorf("%s: eventTime %s, want %s (when the work was done)", name, r.EventTime, audit.FormatTime(at))
	}
	// CloudTrail's DeleteKey names the key in its responseElements too.
	want := "null"
	if name == "DeleteKey" {
		want = `{"keyId":"` + arn + `"}`
	}
	if string(r.ResponseElements) != want {
		t.Errorf("%s: responseElements %s, want %s", name, r.ResponseElements, want)
	}
}

// A key deleted after its waiting period leaves a DeleteKey service event
// in its owner's trail, as on AWS: before, the key vanished from the
// trail's view with nothing to say when or why. Another account does not
// read it, and a round with nothing to delete records nothing.
func TestE2EKeyDeletionIsAudited(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	ctx := context.Background()
	other, err := identity.BootstrapRoot(ctx, e.store, e.root, "444455556666")
	if err != nil {
		t.Fatal(err)
	}
	id := e.newKey(t)
	kept := e.newKey(t)
	e.scheduleDeletion(t, id, 7)
	e.clock.Advance(7*24*time.Hour - time.Hour)
	e.maintain(t) // before the date: nothing happens
	e.describe(t, id)

	e.clock.Advance(time.Hour + time.Second)
	deleted := e.clock.Now()
	e.maintain(t)
	e.maintain(t) // nothing more to delete, and nothing more recorded
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(id)+"' does not exist")
	e.describe(t, kept)

	got := named(e.trailEvents(t, e.rootCreds()), "DeleteKey")
	if len(got) != 1 {
		t.Fatalf("the owner reads %d DeleteKey records, want 1", len(got))
	}
	checkServiceEvent(t, got[0], "DeleteKey", e2eRegion, e.keyARN(id), deleted)
	checkDetails(t, got[0], "")
	if n := len(named(e.trailEvents(t, aws.Credentials{AccessKeyID: other.ID, SecretAccessKey: other.Secret}), "DeleteKey")); n != 0 {
		t.Errorf("another account reads %d DeleteKey records of a key not its own", n)
	}
}

// materialIDs is the ids of a key's materials, oldest first.
func (e *kmsEnv) materialIDs(t testing.TB, id string) []string {
	t.Helper()
	var ids []string
	for _, r := range e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial) {
		ids = append(ids, aws.ToString(r.KeyMaterialId))
	}
	return ids
}

// checkDetails checks a service event's serviceEventDetails.
func checkDetails(t testing.TB, r *audit.Record, want string) {
	t.Helper()
	if string(r.ServiceEventDetails) != want {
		t.Errorf("%s: serviceEventDetails %s, want %s", r.EventName, r.ServiceEventDetails, want)
	}
}

// An automatic rotation leaves a RotateKey service event of the key, once,
// as on AWS, naming the material it replaced and the new one; a key not
// due, or without automatic rotation, none.
func TestE2EAutomaticRotationIsAudited(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.newKey(t) // no automatic rotation
	if _, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	e.maintain(t)
	e.clock.Advance(90 * 24 * time.Hour)
	rotated := e.clock.Now()
	e.maintain(t)
	e.maintain(t)
	if n := len(e.rotations(t, id, "")); n != 1 {
		t.Fatalf("%d rotations, want 1", n)
	}
	m := e.materialIDs(t, id)

	got := named(e.trailEvents(t, e.rootCreds()), "RotateKey")
	if len(got) != 1 {
		t.Fatalf("the owner reads %d RotateKey records, want 1", len(got))
	}
	checkServiceEvent(t, got[0], "RotateKey", e2eRegion, e.keyARN(id), rotated)
	checkDetails(t, got[0], `{"rotationType":"AUTOMATIC","keyId":"`+id+`","keyOrigin":"AWS_KMS","previousKeyMaterialId":"`+m[0]+`","currentKeyMaterialId":"`+m[1]+`"}`)
}

// An on-demand rotation leaves, beside the record of the RotateKeyOnDemand
// call, a RotateKey service event of type ON_DEMAND, as on AWS; a refused
// one, none.
func TestE2EOnDemandRotationIsAudited(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.rotateOnDemand(t, id)
	asym := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(asym)}); err == nil {
		t.Fatal("RotateKeyOnDemand of an asymmetric key succeeded")
	}
	m := e.materialIDs(t, id)

	recs, _ := auditRecords(t, logPath)
	got := named(recs, "RotateKey")
	if len(got) != 1 {
		t.Fatalf("%d RotateKey records, want 1", len(got))
	}
	checkServiceEvent(t, got[0], "RotateKey", e2eRegion, e.keyARN(id), e.clock.Now())
	checkDetails(t, got[0], `{"rotationType":"ON_DEMAND","keyId":"`+id+`","keyOrigin":"AWS_KMS","previousKeyMaterialId":"`+m[0]+`","currentKeyMaterialId":"`+m[1]+`"}`)
	if calls := named(recs, "RotateKeyOnDemand"); len(calls) != 2 || calls[0].EventType != "AwsApiCall" || calls[0].ErrorCode != "" {
		t.Errorf("RotateKeyOnDemand records %+v, want the call's own, then the refused one's", calls)
	}
}

// A multi-Region replica past its deletion date is deleted by the
// maintenance round or by the first call that reads its primary's
// regions, whichever comes first; racing, they record its deletion once,
// in the replica's region. The primary that waited for it is deleted after
// its own waiting period, with a record of its own.
func TestE2EReplicaDeletionIsAuditedOnce(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour + time.Second)
	replicaGone := e.clock.Now()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := e.svc.DeleteExpiredKeys(ctx); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := us.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkConfig(t, us, e2eRegion, id, e2eRegion)

	e.clock.Advance(7 * 24 * time.Hour)
	primaryGone := e.clock.Now()
	e.maintain(t)
	e.maintain(t)

	recs, _ := auditRecords(t, logPath)
	got := named(recs, "DeleteKey")
	if len(got) != 2 {
		t.Fatalf("%d DeleteKey records, want 2: the replica's, then the primary's", len(got))
	}
	checkServiceEvent(t, got[0], "DeleteKey", e2eRegion2, arnIn(e2eRegion2, id), replicaGone)
	checkServiceEvent(t, got[1], "DeleteKey", e2eRegion, arnIn(e2eRegion, id), primaryGone)
}

// While the trail cannot record, the background work deletes and rotates
// nothing: the work would be done with no record of it. A key past its
// deletion date is gone for every purpose all the same. Once the trail
// records again, the work is done, and recorded, once.
func TestE2EServiceEventsWaitForTheTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, pool := newPostgresTrailEnv(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	doomed := e.newKey(t)
	rotating := e.newKey(t)
	e.scheduleDeletion(t, doomed, 7)
	if _, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(rotating), RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * 24 * time.Hour)

	// The database refuses every record: the next call finds out.
	exec(`ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	if _, err := e.client.ListKeys(ctx, &kms.ListKeysInput{}); err == nil {
		t.Fatal("ListKeys answered while the trail refuses its record")
	}
	if err := e.svc.Maintain(ctx); err == nil {
		t.Fatal("Maintain reported nothing while the trail could not record its work")
	}
	stored := func(id string) *keyrepo.KeyRecord {
		t.Helper()
		var rec *keyrepo.KeyRecord
		err := e.store.View(ctx, func(tx store.Tx) error {
			var r keyrepo.KeyRecord
			if err := store.GetJSON(tx, keyrepo.KeyKey(e2eRegion, id), &r); err != nil {
				return err
			}
			rec = &r
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if stored(doomed) == nil {
		t.Fatal("the key past its deletion date was deleted while the trail could not record it")
	}
	if rec := stored(rotating); rec.CurrentVersion != 1 {
		t.Fatalf("the key was rotated (version %d) while the trail could not record it", rec.CurrentVersion)
	}

	exec(`ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	if _, err := e.client.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys once the trail records again: %v", err)
	}
	e.maintain(t)
	e.maintain(t)
	if stored(doomed) != nil {
		t.Fatal("the key past its deletion date was not deleted once the trail recorded again")
	}
	if rec := stored(rotating); rec.CurrentVersion != 2 {
		t.Fatalf("the key is at version %d once the trail recorded again, want 2", rec.CurrentVersion)
	}

	rows, err := pool.Query(ctx, `SELECT line FROM kms_audit_records ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*audit.Record
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		var ln struct {
			Event audit.Record `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &ln); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &ln.Event)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	del, rot := named(recs, "DeleteKey"), named(recs, "RotateKey")
	if len(del) != 1 || len(rot) != 1 {
		t.Fatalf("%d DeleteKey and %d RotateKey records, want one each", len(del), len(rot))
	}
	checkServiceEvent(t, del[0], "DeleteKey", e2eRegion, e.keyARN(doomed), e.clock.Now())
	checkServiceEvent(t, rot[0], "RotateKey", e2eRegion, e.keyARN(rotating), e.clock.Now())
	reports, err := audit.VerifyPostgres(ctx, pool, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Problem != nil {
		t.Fatalf("the trail after the recovery: %+v; want one intact chain", reports)
	}
}
