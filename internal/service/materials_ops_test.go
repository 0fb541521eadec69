package service_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

func newMaterial() []byte {
	m := make([]byte, 32)
	rand.Read(m)
	return m
}

// Several materials in one imported symmetric key: new material waits
// pending rotation, RotateKeyOnDemand makes it current, every material
// keeps decrypting what it encrypted, and each expires on its own.
func TestImportedKeyMaterials(t *testing.T) {
	f := newFixture(t)
	rootA := accountRoot(acctA)
	id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	arn := keyARN(acctA, id)
	first, second, third := newMaterial(), newMaterial(), newMaterial()
	firstID, secondID, thirdID := materialID(t, id, first), materialID(t, id, second), materialID(t, id, third)
	forever := kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"}

	// No pending material: nothing to rotate to.
	f.must2(f.importMaterial(id, first, forever))
	_, err := f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.InvalidState, "No available key material pending rotation for the key: "+arn+".")
	enc1, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("one")})
	f.must(err)

	// New material waits, expiring on its own, and is not used yet.
	expires := f.now.Add(30 * day)
	out, err := f.importMaterial(id, second, kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ValidTo: validTo(expires),
		KeyMaterialDescription: strp("second")})
	f.must(err)
	if out.KeyMaterialID != secondID {
		t.Errorf("KeyMaterialId %s, want %s", out.KeyMaterialID, secondID)
	}
	if m := f.describe(id); m.CurrentKeyMaterialID != firstID || m.KeyState != "Enabled" || m.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" || m.ValidTo != nil {
		t.Fatalf("with material pending rotation: %+v", m)
	}
	rot := f.rotations(id, "ALL_KEY_MATERIAL")
	if len(rot) != 2 || rot[0].KeyMaterialID != firstID || rot[0].KeyMaterialState != "CURRENT" || rot[0].ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" ||
		rot[1].KeyMaterialID != secondID || rot[1].KeyMaterialState != "PENDING_ROTATION" || rot[1].ImportState != "IMPORTED" ||
		rot[1].ExpirationModel != "KEY_MATERIAL_EXPIRES" || rot[1].ValidTo == nil || !time.Time(*rot[1].ValidTo).Equal(expires) || rot[1].KeyMaterialDescription != "second" {
		t.Fatalf("ListKeyRotations ALL_KEY_MATERIAL = %+v", rot)
	}
	if rot := f.rotations(id, ""); len(rot) != 0 {
		t.Errorf("completed rotations before any: %+v", rot)
	}
	// One pending material at a time; the same material is not new.
	_, err = f.importMaterial(id, third, kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.InvalidState, "New key material (id: "+thirdID+") cannot be imported into KMS key "+arn+", because another key material (id: "+secondID+") is pending rotation.")
	_, err = f.importMaterial(id, first, kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.Validation, "This key material is already associated with "+arn+" as key material "+firstID+": import it with ImportType EXISTING_KEY_MATERIAL.")
	_, err = f.importMaterial(id, third, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.IncorrectKeyMaterial, "The key material being imported is not the same as the key material previously imported into this KMS key.")
	_, err = f.importMaterial(id, third, kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", KeyMaterialID: &thirdID, ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.Validation, "A key material ID cannot be specified when ImportType is NEW_KEY_MATERIAL.")

	// Pending material may be deleted outright and other material imported.
	del, err := f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id, KeyMaterialID: &secondID})
	f.must(err)
	if del.KeyMaterialID != secondID || f.describe(id).KeyState != "Enabled" || len(f.rotations(id, "ALL_KEY_MATERIAL")) != 1 {
		t.Fatalf("after deleting the pending material: %+v, %+v", del, f.describe(id))
	}
	f.must2(f.importMaterial(id, third, kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ValidTo: validTo(expires)}))

	// Rotate: the new material is current, the first decrypts still.
	f.advance(time.Hour)
	rotatedAt := f.now
	f.must2(f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
	if m := f.describe(id); m.CurrentKeyMaterialID != thirdID || m.KeyState != "Enabled" || m.ExpirationModel != "KEY_MATERIAL_EXPIRES" || m.ValidTo == nil || !time.Time(*m.ValidTo).Equal(expires) {
		t.Fatalf("after the rotation: %+v", m)
	}
	enc3, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("three")})
	f.must(err)
	for blob, want := range map[*kmsapi.EncryptOutput]string{enc1: firstID, enc3: thirdID} {
		d, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
		f.must(err)
		if d.KeyMaterialID != want {
			t.Errorf("Decrypt KeyMaterialId %s, want %s", d.KeyMaterialID, want)
		}
	}
	rot = f.rotations(id, "")
	if len(rot) != 1 || rot[0].KeyMaterialID != thirdID || rot[0].RotationType != "ON_DEMAND" || rot[0].KeyMaterialState != "CURRENT" ||
		rot[0].RotationDate == nil || !time.Time(*rot[0].RotationDate).Equal(rotatedAt) {
		t.Fatalf("ListKeyRotations after the rotation: %+v", rot)
	}

	// Deleting a non-current material makes the key unusable until it is
	// imported again: its ciphertexts must decrypt.
	f.must2(f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id, KeyMaterialID: &firstID}))
	if m := f.describe(id); m.KeyState != "PendingImport" {
		t.Fatalf("without its first material: %+v", m)
	}
	_, err = f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, fault.InvalidState, arn+" is pending import.")
	f.must2(f.importMaterial(id, first, kmsapi.ImportKeyMaterialInput{ImportType: "EXISTING_KEY_MATERIAL", KeyMaterialID: &firstID, ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"}))
	if m := f.describe(id); m.KeyState != "Enabled" || m.CurrentKeyMaterialID != thirdID {
		t.Fatalf("with the first material back: %+v", m)
	}
	_, err = f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id, KeyMaterialID: &secondID})
	wantErr(t, err, fault.NotFound, "Key material "+secondID+" is not found in "+arn+".")

	// The current material expires on its own date; the first does not.
	f.now = expires
	if n, err := f.svc.ExpireImportedMaterial(f.ctx); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	rot = f.rotations(id, "ALL_KEY_MATERIAL")
	if m := f.describe(id); m.KeyState != "PendingImport" || rot[0].ImportState != "IMPORTED" || rot[1].ImportState != "PENDING_IMPORT" {
		t.Fatalf("after the current material expired: %+v, %+v", m, rot)
	}
	f.must2(f.importMaterial(id, third, forever))
	if m := f.describe(id); m.KeyState != "Enabled" || m.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" {
		t.Fatalf("with the current material back: %+v", m)
	}
}

// Only symmetric encryption keys take new material.
func TestNewKeyMaterialOnlyForSymmetricKeys(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	first := newMaterial()
	f.must2(f.importMaterial(id, first, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"}))
	before := f.snapshot()
	_, err := f.importMaterial(id, newMaterial(), kmsapi.ImportKeyMaterialInput{ImportType: "NEW_KEY_MATERIAL", ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.UnsupportedOperation, keyARN(acctA, id)+" has key spec HMAC_256: only symmetric encryption keys take new key material. Re-import the same key material with ImportType EXISTING_KEY_MATERIAL.")
	after := f.snapshot()
	for k := range after {
		if _, ok := before[k]; !ok {
			delete(after, k) // the import token
		}
	}
	if !sameRecords(before, after) {
		t.Error("a refused import changed the store")
	}
}
