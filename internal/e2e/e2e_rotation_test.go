package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Key rotation through the SDK: EnableKeyRotation, DisableKeyRotation,
// GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and automatic
// rotation by the maintenance job under the fake clock (reference §4.11).

const day = 24 * time.Hour

func (e *kmsEnv) rotationStatus(t testing.TB, keyID string) *kms.GetKeyRotationStatusOutput {
	t.Helper()
	out, err := e.client.GetKeyRotationStatus(context.Background(), &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("GetKeyRotationStatus %s: %v", keyID, err)
	}
	return out
}

func (e *kmsEnv) enableRotation(t testing.TB, keyID string, days int32) {
	t.Helper()
	in := &kms.EnableKeyRotationInput{KeyId: aws.String(keyID)}
	if days != 0 {
		in.RotationPeriodInDays = aws.Int32(days)
	}
	if _, err := e.client.EnableKeyRotation(context.Background(), in); err != nil {
		t.Fatalf("EnableKeyRotation %s (%d days): %v", keyID, days, err)
	}
}

func (e *kmsEnv) rotateOnDemand(t testing.TB, keyID string) {
	t.Helper()
	if _, err := e.client.RotateKeyOnDemand(context.Background(), &kms.RotateKeyOnDemandInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("RotateKeyOnDemand %s: %v", keyID, err)
	}
}

// rotations pages through ListKeyRotations with the SDK paginator.
func (e *kmsEnv) rotations(t testing.TB, keyID string, include types.IncludeKeyMaterial) []types.RotationsListEntry {
	t.Helper()
	var all []types.RotationsListEntry
	p := kms.NewListKeyRotationsPaginator(e.client, &kms.ListKeyRotationsInput{KeyId: aws.String(keyID), IncludeKeyMaterial: include})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListKeyRotations %s: %v", keyID, err)
		}
		all = append(all, page.Rotations...)
	}
	return all
}

// maintain runs the server's periodic job, as its ticker would.
func (e *kmsEnv) maintain(t testing.TB) {
	t.Helper()
	if err := e.svc.Maintain(context.Background()); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
}

func (e *kmsEnv) currentMaterial(t testing.TB, keyID string) string {
	t.Helper()
	m := aws.ToString(e.describe(t, keyID).CurrentKeyMaterialId)
	if !hex64RE.MatchString(m) {
		t.Fatalf("CurrentKeyMaterialId of %s is %q, want 64 hex digits", keyID, m)
	}
	return m
}

// expectRotation checks a status that says rotation is on with period
// days and the next rotation at next.
func expectRotation(t testing.TB, st *kms.GetKeyRotationStatusOutput, days int32, next time.Time) {
	t.Helper()
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != days || !sameInstant(next, st.NextRotationDate) {
		t.Errorf("rotation status: enabled %v, period %v, next %v; want true, %d, %v",
			st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), aws.ToTime(st.NextRotationDate), days, next)
	}
}

func expectNoRotation(t testing.TB, st *kms.GetKeyRotationStatusOutput) {
	t.Helper()
	if st.KeyRotationEnabled || st.RotationPeriodInDays != nil || st.NextRotationDate != nil || st.OnDemandRotationStartDate != nil {
		t.Errorf("rotation status: enabled %v, period %v, next %v, on-demand start %v; want false and nothing else",
			st.KeyRotationEnabled, st.RotationPeriodInDays, st.NextRotationDate, st.OnDemandRotationStartDate)
	}
}

