package service_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
)

func (f *fixture) rotationStatus(id string) *kmsapi.GetKeyRotationStatusOutput {
	f.t.Helper()
	out, err := f.svc.GetKeyRotationStatus(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) rotations(id, include string) []kmsapi.RotationsListEntry {
	f.t.Helper()
	out, err := f.svc.ListKeyRotations(f.ctx, rootA, &kmsapi.ListKeyRotationsInput{KeyID: id, IncludeKeyMaterial: include})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.Rotations
}

// Automatic rotation happens when the clock reaches the date, gives the key
// new material for new ciphertexts, and keeps the old for old ones.
func TestAutomaticRotation(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	if st := f.rotationStatus(id); st.KeyRotationEnabled || st.NextRotationDate != nil || st.KeyID != arn {
		t.Fatalf("a new key's rotation status %+v", st)
	}
	old, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}
	firstMaterial := f.describe(id).CurrentKeyMaterialID
	f.must2(f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: int32p(90)}))
	due := f.now.Add(90 * day)
	st := f.rotationStatus(id)
	if !st.KeyRotationEnabled || st.RotationPeriodInDays != 90 || st.NextRotationDate == nil || time.Time(*st.NextRotationDate) != due {
		t.Fatalf("status after EnableKeyRotation %+v, want next rotation at %v", st, due)
	}
	f.now = due.Add(-time.Second)
	if n, err := f.svc.RotateDueKeys(f.ctx); err != nil || n != 0 {
		t.Fatalf("a second early: rotated %d, %v", n, err)
	}
	f.now = due
	if n, err := f.svc.RotateDueKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("on the date: rotated %d, %v", n, err)
	}
	if n, err := f.svc.RotateDueKeys(f.ctx); err != nil || n != 0 {
		t.Fatalf("again on the date: rotated %d, %v", n, err)
	}
	second := f.describe(id).CurrentKeyMaterialID
	if second == firstMaterial || second == "" {
		t.Fatalf("material %s after rotation, was %s", second, firstMaterial)
	}
	if st := f.rotationStatus(id); time.Time(*st.NextRotationDate) != due.Add(90*day) {
		t.Fatalf("next rotation %v, want one period after the rotation", st.NextRotationDate)
	}
	dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "before" || dec.KeyMaterialID != firstMaterial {
		t.Fatalf("a ciphertext from before the rotation: %+v, %v", dec, err)
	}
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || dec.KeyMaterialID != second {
		t.Fatalf("a new ciphertext uses material %s, want %s (%v)", dec.KeyMaterialID, second, err)
	}
	rot := f.rotations(id, "")
	if len(rot) != 1 || rot[0].RotationType != "AUTOMATIC" || rot[0].KeyMaterialID != second || rot[0].KeyMaterialState != "CURRENT" ||
		rot[0].RotationDate == nil || time.Time(*rot[0].RotationDate) != due || rot[0].KeyID != id {
		t.Fatalf("ListKeyRotations = %+v", rot)
	}
	all := f.rotations(id, "ALL_KEY_MATERIAL")
	if len(all) != 2 || all[0].KeyMaterialID != firstMaterial || all[0].KeyMaterialState != "NON_CURRENT" || all[0].RotationDate != nil || all[1].KeyMaterialID != second {
		t.Fatalf("ListKeyRotations with all material = %+v", all)
	}

	// A disabled key is not rotated on its date, but when next found
	// enabled.
	f.now = due.Add(180 * day)
	f.must2(f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	if n, err := f.svc.RotateDueKeys(f.ctx); err != nil || n != 0 {
		t.Fatalf("a disabled key: rotated %d, %v", n, err)
	}
	f.must2(f.svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	if n, err := f.svc.RotateDueKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("re-enabled: rotated %d, %v", n, err)
	}
	// Disabling rotation stops it.
	f.must2(f.svc.DisableKeyRotation(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	if st := f.rotationStatus(id); st.KeyRotationEnabled || st.NextRotationDate != nil || st.RotationPeriodInDays != 0 {
		t.Fatalf("status after DisableKeyRotation %+v", st)
	}
	f.advance(1000 * day)
	if err := f.svc.Maintain(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(f.rotations(id, "")); got != 2 {
		t.Fatalf("%d rotations after rotation was disabled, want 2", got)
	}
}

// Pending deletion hides the rotation status; cancelling brings it back.
func TestRotationStatusWhilePendingDeletion(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	f.must2(f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id}))
	if st := f.rotationStatus(id); st.RotationPeriodInDays != 365 {
		t.Fatalf("default period %d, want 365", st.RotationPeriodInDays)
	}
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id}))
	if st := f.rotationStatus(id); st.KeyRotationEnabled {
		t.Fatalf("status of a key pending deletion %+v", st)
	}
	f.must2(f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	if st := f.rotationStatus(id); !st.KeyRotationEnabled || st.RotationPeriodInDays != 365 {
		t.Fatalf("status after the deletion was cancelled %+v", st)
	}
}

