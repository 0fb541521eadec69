package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// GetKeyLastUsage reports the last successful cryptographic use of a key
// with the eventID of its audit record and its request id; failed uses do
// not count, and uses survive a restart once flushed.
func TestE2EGetKeyLastUsage(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	created := e.clock.Now().UTC().Truncate(time.Millisecond)
	id := e.newKey(t)

	out, err := e.client.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetKeyLastUsage: %v", err)
	}
	if out.KeyLastUsage != nil {
		t.Errorf("a new key has a last usage: %+v", out.KeyLastUsage)
	}
	if aws.ToString(out.KeyId) != e.keyARN(id) || !aws.ToTime(out.KeyCreationDate).Equal(created) || !aws.ToTime(out.TrackingStartDate).Equal(created) {
		t.Errorf("GetKeyLastUsage = KeyId %s, KeyCreationDate %v, TrackingStartDate %v; want %s, %v, %v",
			aws.ToString(out.KeyId), out.KeyCreationDate, out.TrackingStartDate, e.keyARN(id), created, created)
	}

	e.clock.Advance(time.Minute)
	enc := e.encrypt(t, id, []byte("hello"), map[string]string{"a": "b"})
	encAt := e.clock.Now().UTC().Truncate(time.Millisecond)
	encReqID := requestID(enc.ResultMetadata)

	// A failed use is not a use.
	e.clock.Advance(time.Minute)
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "c"}})
	expectTyped[*types.InvalidCiphertextException](t, err)
	// Neither is a dry run.
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	expectTyped[*types.DryRunOperationException](t, err)

	got := e.lastUsage(t, id)
	if got == nil || got.Operation != types.KeyLastUsageTrackingOperationEncrypt || !aws.ToTime(got.Timestamp).Equal(encAt) ||
		aws.ToString(got.KmsRequestId) != encReqID || !uuidRE.MatchString(aws.ToString(got.CloudTrailEventId)) {
		t.Fatalf("KeyLastUsage = %+v; want Encrypt at %v, request %s", got, encAt, encReqID)
	}
	// The eventID is that of the Encrypt call's audit record.
	found := false
	for _, r := range mustRecords(t, logPath) {
		if r.EventID == aws.ToString(got.CloudTrailEventId) {
			found = r.EventName == "Encrypt" && r.RequestID == encReqID
		}
	}
	if !found {
		t.Errorf("no Encrypt record with eventID %s and request id %s in the trail", aws.ToString(got.CloudTrailEventId), encReqID)
	}

	// ReEncrypt counts for both keys.
	other := e.newKey(t)
	e.clock.Advance(time.Minute)
	if _, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"a": "b"},
		DestinationKeyId: aws.String(other)}); err != nil {
		t.Fatalf("ReEncrypt: %v", err)
	}
	for _, k := range []string{id, other} {
		if got := e.lastUsage(t, k); got == nil || got.Operation != types.KeyLastUsageTrackingOperationReEncrypt {
			t.Errorf("key %s: KeyLastUsage = %+v; want ReEncrypt", k, got)
		}
	}

	// Flushed uses survive a restart; the flush writes each key once.
	if err := e.svc.FlushKeyUsage(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.lastUsage(t, id)
	e = e.reopen(t)
	after := e.lastUsage(t, id)
	if after == nil || *after.CloudTrailEventId != *before.CloudTrailEventId || !aws.ToTime(after.Timestamp).Equal(aws.ToTime(before.Timestamp)) {
		t.Errorf("after a restart KeyLastUsage = %+v; want %+v", after, before)
	}

	// Key ids and ARNs only; no aliases, no other accounts.
	e.createAlias(t, "alias/used", id)
	_, err = e.client.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String("alias/used")})
	expectAPIErrorCode(t, err, "NotFoundException")
	u := e.newUser(t, "nobody")
	_, err = u.kms.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
}

func (e *kmsEnv) lastUsage(t testing.TB, id string) *types.KeyLastUsageData {
	t.Helper()
	out, err := e.client.GetKeyLastUsage(context.Background(), &kms.GetKeyLastUsageInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetKeyLastUsage %s: %v", id, err)
	}
	return out.KeyLastUsage
}

// A replica tracks its own last usage from its own creation: its
// TrackingStartDate never comes before its KeyCreationDate, and a use of
// the primary is not a use of the replica.
func TestE2EGetKeyLastUsageOfAReplica(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	created, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.KeyMetadata.KeyId)
	e.clock.Advance(time.Hour)
	replicated := e.clock.Now().UTC().Truncate(time.Millisecond)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantUse bool) {
		t.Helper()
		out, err := eu.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToTime(out.KeyCreationDate).Equal(replicated) || !aws.ToTime(out.TrackingStartDate).Equal(replicated) {
			t.Errorf("%s: replica KeyCreationDate %v, TrackingStartDate %v; want both %v", when, out.KeyCreationDate, out.TrackingStartDate, replicated)
		}
		if (out.KeyLastUsage != nil) != wantUse {
			t.Errorf("%s: replica KeyLastUsage %+v", when, out.KeyLastUsage)
		}
	}
	check("new replica", false)
	if _, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.FlushKeyUsage(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a use of the primary", false)
	e.clock.Advance(time.Minute)
	if _, err := eu.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	check("after a use of the replica", true)
	if err := e.svc.FlushKeyUsage(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the use is written", true)
}