func TestE2ERotationStatus(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()

	t.Run("new key", func(t *testing.T) {
		id := e.newKey(t)
		st := e.rotationStatus(t, id)
		if aws.ToString(st.KeyId) != e.keyARN(id) {
			t.Errorf("KeyId %s, want the ARN", aws.ToString(st.KeyId))
		}
		expectNoRotation(t, st)
		// The key ARN is accepted too.
		expectNoRotation(t, e.rotationStatus(t, e.keyARN(id)))
	})
	t.Run("default period", func(t *testing.T) {
		id := e.newKey(t)
		if _, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		expectRotation(t, e.rotationStatus(t, id), 365, e.clock.Now().Add(365*day))
		// Enabling again with another period restarts the schedule.
		e.enableRotation(t, id, 180)
		expectRotation(t, e.rotationStatus(t, id), 180, e.clock.Now().Add(180*day))
		if _, err := e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(e.keyARN(id))}); err != nil {
			t.Fatal(err)
		}
		expectNoRotation(t, e.rotationStatus(t, id))
		// Disabling twice is harmless.
		if _, err := e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		expectNoRotation(t, e.rotationStatus(t, id))
	})
	for _, days := range []int32{90, 2560} {
		t.Run(fmt.Sprintf("%d days", days), func(t *testing.T) {
			id := e.newKey(t)
			e.enableRotation(t, id, days)
			expectRotation(t, e.rotationStatus(t, id), days, e.clock.Now().Add(time.Duration(days)*day))
		})
	}
	for _, c := range []struct {
		days int32
		msg  string
	}{
		{89, "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"},
		{2561, "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560"},
	} {
		t.Run(fmt.Sprintf("%d days refused", c.days), func(t *testing.T) {
			id := e.newKey(t)
			_, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(c.days)})
			expectAPIError(t, err, "ValidationException", c.msg)
			expectNoRotation(t, e.rotationStatus(t, id))
		})
	}
	t.Run("disabled key", func(t *testing.T) {
		id := e.newKey(t)
		e.enableRotation(t, id, 90)
		next := e.clock.Now().Add(90 * day)
		e.disable(t, id)
		msg := e.keyARN(id) + " is disabled."
		_, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "DisabledException", msg)
		expectTyped[*types.DisabledException](t, err)
		_, err = e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "DisabledException", msg)
		// The status of a disabled key can still be read, and is unchanged.
		expectRotation(t, e.rotationStatus(t, id), 90, next)
	})
	t.Run("pending deletion", func(t *testing.T) {
		id := e.newKey(t)
		e.enableRotation(t, id, 120)
		next := e.clock.Now().Add(120 * day)
		e.scheduleDeletion(t, id, 7)
		msg := e.keyARN(id) + " is pending deletion."
		_, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "KMSInvalidStateException", msg)
		expectTyped[*types.KMSInvalidStateException](t, err)
		_, err = e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "KMSInvalidStateException", msg)
		expectNoRotation(t, e.rotationStatus(t, id))

		if _, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		expectRotation(t, e.rotationStatus(t, id), 120, next)
		if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		expectRotation(t, e.rotationStatus(t, id), 120, next)
	})
	t.Run("unknown and malformed keys", func(t *testing.T) {
		unknown := "3d1c7a52-8f0e-4b6a-9c2d-5e4f3a2b1c0d"
		_, err := e.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(unknown)})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
		_, err = e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(unknown)})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
		_, err = e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String("nope")})
		expectAPIError(t, err, "NotFoundException", "Invalid keyId 'nope'")
		// Rotation operations take a key id or ARN, not an alias.
		id := e.newKey(t)
		e.createAlias(t, "alias/rotation-status", id)
		_, err = e.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String("alias/rotation-status")})
		expectAPIError(t, err, "NotFoundException", "Invalid keyId 'alias/rotation-status'")
	})
}