func TestRotationRefusals(t *testing.T) {
	f := newFixture(t)
	rsaKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	hmac := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	external := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	disabled := f.keyInState("Disabled")
	id := f.createKey(kmsapi.CreateKeyInput{})
	user := iamUser(t, acctA, "u")
	symOnly := func(id, spec string) string {
		return keyARN(acctA, id) + " has key spec " + spec + "; only symmetric encryption keys rotate."
	}
	for _, tc := range []struct {
		name string
		call func() error
		code fault.Code
		msg  string
	}{
		{"enable on RSA", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: rsaKey})
			return err
		}, fault.UnsupportedOperation, symOnly(rsaKey, "RSA_2048")},
		{"enable on HMAC", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: hmac})
			return err
		}, fault.UnsupportedOperation, symOnly(hmac, "HMAC_256")},
		{"enable on EXTERNAL", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: external})
			return err
		}, fault.UnsupportedOperation, keyARN(acctA, external) + " origin is EXTERNAL which is not valid for this operation."},
		{"enable on disabled", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: disabled})
			return err
		}, fault.Disabled, keyARN(acctA, disabled) + " is disabled."},
		{"disable on disabled", func() error {
			_, err := f.svc.DisableKeyRotation(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: disabled})
			return err
		}, fault.Disabled, keyARN(acctA, disabled) + " is disabled."},
		{"period too short", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: int32p(89)})
			return err
		}, fault.Validation, "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"},
		{"period too long", func() error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: int32p(2561)})
			return err
		}, fault.Validation, "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560"},
		{"status of RSA", func() error {
			_, err := f.svc.GetKeyRotationStatus(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: rsaKey})
			return err
		}, fault.UnsupportedOperation, symOnly(rsaKey, "RSA_2048")},
		{"status of EXTERNAL", func() error {
			_, err := f.svc.GetKeyRotationStatus(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: external})
			return err
		}, fault.UnsupportedOperation, keyARN(acctA, external) + " origin is EXTERNAL which is not valid for this operation."},
		{"status by alias", func() error {
			_, err := f.svc.GetKeyRotationStatus(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: "alias/x"})
			return err
		}, fault.NotFound, "Invalid keyId 'alias/x'"},
		{"on demand on RSA", func() error {
			_, err := f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: rsaKey})
			return err
		}, fault.UnsupportedOperation, ""},
		{"on demand on disabled", func() error {
			_, err := f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: disabled})
			return err
		}, fault.Disabled, keyARN(acctA, disabled) + " is disabled."},
		{"on demand on EXTERNAL without material", func() error {
			_, err := f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: external})
			return err
		}, fault.InvalidState, keyARN(acctA, external) + " is pending import."},
		{"on demand without permission", func() error {
			_, err := f.svc.RotateKeyOnDemand(f.ctx, user, &kmsapi.KeyIDInput{KeyID: id})
			return err
		}, fault.AccessDenied, deniedMsg(user, "kms:RotateKeyOnDemand", keyARN(acctA, id), noIdentityPolicy("kms:RotateKeyOnDemand"))},
		{"list rotations of RSA", func() error {
			_, err := f.svc.ListKeyRotations(f.ctx, rootA, &kmsapi.ListKeyRotationsInput{KeyID: rsaKey})
			return err
		}, fault.UnsupportedOperation, ""},
		{"list rotations, marker of another listing", func() error {
			_, err := f.svc.ListKeyRotations(f.ctx, rootA, &kmsapi.ListKeyRotationsInput{KeyID: id, Marker: strp("bTE6eHl6")}) // "m1:xyz"
			return err
		}, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged."},
		{"list rotations, bad include", func() error {
			_, err := f.svc.ListKeyRotations(f.ctx, rootA, &kmsapi.ListKeyRotationsInput{KeyID: id, IncludeKeyMaterial: "SOME"})
			return err
		}, fault.Validation, "1 validation error detected: Value 'SOME' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			wantErr(t, tc.call(), tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatal("a refused call changed the store")
			}
		})
	}
}

