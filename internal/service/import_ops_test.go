package service_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
)

// importParams gets a wrapping key and token for key id.
func (f *fixture) importParams(id, alg string) *kmsapi.GetParametersForImportOutput {
	f.t.Helper()
	out, err := f.svc.GetParametersForImport(f.ctx, rootA, &kmsapi.GetParametersForImportInput{KeyID: id, WrappingAlgorithm: alg, WrappingKeySpec: "RSA_2048"})
	if err != nil {
		f.t.Fatalf("GetParametersForImport: %v", err)
	}
	return out
}

// wrap wraps material for import as a customer would, with the public
// key of a GetParametersForImport response.
func wrap(t testing.TB, p *kmsapi.GetParametersForImportOutput, alg string, material []byte) []byte {
	t.Helper()
	parsed, err := x509.ParsePKIXPublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := parsed.(*rsa.PublicKey)
	var h hash.Hash = sha256.New()
	if alg == "RSAES_OAEP_SHA_1" || alg == "RSA_AES_KEY_WRAP_SHA_1" {
		h = sha1.New()
	}
	switch alg {
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256":
		out, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	wrappedKEK, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := keys.WrapKWP(kek, material)
	if err != nil {
		t.Fatal(err)
	}
	return append(wrappedKEK, wrapped...)
}

// importMaterial imports material into key id, wrapped with a fresh token.
func (f *fixture) importMaterial(id string, material []byte, in kmsapi.ImportKeyMaterialInput) (*kmsapi.ImportKeyMaterialOutput, error) {
	f.t.Helper()
	p := f.importParams(id, "RSAES_OAEP_SHA_256")
	in.KeyID, in.ImportToken, in.EncryptedKeyMaterial = id, p.ImportToken, wrap(f.t, p, "RSAES_OAEP_SHA_256", material)
	return f.svc.ImportKeyMaterial(f.ctx, rootA, &in)
}

func materialID(t *testing.T, id string, material []byte) string {
	t.Helper()
	kid, ok := keys.ParseID(id)
	if !ok {
		t.Fatalf("key id %s", id)
	}
	return keys.ImportedMaterialID(kid, material)
}

func validTo(t time.Time) *kmsapi.Time { v := kmsapi.Time(t); return &v }

// The life of imported symmetric material: imported, used, deleted, brought
// back, expired.
func TestImportedMaterialLifecycle(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	arn := keyARN(acctA, id)
	if m := f.describe(id); m.KeyState != "PendingImport" || m.Enabled || m.CurrentKeyMaterialID != "" || m.ExpirationModel != "" || m.Origin != "EXTERNAL" {
		t.Fatalf("a new EXTERNAL key: %+v", m)
	}
	p := f.importParams(id, "RSAES_OAEP_SHA_256")
	if p.KeyID != arn || time.Time(p.ParametersValidTo) != f.now.Add(24*time.Hour) || len(p.ImportToken) == 0 {
		t.Fatalf("GetParametersForImport = %+v", p)
	}
	if pub, err := x509.ParsePKIXPublicKey(p.PublicKey); err != nil || pub.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Fatalf("wrapping key: %v", err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wantID := materialID(t, id, material)
	out, err := f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrap(t, p, "RSAES_OAEP_SHA_256", material), ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
		KeyMaterialDescription: strp("first import")})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyID != arn || out.KeyMaterialID != wantID {
		t.Fatalf("ImportKeyMaterial = %+v, want material id %s", out, wantID)
	}
	if m := f.describe(id); m.KeyState != "Enabled" || m.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" || m.ValidTo != nil || m.CurrentKeyMaterialID != wantID {
		t.Fatalf("after import: %+v", m)
	}
	// What the key encrypts opens with the imported material itself.
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("imported"), EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := keys.ParseID(id)
	sym, err := keys.NewSymmetric(kid, 1, material)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := sym.Open(enc.CiphertextBlob, map[string]string{"a": "b"}); err != nil || string(pt) != "imported" {
		t.Fatalf("the ciphertext does not open with the imported material: %v", err)
	}
	rot := f.rotations(id, "ALL_KEY_MATERIAL")
	if len(rot) != 1 || rot[0].ImportState != "IMPORTED" || rot[0].KeyMaterialDescription != "first import" || rot[0].ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" {
		t.Fatalf("material list %+v", rot)
	}
	_, err = f.svc.RotateKeyOnDemand(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.InvalidState, "No available key material pending rotation for the key: "+arn+".")

	// Deleted material: PendingImport, nothing decrypts.
	del, err := f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id})
	if err != nil || del.KeyID != arn || del.KeyMaterialID != wantID {
		t.Fatalf("DeleteImportedKeyMaterial = %+v, %v", del, err)
	}
	if m := f.describe(id); m.KeyState != "PendingImport" || m.Enabled || m.ExpirationModel != "" || m.CurrentKeyMaterialID != "" {
		t.Fatalf("after deleting the material: %+v", m)
	}
	_, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
	wantErr(t, err, fault.InvalidState, arn+" is pending import.")
	if rot := f.rotations(id, "ALL_KEY_MATERIAL"); len(rot) != 1 || rot[0].ImportState != "PENDING_IMPORT" || rot[0].KeyMaterialID != wantID {
		t.Fatalf("material list after deletion %+v", rot)
	}
	_, err = f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.InvalidState, arn+" is pending import.")

	// Only the same material comes back.
	other := make([]byte, 32)
	rand.Read(other)
	before := f.snapshot()
	_, err = f.importMaterial(id, other, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	wantErr(t, err, fault.IncorrectKeyMaterial, "The key material being imported is not the same as the key material previously imported into this KMS key.")
	after := f.snapshot()
	for k := range after {
		if _, ok := before[k]; !ok && strings.HasPrefix(k, "importtoken/") {
			delete(after, k) // the import token fetched for the attempt
		}
	}
	if !sameRecords(before, after) {
		t.Fatal("a refused import changed the store")
	}
	_, err = f.importMaterial(id, material, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE", ImportType: "NEW_KEY_MATERIAL"})
	wantErr(t, err, fault.Validation, "This key material is already associated with "+arn+" as key material "+wantID+": import it with ImportType EXISTING_KEY_MATERIAL.")
	expires := f.now.Add(10 * day)
	if _, err := f.importMaterial(id, material, kmsapi.ImportKeyMaterialInput{ValidTo: validTo(expires), ImportType: "EXISTING_KEY_MATERIAL", KeyMaterialID: &wantID}); err != nil {
		t.Fatalf("re-import of the same material: %v", err)
	}
	if m := f.describe(id); m.KeyState != "Enabled" || m.ExpirationModel != "KEY_MATERIAL_EXPIRES" || m.ValidTo == nil || time.Time(*m.ValidTo) != expires {
		t.Fatalf("after re-import: %+v", m)
	}
	if _, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("an old ciphertext after the material came back: %v", err)
	}

	// Expiry: unusable from ValidTo, deleted by the background job.
	f.now = expires.Add(-time.Millisecond)
	if n, err := f.svc.ExpireImportedMaterial(f.ctx); err != nil || n != 0 {
		t.Fatalf("before ValidTo: expired %d, %v", n, err)
	}
	f.now = expires
	if m := f.describe(id); m.KeyState != "PendingImport" || m.ValidTo != nil {
		t.Fatalf("at ValidTo, before the job: %+v", m)
	}
	_, err = f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, fault.InvalidState, arn+" is pending import.")
	_, err = f.svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.InvalidState, arn+" is pending import.")
	if rot := f.rotations(id, "ALL_KEY_MATERIAL"); rot[0].ImportState != "PENDING_IMPORT" {
		t.Fatalf("expired material listed as %+v", rot[0])
	}
	if n, err := f.svc.ExpireImportedMaterial(f.ctx); err != nil || n != 1 {
		t.Fatalf("at ValidTo: expired %d, %v", n, err)
	}
	if n, err := f.svc.ExpireImportedMaterial(f.ctx); err != nil || n != 0 {
		t.Fatalf("again: expired %d, %v", n, err)
	}
	if m := f.describe(id); m.KeyState != "PendingImport" || m.ExpirationModel != "" {
		t.Fatalf("after the job: %+v", m)
	}
	if _, err := f.importMaterial(id, material, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"}); err != nil {
		t.Fatalf("import after expiry: %v", err)
	}
	if m := f.describe(id); m.KeyState != "Enabled" {
		t.Fatalf("after importing again: %+v", m)
	}
}

func TestImportRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	other := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	native := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	material := make([]byte, 32)
	rand.Read(material)
	p := f.importParams(id, "RSAES_OAEP_SHA_256")
	wrapped := wrap(t, p, "RSAES_OAEP_SHA_256", material)
	po := f.importParams(other, "RSAES_OAEP_SHA_256")
	short := wrap(t, p, "RSAES_OAEP_SHA_256", material[:16])
	forever := "KEY_MATERIAL_DOES_NOT_EXPIRE"
	for _, tc := range []struct {
		name string
		in   kmsapi.ImportKeyMaterialInput
		code fault.Code
		msg  string
	}{
		{"no ValidTo for expiring material", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped}, fault.Validation,
			"A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"},
		{"ValidTo for material that does not expire", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever,
			ValidTo: validTo(f.now.Add(day))}, fault.Validation, "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"},
		{"ValidTo now", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ValidTo: validTo(f.now)}, fault.Validation,
			"The validTo date must be in the future."},
		{"ValidTo beyond a year", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ValidTo: validTo(f.now.Add(366 * day))}, fault.Validation,
			"The validTo date must be no more than 365 days in the future."},
		{"token of another key", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: po.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever}, fault.InvalidImportToken,
			"The import token is not valid for this KMS key. Use the import token from a GetParametersForImport response for this key."},
		{"malformed token", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: []byte("token"), EncryptedKeyMaterial: wrapped, ExpirationModel: forever}, fault.InvalidImportToken,
			"The import token is not valid for this KMS key. Use the import token from a GetParametersForImport response for this key."},
		{"material wrapped for another token", kmsapi.ImportKeyMaterialInput{KeyID: other, ImportToken: po.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever},
			fault.InvalidCiphertext, ""},
		{"16 bytes for a symmetric key", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: short, ExpirationModel: forever}, fault.IncorrectKeyMaterial,
			"The key material of a SYMMETRIC_DEFAULT key must be 32 bytes (256 bits); the unwrapped material is 16 bytes."},
		{"existing material into a key without", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever,
			ImportType: "EXISTING_KEY_MATERIAL"}, fault.Validation, arn + " has no key material yet: import it with ImportType NEW_KEY_MATERIAL."},
		{"another material id", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever,
			KeyMaterialID: ptr(materialID(t, other, material))}, fault.IncorrectKeyMaterial,
			"The key material being imported is not the same as the key material previously imported into this KMS key."},
		{"key of origin AWS_KMS", kmsapi.ImportKeyMaterialInput{KeyID: native, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: forever},
			fault.UnsupportedOperation, keyARN(acctA, native) + " origin is AWS_KMS which is not valid for this operation."},
		{"no token", kmsapi.ImportKeyMaterialInput{KeyID: id, EncryptedKeyMaterial: wrapped}, fault.Validation,
			"1 validation error detected: Value null at 'importToken' failed to satisfy constraint: Member must not be null"},
		{"bad description", kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, KeyMaterialDescription: strp("a;b")}, fault.Validation,
			"1 validation error detected: Value 'a;b' at 'keyMaterialDescription' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_\\s.-]+$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			_, err := f.svc.ImportKeyMaterial(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatal("a refused import changed the store")
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   kmsapi.GetParametersForImportInput
		code fault.Code
		msg  string
	}{
		{"PKCS#1 v1.5", kmsapi.GetParametersForImportInput{KeyID: id, WrappingAlgorithm: "RSAES_PKCS1_V1_5", WrappingKeySpec: "RSA_2048"}, fault.UnsupportedOperation,
			"The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."},
		{"SM2", kmsapi.GetParametersForImportInput{KeyID: id, WrappingAlgorithm: "SM2PKE", WrappingKeySpec: "SM2"}, fault.UnsupportedOperation,
			"SM2 wrapping is only available in AWS China Regions."},
		{"origin AWS_KMS", kmsapi.GetParametersForImportInput{KeyID: native, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048"}, fault.UnsupportedOperation,
			keyARN(acctA, native) + " origin is AWS_KMS which is not valid for this operation."},
		{"no algorithm", kmsapi.GetParametersForImportInput{KeyID: id, WrappingKeySpec: "RSA_2048"}, fault.Validation,
			"1 validation error detected: Value null at 'wrappingAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"key spec not in the enum", kmsapi.GetParametersForImportInput{KeyID: id, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_1024"}, fault.Validation,
			"1 validation error detected: Value 'RSA_1024' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"},
	} {
		t.Run("GetParametersForImport/"+tc.name, func(t *testing.T) {
			_, err := f.svc.GetParametersForImport(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	_, err := f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: native})
	wantErr(t, err, fault.UnsupportedOperation, keyARN(acctA, native)+" origin is AWS_KMS which is not valid for this operation.")
	// Deleting material a key does not have changes nothing.
	if out, err := f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id}); err != nil || out.KeyMaterialID != "" {
		t.Fatalf("DeleteImportedKeyMaterial of a key without material: %+v, %v", out, err)
	}
	if _, err := f.importMaterial(id, material, kmsapi.ImportKeyMaterialInput{ExpirationModel: forever}); err != nil {
		t.Fatal(err)
	}
	wrongID := materialID(t, other, material)
	_, err = f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id, KeyMaterialID: &wrongID})
	wantErr(t, err, fault.NotFound, "Key material "+wrongID+" is not found in "+arn+".")

	// A token expires after 24 hours, and is forgotten a day later.
	f.advance(24 * time.Hour)
	_, err = f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: other, ImportToken: po.ImportToken,
		EncryptedKeyMaterial: wrap(t, po, "RSAES_OAEP_SHA_256", material), ExpirationModel: forever})
	wantErr(t, err, fault.ExpiredImportToken, "The import token has expired. Call GetParametersForImport for a new import token and public key.")
	f.advance(24*time.Hour + time.Second)
	if err := f.svc.Maintain(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: other, ImportToken: po.ImportToken,
		EncryptedKeyMaterial: wrap(t, po, "RSAES_OAEP_SHA_256", material), ExpirationModel: forever})
	wantErr(t, err, fault.InvalidImportToken, "The import token is not valid for this KMS key. Use the import token from a GetParametersForImport response for this key.")

	// A key pending deletion takes no material.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: other}))
	_, err = f.svc.GetParametersForImport(f.ctx, rootA, &kmsapi.GetParametersForImportInput{KeyID: other, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048"})
	wantErr(t, err, fault.InvalidState, keyARN(acctA, other)+" is pending deletion.")
}

// Imported HMAC and asymmetric material is what the key then uses: an HMAC
// computed locally with the material matches, and a signature verifies
// with the locally held public key.
func TestImportedHMACAndAsymmetricMaterial(t *testing.T) {
	f := newFixture(t)
	for _, alg := range []string{"RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSAES_OAEP_SHA_1"} {
		t.Run("HMAC/"+alg, func(t *testing.T) {
			id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
			material := make([]byte, 32)
			rand.Read(material)
			p := f.importParams(id, alg)
			_, err := f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrap(t, p, alg, material), ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: id, Message: []byte("msg"), MacAlgorithm: "HMAC_SHA_256"})
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(sha256.New, material)
			m.Write([]byte("msg"))
			if !bytes.Equal(out.Mac, m.Sum(nil)) {
				t.Fatal("the MAC is not the HMAC of the imported material")
			}
		})
	}
	t.Run("ECC_NIST_P256", func(t *testing.T) {
		id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		p := f.importParams(id, "RSA_AES_KEY_WRAP_SHA_256")
		if _, err := f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrap(t, p, "RSA_AES_KEY_WRAP_SHA_256", der), ValidTo: validTo(f.now.Add(day))}); err != nil {
			t.Fatal(err)
		}
		sig, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: id, Message: []byte("msg"), SigningAlgorithm: "ECDSA_SHA_256"})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("msg"))
		if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig.Signature) {
			t.Fatal("the signature does not verify with the imported key's public half")
		}
		f.advance(day)
		_, err = f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: id, Message: []byte("msg"), SigningAlgorithm: "ECDSA_SHA_256"})
		wantErr(t, err, fault.InvalidState, keyARN(acctA, id)+" is pending import.")
	})
	t.Run("wrong material for the spec", func(t *testing.T) {
		for _, tc := range []struct{ spec, usage, msg string }{
			{"ECC_NIST_P256", "SIGN_VERIFY", "The imported key material is not valid for key spec ECC_NIST_P256."},
			{"HMAC_256", "GENERATE_VERIFY_MAC", "The imported key material is not valid for key spec HMAC_256."},
		} {
			id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: tc.spec, KeyUsage: tc.usage})
			_, err := f.importMaterial(id, []byte("not a key of this spec"), kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
			wantErr(t, err, fault.IncorrectKeyMaterial, tc.msg)
		}
		// Specs whose material is not imported here are refused before
		// any wrapping key pair is made or material unwrapped, whatever
		// the token (here another key's).
		other := f.importParams(f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"}), "RSAES_OAEP_SHA_256")
		for _, tc := range []struct{ spec, usage string }{{"ML_DSA_44", "SIGN_VERIFY"}, {"ML_KEM_768", "ENCAPSULATE_DECAPSULATE"}} {
			id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL", KeySpec: tc.spec, KeyUsage: tc.usage})
			msg := "Importing key material for " + tc.spec + " keys is not supported by this server."
			_, err := f.svc.GetParametersForImport(f.ctx, rootA, &kmsapi.GetParametersForImportInput{KeyID: id, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048"})
			wantErr(t, err, fault.UnsupportedOperation, msg)
			_, err = f.svc.ImportKeyMaterial(f.ctx, rootA, &kmsapi.ImportKeyMaterialInput{KeyID: id, ImportToken: other.ImportToken,
				EncryptedKeyMaterial: wrap(t, other, "RSAES_OAEP_SHA_256", []byte("seed")), ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"})
			wantErr(t, err, fault.UnsupportedOperation, msg)
			if m := f.describe(id); m.KeyState != "PendingImport" || m.CurrentKeyMaterialID != "" {
				t.Errorf("%s after the refused import: %+v", tc.spec, m)
			}
		}
	})
}