func TestE2ERotateKeyOnDemand(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	arn := e.keyARN(id)
	e.enableRotation(t, id, 90)
	next := e.clock.Now().Add(90 * day)
	original := e.currentMaterial(t, id)
	ec := map[string]string{"tenant": "a"}
	oldPT := []byte("sealed before the rotation")
	oldBlob := e.encrypt(t, id, oldPT, ec).CiphertextBlob

	e.clock.Advance(3 * day)
	out, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.KeyId) != arn {
		t.Errorf("RotateKeyOnDemand KeyId %s, want %s", aws.ToString(out.KeyId), arn)
	}
	rotated := e.currentMaterial(t, id)
	if rotated == original {
		t.Fatal("CurrentKeyMaterialId did not change")
	}
	// On-demand rotation leaves the automatic schedule alone.
	expectRotation(t, e.rotationStatus(t, id), 90, next)

	// Old ciphertexts still decrypt, with their old material, with and
	// without a KeyId.
	for _, keyID := range []*string{nil, aws.String(id), aws.String(arn)} {
		d, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: oldBlob, EncryptionContext: ec, KeyId: keyID})
		if err != nil {
			t.Fatalf("Decrypt old blob with KeyId %v: %v", aws.ToString(keyID), err)
		}
		if !bytes.Equal(d.Plaintext, oldPT) || aws.ToString(d.KeyMaterialId) != original || aws.ToString(d.KeyId) != arn {
			t.Errorf("Decrypt old blob: plaintext ok %v, KeyMaterialId %s (want %s), KeyId %s",
				bytes.Equal(d.Plaintext, oldPT), aws.ToString(d.KeyMaterialId), original, aws.ToString(d.KeyId))
		}
	}
	// New ciphertexts use the new material.
	newPT := []byte("sealed after the rotation")
	newBlob := e.encrypt(t, id, newPT, ec).CiphertextBlob
	if d := e.decrypt(t, newBlob, ec); !bytes.Equal(d.Plaintext, newPT) || aws.ToString(d.KeyMaterialId) != rotated {
		t.Errorf("Decrypt new blob: plaintext ok %v, KeyMaterialId %s, want %s", bytes.Equal(d.Plaintext, newPT), aws.ToString(d.KeyMaterialId), rotated)
	}
	// Data keys too.
	dk, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(dk.KeyMaterialId) != rotated {
		t.Errorf("GenerateDataKey KeyMaterialId %s, want %s", aws.ToString(dk.KeyMaterialId), rotated)
	}

	// ReEncrypt to the same key moves an old ciphertext to the current material.
	re, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{
		CiphertextBlob: oldBlob, SourceEncryptionContext: ec, DestinationKeyId: aws.String(id), DestinationEncryptionContext: ec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(re.SourceKeyMaterialId) != original || aws.ToString(re.DestinationKeyMaterialId) != rotated ||
		aws.ToString(re.SourceKeyId) != arn || aws.ToString(re.KeyId) != arn {
		t.Errorf("ReEncrypt: source %s/%s, destination %s/%s; want %s/%s and %s/%s",
			aws.ToString(re.SourceKeyId), aws.ToString(re.SourceKeyMaterialId), aws.ToString(re.KeyId), aws.ToString(re.DestinationKeyMaterialId),
			arn, original, arn, rotated)
	}
	if d := e.decrypt(t, re.CiphertextBlob, ec); !bytes.Equal(d.Plaintext, oldPT) || aws.ToString(d.KeyMaterialId) != rotated {
		t.Errorf("Decrypt re-encrypted blob: plaintext ok %v, KeyMaterialId %s, want %s", bytes.Equal(d.Plaintext, oldPT), aws.ToString(d.KeyMaterialId), rotated)
	}

	// 25 on-demand rotations per key, then LimitExceededException.
	for i := 2; i <= 25; i++ {
		e.rotateOnDemand(t, id)
	}
	before := e.currentMaterial(t, id)
	_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
	expectAPIError(t, err, "LimitExceededException",
		"The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: "+arn)
	expectTyped[*types.LimitExceededException](t, err)
	if after := e.currentMaterial(t, id); after != before {
		t.Error("a refused rotation changed the current material")
	}
	if n := len(e.rotations(t, id, "")); n != 25 {
		t.Errorf("ListKeyRotations has %d entries after 25 on-demand rotations", n)
	}
	// Every material still decrypts what it sealed.
	if d := e.decrypt(t, oldBlob, ec); !bytes.Equal(d.Plaintext, oldPT) {
		t.Error("oldest blob no longer decrypts")
	}
	if d := e.decrypt(t, newBlob, ec); !bytes.Equal(d.Plaintext, newPT) {
		t.Error("second blob no longer decrypts")
	}
	// Automatic rotation still works once the on-demand quota is spent.
	e.clock.Advance(next.Sub(e.clock.Now()))
	e.maintain(t)
	if e.currentMaterial(t, id) == before {
		t.Error("automatic rotation did not happen after the on-demand limit was reached")
	}
}

func TestE2ERotateKeyOnDemandErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	rotate := func(keyID string) error {
		_, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(keyID)})
		return err
	}

	disabled := e.newKey(t)
	material := e.currentMaterial(t, disabled)
	e.disable(t, disabled)
	err := rotate(disabled)
	expectAPIError(t, err, "DisabledException", e.keyARN(disabled)+" is disabled.")
	expectTyped[*types.DisabledException](t, err)
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(disabled)}); err != nil {
		t.Fatal(err)
	}
	if e.currentMaterial(t, disabled) != material {
		t.Error("a refused rotation of a disabled key changed its material")
	}
	if n := len(e.rotations(t, disabled, "")); n != 0 {
		t.Errorf("a refused rotation was listed (%d entries)", n)
	}

	deleting := e.newKey(t)
	e.scheduleDeletion(t, deleting, 7)
	expectAPIError(t, rotate(deleting), "KMSInvalidStateException", e.keyARN(deleting)+" is pending deletion.")

	unknown := "7e0b9f4a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
	err = rotate(unknown)
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
	expectTyped[*types.NotFoundException](t, err)
	expectAPIError(t, rotate("not-a-key"), "NotFoundException", "Invalid keyId 'not-a-key'")

	// As on AWS, not while an automatic rotation is due within 20
	// minutes (or under way), which would follow at once.
	soon := e.newKey(t)
	e.enableRotation(t, soon, 90)
	material = e.currentMaterial(t, soon)
	e.clock.Advance(90*day - 20*time.Minute)
	e.maintain(t)
	if err := rotate(soon); err != nil {
		t.Fatalf("on-demand rotation 20 minutes before the automatic one: %v", err)
	}
	rotated := e.currentMaterial(t, soon)
	if rotated == material {
		t.Fatal("the on-demand rotation did not rotate")
	}
	e.clock.Advance(time.Second)
	expectAPIError(t, rotate(soon), "ConflictException", "An automatic rotation of the key "+e.keyARN(soon)+" is in progress or scheduled within the next 20 minutes. Retry the on-demand rotation after it completes.")
	if e.currentMaterial(t, soon) != rotated {
		t.Error("a refused on-demand rotation changed the material")
	}
	e.clock.Advance(20 * time.Minute)
	e.maintain(t)
	if err := rotate(soon); err != nil {
		t.Fatalf("on-demand rotation after the automatic one: %v", err)
	}
}