// On-demand rotation: new material at once, at most 25 times, without
// moving the automatic schedule.
func TestRotateKeyOnDemand(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	f.must2(f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id}))
	next := f.rotationStatus(id).NextRotationDate
	blob, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("old")})
	if err != nil {
		t.Fatal(err)
	}
	materials := map[string]bool{f.describe(id).CurrentKeyMaterialID: true}
	for i := range 25 {
		f.advance(time.Hour)
		out, err := f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if out.KeyID != arn {
			t.Fatalf("RotateKeyOnDemand KeyId %s", out.KeyID)
		}
		m := f.describe(id).CurrentKeyMaterialID
		if materials[m] {
			t.Fatalf("rotation %d reused material %s", i+1, m)
		}
		materials[m] = true
	}
	_, err = f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.LimitExceeded, "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: "+arn)
	if st := f.rotationStatus(id); *st.NextRotationDate != *next {
		t.Fatalf("on-demand rotations moved the next rotation from %v to %v", next, st.NextRotationDate)
	}
	dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
	if err != nil || !bytes.Equal(dec.Plaintext, []byte("old")) {
		t.Fatalf("a ciphertext from before 25 rotations: %v", err)
	}
	// The rotations page, oldest first.
	var seen []kmsapi.RotationsListEntry
	var marker *string
	for {
		out, err := f.svc.ListKeyRotations(f.ctx, rootA, &kmsapi.ListKeyRotationsInput{KeyID: id, Limit: int32p(10), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, out.Rotations...)
		if !out.Truncated {
			break
		}
		marker = strp(out.NextMarker)
	}
	if len(seen) != 25 {
		t.Fatalf("%d rotations listed, want 25", len(seen))
	}
	for i, r := range seen {
		if r.RotationType != "ON_DEMAND" || (i > 0 && !time.Time(*r.RotationDate).After(time.Time(*seen[i-1].RotationDate))) {
			t.Fatalf("rotation %d: %+v", i, r)
		}
		if (r.KeyMaterialState == "CURRENT") != (i == 24) {
			t.Fatalf("rotation %d state %s", i, r.KeyMaterialState)
		}
	}
}

// Another process rotated the key: a ciphertext under the new material
// decrypts through a service whose cache still holds the old key.
func TestDecryptAfterRotationElsewhere(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	other := f.newService(service.Config{})
	if _, err := other.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	f.must2(f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("new")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := other.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "new" {
		t.Fatalf("Decrypt through the stale service: %v", err)
	}
}

// A blob naming a version newer than the cached key reads the key again
// at most once a second: anyone allowed to decrypt can make one up, and
// each reload reads the store and opens every version of the key.
func TestStaleVersionReloadsAreBounded(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(enc.CiphertextBlob)
	forged[20] = 9 // version 9 of a key at version 1
	reloads := func() uint64 { _, misses := f.svc.KeyCacheStats(); return misses }
	try := func() {
		t.Helper()
		_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: forged})
		wantErr(t, err, fault.InvalidCiphertext, "")
	}
	try()
	first := reloads()
	for range 50 {
		try()
	}
	if got := reloads(); got != first {
		t.Fatalf("50 more forged blobs within a second read the key %d more times, want none", got-first)
	}
	f.now = f.now.Add(time.Second)
	try()
	if got := reloads(); got != first+1 {
		t.Fatalf("a second later a forged blob read the key %d times, want once", got-first)
	}
	// A real rotation elsewhere still reaches the cache in time.
	other := f.newService(service.Config{})
	f.must2(other.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	f.now = f.now.Add(time.Second)
	enc2, err := other.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("rotated")})
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc2.CiphertextBlob}); err != nil || string(dec.Plaintext) != "rotated" {
		t.Fatalf("Decrypt of the new version: %v", err)
	}
}