func TestE2EAutomaticRotation(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	bystander := e.newKey(t) // rotation off: never rotates
	bystanderMaterial := e.currentMaterial(t, bystander)
	e.enableRotation(t, id, 90)
	next := e.clock.Now().Add(90 * day)
	original := e.currentMaterial(t, id)
	pt := []byte("sealed with the original material")
	blob := e.encrypt(t, id, pt, nil).CiphertextBlob

	e.clock.Advance(90*day - time.Second)
	e.maintain(t)
	if e.currentMaterial(t, id) != original {
		t.Fatal("rotated a second before the rotation date")
	}
	if r := e.rotations(t, id, ""); len(r) != 0 {
		t.Fatalf("ListKeyRotations before the date: %d entries", len(r))
	}

	at := e.clock.Advance(time.Second)
	if !at.Equal(next) {
		t.Fatalf("clock %v, next rotation %v", at, next)
	}
	e.maintain(t)
	first := e.currentMaterial(t, id)
	if first == original {
		t.Fatal("no rotation at the rotation date")
	}
	r := e.rotations(t, id, "")
	if len(r) != 1 {
		t.Fatalf("ListKeyRotations: %d entries, want 1", len(r))
	}
	if r[0].RotationType != types.RotationTypeAutomatic || !sameInstant(at, r[0].RotationDate) ||
		aws.ToString(r[0].KeyMaterialId) != first || r[0].KeyMaterialState != types.KeyMaterialStateCurrent || aws.ToString(r[0].KeyId) != id {
		t.Errorf("rotation entry %+v; want AUTOMATIC at %v with material %s, CURRENT, key %s", r[0], at, first, id)
	}
	expectRotation(t, e.rotationStatus(t, id), 90, at.Add(90*day))

	// Maintenance again at the same instant does nothing.
	e.maintain(t)
	if n, err := e.svc.RotateDueKeys(ctx); err != nil || n != 0 {
		t.Errorf("RotateDueKeys at the same instant: %d, %v; want 0", n, err)
	}
	if n := len(e.rotations(t, id, "")); n != 1 {
		t.Errorf("%d rotations after running maintenance twice, want 1", n)
	}
	if d := e.decrypt(t, blob, nil); !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyMaterialId) != original {
		t.Errorf("old blob after automatic rotation: plaintext ok %v, material %s", bytes.Equal(d.Plaintext, pt), aws.ToString(d.KeyMaterialId))
	}

	// A disabled key passes its date without rotating, and rotates on the
	// first maintenance after it is enabled again.
	e.disable(t, id)
	e.clock.Advance(90*day + time.Hour)
	e.maintain(t)
	if n := len(e.rotations(t, id, "")); n != 1 {
		t.Fatalf("a disabled key rotated: %d rotations", n)
	}
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.rotations(t, id, "")); n != 1 {
		t.Fatalf("EnableKey rotated by itself: %d rotations", n)
	}
	at = e.clock.Advance(time.Minute)
	if n, err := e.svc.RotateDueKeys(ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys after re-enabling: %d, %v; want 1", n, err)
	}
	r = e.rotations(t, id, "")
	if len(r) != 2 || r[1].RotationType != types.RotationTypeAutomatic || !sameInstant(at, r[1].RotationDate) {
		t.Fatalf("rotations after re-enabling: %+v", r)
	}
	expectRotation(t, e.rotationStatus(t, id), 90, at.Add(90*day))
	if e.currentMaterial(t, bystander) != bystanderMaterial || len(e.rotations(t, bystander, "")) != 0 {
		t.Error("a key without automatic rotation was rotated")
	}

	// With rotation disabled the date is forgotten: nothing rotates.
	if _, err := e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(365 * day)
	e.maintain(t)
	if n := len(e.rotations(t, id, "")); n != 2 {
		t.Errorf("%d rotations after disabling rotation, want 2", n)
	}
	if d := e.decrypt(t, blob, nil); !bytes.Equal(d.Plaintext, pt) {
		t.Error("the original blob no longer decrypts")
	}
}

// A key pending deletion does not rotate; cancelling the deletion and
// enabling the key lets the overdue rotation happen.
func TestE2EAutomaticRotationPendingDeletion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.enableRotation(t, id, 90)
	e.clock.Advance(85 * day)
	e.scheduleDeletion(t, id, 30)
	e.clock.Advance(10 * day)
	e.maintain(t)
	if n := len(e.rotations(t, id, "")); n != 0 {
		t.Fatalf("a key pending deletion rotated: %d rotations", n)
	}
	if _, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	e.maintain(t)
	r := e.rotations(t, id, "")
	if len(r) != 1 || r[0].RotationType != types.RotationTypeAutomatic {
		t.Fatalf("rotations after cancelling the deletion: %+v", r)
	}
}

func TestE2EListKeyRotations(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)

	out, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Rotations == nil || len(out.Rotations) != 0 || out.Truncated || out.NextMarker != nil {
		t.Errorf("new key: Rotations %v (nil %v), Truncated %v, NextMarker %v", out.Rotations, out.Rotations == nil, out.Truncated, out.NextMarker)
	}

	materials := []string{e.currentMaterial(t, id)}
	var dates []time.Time
	for range 3 {
		dates = append(dates, e.clock.Advance(time.Hour))
		e.rotateOnDemand(t, id)
		materials = append(materials, e.currentMaterial(t, id))
	}

	r := e.rotations(t, id, "")
	if len(r) != 3 {
		t.Fatalf("ListKeyRotations: %d entries, want 3", len(r))
	}
	for i, x := range r {
		state := types.KeyMaterialStateNonCurrent
		if i == 2 {
			state = types.KeyMaterialStateCurrent
		}
		if aws.ToString(x.KeyId) != id || aws.ToString(x.KeyMaterialId) != materials[i+1] || x.RotationType != types.RotationTypeOnDemand ||
			!sameInstant(dates[i], x.RotationDate) || x.KeyMaterialState != state {
			t.Errorf("entry %d: %+v; want key %s, material %s, ON_DEMAND at %v, %s", i, x, id, materials[i+1], dates[i], state)
		}
		if x.ImportState != "" || x.ExpirationModel != "" || x.ValidTo != nil || x.KeyMaterialDescription != nil {
			t.Errorf("entry %d of an AWS_KMS key has import fields: %+v", i, x)
		}
	}
	if rr := e.rotations(t, e.keyARN(id), types.IncludeKeyMaterialRotationsOnly); len(rr) != 3 {
		t.Errorf("ROTATIONS_ONLY by ARN: %d entries, want 3", len(rr))
	}

	all := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
	if len(all) != 4 {
		t.Fatalf("ALL_KEY_MATERIAL: %d entries, want 4", len(all))
	}
	if x := all[0]; aws.ToString(x.KeyMaterialId) != materials[0] || x.RotationType != "" || x.RotationDate != nil ||
		x.KeyMaterialState != types.KeyMaterialStateNonCurrent {
		t.Errorf("original material entry: %+v; want material %s, no rotation type or date, NON_CURRENT", x, materials[0])
	}
	for i, x := range all[1:] {
		if aws.ToString(x.KeyMaterialId) != materials[i+1] || x.RotationType != types.RotationTypeOnDemand {
			t.Errorf("ALL_KEY_MATERIAL entry %d: %+v", i+1, x)
		}
	}

	t.Run("pages", func(t *testing.T) {
		for _, c := range []struct {
			include types.IncludeKeyMaterial
			want    []string
		}{
			{"", materials[1:]},
			{types.IncludeKeyMaterialAllKeyMaterial, materials},
		} {
			var got []string
			in := &kms.ListKeyRotationsInput{KeyId: aws.String(id), Limit: aws.Int32(2), IncludeKeyMaterial: c.include}
			page, err := e.client.ListKeyRotations(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Rotations) != 2 || !page.Truncated || aws.ToString(page.NextMarker) == "" {
				t.Fatalf("%q first page: %d entries, Truncated %v, NextMarker %q", c.include, len(page.Rotations), page.Truncated, aws.ToString(page.NextMarker))
			}
			for _, x := range page.Rotations {
				got = append(got, aws.ToString(x.KeyMaterialId))
			}
			for page.Truncated {
				in.Marker = page.NextMarker
				if page, err = e.client.ListKeyRotations(ctx, in); err != nil {
					t.Fatal(err)
				}
				for _, x := range page.Rotations {
					got = append(got, aws.ToString(x.KeyMaterialId))
				}
				if !page.Truncated && page.NextMarker != nil {
					t.Errorf("last page has NextMarker %q", aws.ToString(page.NextMarker))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%q pages: %v, want %v", c.include, got, c.want)
			}
		}
		// A page exactly as large as the list is not truncated.
		page, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), Limit: aws.Int32(3)})
		if err != nil || len(page.Rotations) != 3 || page.Truncated || page.NextMarker != nil {
			t.Errorf("Limit 3 of 3: %v entries, Truncated %v, NextMarker %v, err %v", len(page.Rotations), page.Truncated, page.NextMarker, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, m := range []string{"garbage", "bTE6enp6", "bTE6"} { // "m1:zzz", "m1:"
			_, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), Marker: aws.String(m)})
			expectAPIErrorCode(t, err, "InvalidMarkerException")
			expectTyped[*types.InvalidMarkerException](t, err)
		}
		_, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), Limit: aws.Int32(0)})
		expectAPIError(t, err, "ValidationException",
			"1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
		_, err = e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id), IncludeKeyMaterial: "SOME"})
		expectAPIErrorPrefix(t, err, "ValidationException",
			"1 validation error detected: Value 'SOME' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set")
		unknown := "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
		_, err = e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(unknown)})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
	})
}

// Encryption under one key while it is rotated on demand and by the
// scheduler: no ciphertext may be lost to a rotation.
func TestE2ERotationConcurrentWithEncrypt(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.enableRotation(t, id, 90)

	const (
		workers   = 8
		perWorker = 150
		onDemand  = 20
		scheduled = 3
		total     = workers * perWorker
	)
	type sealed struct {
		pt, blob []byte
		ec       map[string]string
	}
	results := make([][]sealed, workers)
	// Workers tick the rotators as they go, so that rotations are spread
	// over the whole run rather than bunched at its start.
	onDemandTicks := make(chan struct{}, total)
	scheduledTicks := make(chan struct{}, total)
	var encrypted atomic.Int64
	errs := make(chan error, workers+2)

	var encWG, rotWG sync.WaitGroup
	for w := range workers {
		encWG.Go(func() {
			for i := range perWorker {
				pt := fmt.Appendf(nil, "worker %d message %d %s", w, i, rand.Text())
				ec := map[string]string{"worker": strconv.Itoa(w), "seq": strconv.Itoa(i)}
				out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionContext: ec})
				if err != nil {
					errs <- fmt.Errorf("worker %d Encrypt %d: %w", w, i, err)
					return
				}
				results[w] = append(results[w], sealed{pt: pt, blob: out.CiphertextBlob, ec: ec})
				n := encrypted.Add(1)
				if n%(total/(onDemand+1)) == 0 {
					onDemandTicks <- struct{}{}
				}
				if n%(total/(scheduled+1)) == 0 {
					scheduledTicks <- struct{}{}
				}
			}
		})
	}
	rotWG.Go(func() {
		for i := range onDemand {
			<-onDemandTicks // closed when the workers are done
			if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
				errs <- fmt.Errorf("RotateKeyOnDemand %d: %w", i, err)
				return
			}
		}
	})
	rotWG.Go(func() {
		for i := range scheduled {
			<-scheduledTicks
			st, err := e.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
			if err != nil {
				errs <- fmt.Errorf("GetKeyRotationStatus %d: %w", i, err)
				return
			}
			e.clock.Advance(aws.ToTime(st.NextRotationDate).Sub(e.clock.Now()) + time.Second)
			if err := e.svc.Maintain(ctx); err != nil {
				errs <- fmt.Errorf("Maintain %d: %w", i, err)
				return
			}
		}
	})
	encWG.Wait()
	close(onDemandTicks)
	close(scheduledTicks)
	rotWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	var automatic, manual int
	for _, r := range e.rotations(t, id, "") {
		switch r.RotationType {
		case types.RotationTypeAutomatic:
			automatic++
		case types.RotationTypeOnDemand:
			manual++
		}
	}
	if automatic != scheduled || manual != onDemand {
		t.Errorf("rotations: %d automatic, %d on demand; want %d and %d", automatic, manual, scheduled, onDemand)
	}
	known := map[string]bool{}
	for _, r := range e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial) {
		known[aws.ToString(r.KeyMaterialId)] = true
	}
	if len(known) != 1+onDemand+scheduled {
		t.Errorf("%d distinct materials listed, want %d", len(known), 1+onDemand+scheduled)
	}

	// Every ciphertext decrypts to its plaintext.
	var mu sync.Mutex
	seen := map[string]int{}
	blobs := map[string]bool{}
	var decWG sync.WaitGroup
	for w := range workers {
		if len(results[w]) != perWorker {
			t.Errorf("worker %d kept %d ciphertexts, want %d", w, len(results[w]), perWorker)
		}
		decWG.Go(func() {
			for i, s := range results[w] {
				d, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: s.blob, EncryptionContext: s.ec})
				if err != nil {
					t.Errorf("worker %d ciphertext %d does not decrypt: %v", w, i, err)
					continue
				}
				if !bytes.Equal(d.Plaintext, s.pt) {
					t.Errorf("worker %d ciphertext %d decrypts to %q, want %q", w, i, d.Plaintext, s.pt)
				}
				mu.Lock()
				seen[aws.ToString(d.KeyMaterialId)]++
				blobs[string(s.blob)] = true
				mu.Unlock()
			}
		})
	}
	decWG.Wait()
	if len(blobs) != total {
		t.Errorf("%d distinct ciphertexts, want %d", len(blobs), total)
	}
	if len(seen) < 2 {
		t.Errorf("all %d ciphertexts used the same material: rotations did not overlap the encryptions", total)
	}
	for m := range seen {
		if !known[m] {
			t.Errorf("Decrypt reported material %s, which ListKeyRotations does not list", m)
		}
	}
	t.Logf("%d ciphertexts over %d materials", total, len(seen))
}

// Rotated keys survive a restart: the new process reads every material
// version and the rotation schedule from the store.
func TestE2ERotationSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.enableRotation(t, id, 180)
	ec := map[string]string{"k": "v"}
	oldPT := []byte("before any rotation")
	oldBlob := e.encrypt(t, id, oldPT, ec).CiphertextBlob
	e.clock.Advance(180 * day)
	e.maintain(t)
	e.clock.Advance(time.Hour)
	for range 25 {
		e.rotateOnDemand(t, id)
	}
	newPT := []byte("after 26 rotations")
	newBlob := e.encrypt(t, id, newPT, ec).CiphertextBlob
	status := e.rotationStatus(t, id)
	list := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
	current := e.currentMaterial(t, id)

	r := e.reopen(t)
	for _, c := range []struct {
		pt, blob []byte
		material string
	}{
		{oldPT, oldBlob, aws.ToString(list[0].KeyMaterialId)},
		{newPT, newBlob, current},
	} {
		d := r.decrypt(t, c.blob, ec)
		if !bytes.Equal(d.Plaintext, c.pt) || aws.ToString(d.KeyMaterialId) != c.material {
			t.Errorf("after restart: plaintext ok %v, material %s, want %s", bytes.Equal(d.Plaintext, c.pt), aws.ToString(d.KeyMaterialId), c.material)
		}
	}
	if got := r.currentMaterial(t, id); got != current {
		t.Errorf("CurrentKeyMaterialId after restart %s, want %s", got, current)
	}
	expectRotation(t, r.rotationStatus(t, id), aws.ToInt32(status.RotationPeriodInDays), aws.ToTime(status.NextRotationDate))
	if got := r.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial); fmt.Sprint(entryView(got)) != fmt.Sprint(entryView(list)) {
		t.Errorf("ListKeyRotations after restart:\n%v\nwant\n%v", entryView(got), entryView(list))
	}
	// The on-demand count is stored too.
	_, err := r.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "LimitExceededException")
	// And so is the schedule: the next automatic rotation happens on time.
	r.clock.Advance(aws.ToTime(status.NextRotationDate).Sub(r.clock.Now()))
	r.maintain(t)
	if r.currentMaterial(t, id) == current {
		t.Error("no automatic rotation after the restart")
	}
	if d := r.decrypt(t, newBlob, ec); !bytes.Equal(d.Plaintext, newPT) {
		t.Error("blob no longer decrypts after a rotation in the new process")
	}
}

// entryView renders rotation entries comparably (pointers as values).
func entryView(rs []types.RotationsListEntry) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %s %s %v", aws.ToString(r.KeyId), aws.ToString(r.KeyMaterialId), r.KeyMaterialState, r.RotationType,
			aws.ToTime(r.RotationDate).UnixMilli()))
	}
	return out
}
