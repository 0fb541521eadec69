package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"hash"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/keys"
)

// Keys with imported material (Origin EXTERNAL) through the SDK:
// GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial,
// expiry of material under the fake clock, and what rotation does with such
// keys (reference §4.4, §4.12).

const (
	notExpiring = types.ExpirationModelTypeKeyMaterialDoesNotExpire
	expiring    = types.ExpirationModelTypeKeyMaterialExpires
)

func (e *kmsEnv) newExternalKey(t testing.TB) string {
	t.Helper()
	return aws.ToString(e.createKey(t, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).KeyId)
}

func (e *kmsEnv) importParams(t testing.TB, keyID string, alg types.AlgorithmSpec, spec types.WrappingKeySpec) *kms.GetParametersForImportOutput {
	t.Helper()
	out, err := e.client.GetParametersForImport(context.Background(), &kms.GetParametersForImportInput{
		KeyId: aws.String(keyID), WrappingAlgorithm: alg, WrappingKeySpec: spec,
	})
	if err != nil {
		t.Fatalf("GetParametersForImport %s %s %s: %v", keyID, alg, spec, err)
	}
	return out
}

// wrapForImport wraps material under the public key of a
// GetParametersForImport response as a customer would: RSAES-OAEP with the
// algorithm's hash, or for RSA_AES_KEY_WRAP an ephemeral AES-256 key so
// encrypted followed by the material under AES-KWP (RFC 5649).
func wrapForImport(t testing.TB, alg types.AlgorithmSpec, publicKey, material []byte) []byte {
	t.Helper()
	parsed, err := x509.ParsePKIXPublicKey(publicKey)
	if err != nil {
		t.Fatalf("PublicKey is not DER SubjectPublicKeyInfo: %v", err)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("PublicKey is a %T, want RSA", parsed)
	}
	var h hash.Hash
	switch alg {
	case types.AlgorithmSpecRsaesOaepSha1, types.AlgorithmSpecRsaAesKeyWrapSha1:
		h = sha1.New()
	case types.AlgorithmSpecRsaesOaepSha256, types.AlgorithmSpecRsaAesKeyWrapSha256:
		h = sha256.New()
	default:
		t.Fatalf("no wrapping for %s", alg)
	}
	switch alg {
	case types.AlgorithmSpecRsaesOaepSha1, types.AlgorithmSpecRsaesOaepSha256:
		out, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kek := mustRandom(t, 32)
	head, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := keys.WrapKWP(kek, material)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, tail...)
}

// importMaterial imports material into keyID under a fresh RSAES_OAEP_SHA_256
// token; validTo nil means KEY_MATERIAL_DOES_NOT_EXPIRE.
func (e *kmsEnv) importMaterial(t testing.TB, keyID string, material []byte, validTo *time.Time) *kms.ImportKeyMaterialOutput {
	t.Helper()
	out, err := e.tryImport(t, keyID, material, validTo)
	if err != nil {
		t.Fatalf("ImportKeyMaterial %s: %v", keyID, err)
	}
	return out
}

func (e *kmsEnv) tryImport(t testing.TB, keyID string, material []byte, validTo *time.Time) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.importParams(t, keyID, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	in := &kms.ImportKeyMaterialInput{
		KeyId: aws.String(keyID), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material),
		ExpirationModel:      notExpiring,
	}
	if validTo != nil {
		in.ExpirationModel, in.ValidTo = expiring, validTo
	}
	return e.client.ImportKeyMaterial(context.Background(), in)
}

// expectPendingImport checks that DescribeKey shows an EXTERNAL key without
// usable material.
func (e *kmsEnv) expectPendingImport(t testing.TB, keyID string) {
	t.Helper()
	m := e.describe(t, keyID)
	if m.KeyState != types.KeyStatePendingImport || m.Enabled || m.Origin != types.OriginTypeExternal ||
		m.CurrentKeyMaterialId != nil || m.ExpirationModel != "" || m.ValidTo != nil {
		t.Errorf("DescribeKey: state %s, enabled %v, origin %s, material %v, expiration model %q, valid to %v; want PendingImport without material",
			m.KeyState, m.Enabled, m.Origin, aws.ToString(m.CurrentKeyMaterialId), m.ExpirationModel, m.ValidTo)
	}
}

// expectImported checks that DescribeKey shows an EXTERNAL key Enabled with
// material materialID.
func (e *kmsEnv) expectImported(t testing.TB, keyID, materialID string, model types.ExpirationModelType, validTo *time.Time) {
	t.Helper()
	m := e.describe(t, keyID)
	if m.KeyState != types.KeyStateEnabled || !m.Enabled || m.Origin != types.OriginTypeExternal ||
		aws.ToString(m.CurrentKeyMaterialId) != materialID || m.ExpirationModel != model {
		t.Errorf("DescribeKey: state %s, enabled %v, origin %s, material %s, expiration model %q; want Enabled, material %s, %s",
			m.KeyState, m.Enabled, m.Origin, aws.ToString(m.CurrentKeyMaterialId), m.ExpirationModel, materialID, model)
	}
	if (validTo == nil) != (m.ValidTo == nil) || (validTo != nil && !sameInstant(*validTo, m.ValidTo)) {
		t.Errorf("DescribeKey ValidTo %v, want %v", m.ValidTo, validTo)
	}
}

func TestE2EImportPendingImportKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	m := e.createKey(t, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, Description: aws.String("imported")})
	id := aws.ToString(m.KeyId)
	arn := e.keyARN(id)
	if m.KeyState != types.KeyStatePendingImport || m.Enabled || m.Origin != types.OriginTypeExternal || m.CurrentKeyMaterialId != nil ||
		m.KeySpec != types.KeySpecSymmetricDefault || m.KeyUsage != types.KeyUsageTypeEncryptDecrypt || m.ExpirationModel != "" || m.ValidTo != nil ||
		aws.ToString(m.Arn) != arn {
		t.Errorf("CreateKey EXTERNAL: %+v", m)
	}
	e.expectPendingImport(t, id)

	pending := arn + " is pending import."
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	expectTyped[*types.KMSInvalidStateException](t, err)
	_, err = e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(32)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)

	if r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial); len(r) != 0 {
		t.Errorf("ListKeyRotations of a key never imported: %+v", r)
	}
	// Deleting material that was never imported changes nothing, and
	// names no material: the model's KeyMaterialId is a hex string, which
	// an empty one is not.
	r := e.rawCall(t, "DeleteImportedKeyMaterial", `{"KeyId":"`+id+`"}`)
	if r.status != 200 {
		t.Errorf("DeleteImportedKeyMaterial on a PendingImport key: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["KeyId"] != arn || len(m) != 1 {
		t.Errorf("DeleteImportedKeyMaterial on a PendingImport key answered %s, want only its KeyId", r.body)
	}
	e.expectPendingImport(t, id)
	// The key can be scheduled for deletion, and then takes no material.
	e.scheduleDeletion(t, id, 7)
	_, err = e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(id), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
}

func TestE2EImportWrappingAlgorithms(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		alg  types.AlgorithmSpec
		spec types.WrappingKeySpec
		bits int
	}{
		{types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, 2048},
		{types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, 2048},
		{types.AlgorithmSpecRsaAesKeyWrapSha1, types.WrappingKeySpecRsa2048, 2048},
		{types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, 2048},
		{types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa3072, 3072},
	} {
		t.Run(string(c.alg)+" "+string(c.spec), func(t *testing.T) {
			t.Parallel()
			id := e.newExternalKey(t)
			arn := e.keyARN(id)
			p := e.importParams(t, id, c.alg, c.spec)
			if aws.ToString(p.KeyId) != arn || len(p.ImportToken) == 0 || !sameInstant(e.clock.Now().Add(24*time.Hour), p.ParametersValidTo) {
				t.Errorf("GetParametersForImport: KeyId %s, token of %d bytes, valid to %v", aws.ToString(p.KeyId), len(p.ImportToken), p.ParametersValidTo)
			}
			pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
			if err != nil {
				t.Fatalf("PublicKey: %v", err)
			}
			if rsaPub, ok := pub.(*rsa.PublicKey); !ok || rsaPub.N.BitLen() != c.bits {
				t.Fatalf("PublicKey is %T, want RSA of %d bits", pub, c.bits)
			}

			material := mustRandom(t, 32)
			out, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
				KeyId: aws.String(id), ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, c.alg, p.PublicKey, material),
				ExpirationModel: notExpiring,
			})
			if err != nil {
				t.Fatalf("ImportKeyMaterial: %v", err)
			}
			materialID := aws.ToString(out.KeyMaterialId)
			if aws.ToString(out.KeyId) != arn || !hex64RE.MatchString(materialID) {
				t.Errorf("ImportKeyMaterial: KeyId %s, KeyMaterialId %q", aws.ToString(out.KeyId), materialID)
			}
			kid, _ := keys.ParseID(id)
			if want := keys.ImportedMaterialID(kid, material); materialID != want {
				t.Errorf("KeyMaterialId %s, want %s: the server did not unwrap the material that was sent", materialID, want)
			}
			e.expectImported(t, id, materialID, notExpiring, nil)

			ec := map[string]string{"alg": string(c.alg)}
			pt := []byte("under imported material")
			blob := e.encrypt(t, id, pt, ec).CiphertextBlob
			if d := e.decrypt(t, blob, ec); !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyMaterialId) != materialID || aws.ToString(d.KeyId) != arn {
				t.Errorf("Decrypt: plaintext ok %v, KeyMaterialId %s, KeyId %s", bytes.Equal(d.Plaintext, pt), aws.ToString(d.KeyMaterialId), aws.ToString(d.KeyId))
			}
			// The ciphertext really is under the material the customer holds.
			sym, err := keys.NewSymmetric(kid, 1, material)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := sym.Open(blob, ec); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("offline decryption with the imported material: %q, %v", got, err)
			}
			dk, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(dk.KeyMaterialId) != materialID || len(dk.Plaintext) != 32 {
				t.Errorf("GenerateDataKey: KeyMaterialId %s, %d-byte data key", aws.ToString(dk.KeyMaterialId), len(dk.Plaintext))
			}
			if d := e.decrypt(t, dk.CiphertextBlob, ec); !bytes.Equal(d.Plaintext, dk.Plaintext) {
				t.Error("the data key does not decrypt to its plaintext")
			}

			r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
			if len(r) != 1 || aws.ToString(r[0].KeyMaterialId) != materialID || r[0].ImportState != types.ImportStateImported ||
				r[0].ExpirationModel != notExpiring || r[0].KeyMaterialState != types.KeyMaterialStateCurrent || r[0].RotationType != "" || r[0].ValidTo != nil {
				t.Errorf("ListKeyRotations ALL_KEY_MATERIAL: %+v", r)
			}
			if r := e.rotations(t, id, ""); len(r) != 0 {
				t.Errorf("ListKeyRotations of an imported key without rotations: %+v", r)
			}
		})
	}
}

func TestE2EImportRefusedOrigins(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	arn := e.keyARN(id)
	originMsg := arn + " origin is AWS_KMS which is not valid for this operation."

	_, err := e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(id), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	expectAPIError(t, err, "UnsupportedOperationException", originMsg)
	expectTyped[*types.UnsupportedOperationException](t, err)
	_, err = e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(id), ImportToken: mustRandom(t, 33), EncryptedKeyMaterial: mustRandom(t, 256), ExpirationModel: notExpiring,
	})
	expectAPIError(t, err, "UnsupportedOperationException", originMsg)
	_, err = e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "UnsupportedOperationException", originMsg)

	ext := e.newExternalKey(t)
	_, err = e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(ext), WrappingAlgorithm: types.AlgorithmSpecRsaesPkcs1V15, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	expectAPIErrorCode(t, err, "UnsupportedOperationException")
	_, err = e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(ext), WrappingAlgorithm: "RSA_OAEP", WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	expectAPIErrorPrefix(t, err, "ValidationException",
		"1 validation error detected: Value 'RSA_OAEP' at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set")
	unknown := "2f3e4d5c-6b7a-4988-a7b6-c5d4e3f2a1b0"
	_, err = e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: aws.String(unknown), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
	e.expectPendingImport(t, ext)
}

func TestE2EImportKeyMaterialErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	other := e.newExternalKey(t)
	p := e.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	otherP := e.importParams(t, other, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	material := mustRandom(t, 32)
	wrapped := wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material)
	corrupted := bytes.Clone(wrapped)
	corrupted[len(corrupted)/2] ^= 0x01
	now := e.clock.Now()

	cases := []struct {
		name  string
		in    kms.ImportKeyMaterialInput
		code  string
		msg   string // "" checks only that there is one
		noMsg bool
	}{
		{name: "default model without ValidTo", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped},
			code: "ValidationException", msg: "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"},
		{name: "expiring without ValidTo", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: expiring},
			code: "ValidationException", msg: "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"},
		{name: "ValidTo in the past", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: expiring, ValidTo: aws.Time(now.Add(-time.Hour))}, code: "ValidationException"},
		{name: "ValidTo now", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: expiring, ValidTo: aws.Time(now)}, code: "ValidationException"},
		{name: "ValidTo beyond 365 days", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: expiring, ValidTo: aws.Time(now.Add(366 * day))}, code: "ValidationException"},
		{name: "ValidTo with DOES_NOT_EXPIRE", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: notExpiring, ValidTo: aws.Time(now.Add(time.Hour))}, code: "ValidationException"},
		{name: "token of another key", in: kms.ImportKeyMaterialInput{ImportToken: otherP.ImportToken,
			EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, otherP.PublicKey, material), ExpirationModel: notExpiring},
			code: "InvalidImportTokenException"},
		{name: "garbage token", in: kms.ImportKeyMaterialInput{ImportToken: mustRandom(t, 33), EncryptedKeyMaterial: wrapped, ExpirationModel: notExpiring},
			code: "InvalidImportTokenException"},
		{name: "short token", in: kms.ImportKeyMaterialInput{ImportToken: []byte("token"), EncryptedKeyMaterial: wrapped, ExpirationModel: notExpiring},
			code: "InvalidImportTokenException"},
		{name: "token with one bit changed", in: kms.ImportKeyMaterialInput{ImportToken: flipLastBit(p.ImportToken), EncryptedKeyMaterial: wrapped,
			ExpirationModel: notExpiring}, code: "InvalidImportTokenException"},
		{name: "corrupted material", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken, EncryptedKeyMaterial: corrupted, ExpirationModel: notExpiring},
			code: "InvalidCiphertextException", noMsg: true},
		{name: "wrapped for another key", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, otherP.PublicKey, material), ExpirationModel: notExpiring},
			code: "InvalidCiphertextException", noMsg: true},
		{name: "wrapped with another algorithm", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha1, p.PublicKey, material), ExpirationModel: notExpiring},
			code: "InvalidCiphertextException", noMsg: true},
		{name: "16-byte material", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, mustRandom(t, 16)), ExpirationModel: notExpiring},
			code: "IncorrectKeyMaterialException"},
		{name: "64-byte material", in: kms.ImportKeyMaterialInput{ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, mustRandom(t, 64)), ExpirationModel: notExpiring},
			code: "IncorrectKeyMaterialException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.KeyId = aws.String(id)
			_, err := e.client.ImportKeyMaterial(ctx, &in)
			ae := expectAPIErrorCode(t, err, c.code)
			switch c.code {
			case "InvalidImportTokenException":
				expectTyped[*types.InvalidImportTokenException](t, err)
			case "InvalidCiphertextException":
				expectTyped[*types.InvalidCiphertextException](t, err)
			case "IncorrectKeyMaterialException":
				expectTyped[*types.IncorrectKeyMaterialException](t, err)
			}
			switch {
			case ae == nil:
			case c.msg != "" && ae.ErrorMessage() != c.msg:
				t.Errorf("message %q, want %q", ae.ErrorMessage(), c.msg)
			case c.noMsg && ae.ErrorMessage() != "":
				t.Errorf("message %q, want none", ae.ErrorMessage())
			case !c.noMsg && ae.ErrorMessage() == "":
				t.Error("no message")
			}
			e.expectPendingImport(t, id)
			if r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial); len(r) != 0 {
				t.Errorf("a refused import left material: %+v", r)
			}
		})
	}
	// The request the refused ones varied succeeds.
	_, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(id), ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: notExpiring,
	})
	if err != nil {
		t.Fatalf("ImportKeyMaterial after the refused ones: %v", err)
	}
	e.expectImported(t, id, keys.ImportedMaterialID(mustParseID(t, id), material), notExpiring, nil)

	// Tokens last 24 hours: a second before, other's still works; at
	// 24 h + 1 s it is refused as expired.
	e.clock.Advance(24*time.Hour - time.Second)
	otherMaterial := mustRandom(t, 32)
	if _, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(other), ImportToken: otherP.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, otherP.PublicKey, otherMaterial),
	}); err != nil {
		t.Fatalf("import with a token a second before its end: %v", err)
	}
	if _, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	_, err = e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(other), ImportToken: otherP.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, otherP.PublicKey, otherMaterial),
	})
	expectAPIErrorCode(t, err, "ExpiredImportTokenException")
	expectTyped[*types.ExpiredImportTokenException](t, err)
	e.expectPendingImport(t, other)

	// A day later maintenance deletes the token. Using it then is still a
	// client error (expired or invalid), not an internal error that SDKs
	// would retry.
	e.clock.Advance(24 * time.Hour)
	e.maintain(t)
	_, err = e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(other), ImportToken: otherP.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, otherP.PublicKey, otherMaterial),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || (ae.ErrorCode() != "ExpiredImportTokenException" && ae.ErrorCode() != "InvalidImportTokenException") || httpStatus(err) != 400 {
		t.Errorf("import with a purged token: %v (HTTP %d); want ExpiredImportTokenException or InvalidImportTokenException", err, httpStatus(err))
	}
	e.expectPendingImport(t, other)
}

func flipLastBit(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 0x01
	return c
}

func mustParseID(t testing.TB, id string) keys.ID {
	t.Helper()
	kid, ok := keys.ParseID(id)
	if !ok {
		t.Fatalf("malformed key id %q", id)
	}
	return kid
}

func TestE2EImportDeleteAndReimport(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	arn := e.keyARN(id)
	materialA, materialB := mustRandom(t, 32), mustRandom(t, 32)
	first := e.importMaterial(t, id, materialA, nil)
	idA := aws.ToString(first.KeyMaterialId)
	e.expectImported(t, id, idA, notExpiring, nil)
	ec := map[string]string{"purpose": "reimport"}
	pt := []byte("survives the deletion of its material")
	blob := e.encrypt(t, id, pt, ec).CiphertextBlob

	// Importing other material into a key that has some is refused.
	_, err := e.tryImport(t, id, materialB, nil)
	expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
	expectTyped[*types.IncorrectKeyMaterialException](t, err)
	e.expectImported(t, id, idA, notExpiring, nil)

	del, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.KeyId) != arn || aws.ToString(del.KeyMaterialId) != idA {
		t.Errorf("DeleteImportedKeyMaterial: KeyId %s, KeyMaterialId %s", aws.ToString(del.KeyId), aws.ToString(del.KeyMaterialId))
	}
	e.expectPendingImport(t, id)
	pending := arn + " is pending import."
	for _, keyID := range []*string{nil, aws.String(id)} {
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyId: keyID})
		expectAPIError(t, err, "KMSInvalidStateException", pending)
	}
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
	if len(r) != 1 || aws.ToString(r[0].KeyMaterialId) != idA || r[0].ImportState != types.ImportStatePendingImport || r[0].ExpirationModel != "" {
		t.Errorf("ListKeyRotations after deletion: %+v", r)
	}

	// Only the same material can come back.
	_, err = e.tryImport(t, id, materialB, nil)
	expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
	e.expectPendingImport(t, id)

	again := e.importMaterial(t, id, materialA, nil)
	if aws.ToString(again.KeyMaterialId) != idA {
		t.Errorf("re-import KeyMaterialId %s, want %s", aws.ToString(again.KeyMaterialId), idA)
	}
	e.expectImported(t, id, idA, notExpiring, nil)
	d := e.decrypt(t, blob, ec)
	if !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyMaterialId) != idA {
		t.Errorf("Decrypt after re-import: plaintext ok %v, KeyMaterialId %s", bytes.Equal(d.Plaintext, pt), aws.ToString(d.KeyMaterialId))
	}
	if r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial); len(r) != 1 || r[0].ImportState != types.ImportStateImported {
		t.Errorf("ListKeyRotations after re-import: %+v", r)
	}

	// Re-importing the same material while it is present changes its
	// expiration.
	validTo := e.clock.Now().Add(48 * time.Hour)
	e.importMaterial(t, id, materialA, &validTo)
	e.expectImported(t, id, idA, expiring, &validTo)
	e.importMaterial(t, id, materialA, nil)
	e.expectImported(t, id, idA, notExpiring, nil)

	// A disabled key loses its material and gets it back the same way.
	e.disable(t, id)
	if _, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	e.expectPendingImport(t, id)
	e.importMaterial(t, id, materialA, nil)
	if d := e.decrypt(t, blob, ec); !bytes.Equal(d.Plaintext, pt) {
		t.Error("Decrypt after the second re-import failed")
	}
}

func TestE2EImportExpiry(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	arn := e.keyARN(id)
	material := mustRandom(t, 32)
	validTo := e.clock.Now().Add(time.Hour)
	materialID := aws.ToString(e.importMaterial(t, id, material, &validTo).KeyMaterialId)
	e.expectImported(t, id, materialID, expiring, &validTo)
	r := e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
	if len(r) != 1 || r[0].ImportState != types.ImportStateImported || r[0].ExpirationModel != expiring || !sameInstant(validTo, r[0].ValidTo) {
		t.Errorf("ListKeyRotations of expiring material: %+v", r)
	}
	pt := []byte("sealed under expiring material")
	blob := e.encrypt(t, id, pt, nil).CiphertextBlob

	// Usable until the last millisecond before ValidTo.
	e.clock.Advance(time.Hour - time.Millisecond)
	e.maintain(t)
	if d := e.decrypt(t, blob, nil); !bytes.Equal(d.Plaintext, pt) {
		t.Fatal("material unusable before ValidTo")
	}

	// At ValidTo the material is gone, before any maintenance runs.
	e.clock.Advance(time.Millisecond)
	e.expectPendingImport(t, id)
	pending := arn + " is pending import."
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes128})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	// The state matrix (reference §4.4) applies to the state DescribeKey
	// shows: EnableKey and DisableKey refuse a PendingImport key.
	_, err = e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	// So does CreateGrant (X[5]): no grant is made on a key that
	// DescribeKey shows pending import.
	grant := &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(kpRootARN),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}}
	_, err = e.client.CreateGrant(ctx, grant)
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	e.expectPendingImport(t, id)

	e.maintain(t)
	e.expectPendingImport(t, id)
	_, err = e.client.CreateGrant(ctx, grant)
	expectAPIError(t, err, "KMSInvalidStateException", pending)
	if g, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(id)}); err != nil || len(g.Grants) != 0 {
		t.Errorf("grants of a key pending import: %+v, %v; want none", g, err)
	}
	r = e.rotations(t, id, types.IncludeKeyMaterialAllKeyMaterial)
	if len(r) != 1 || aws.ToString(r[0].KeyMaterialId) != materialID || r[0].ImportState != types.ImportStatePendingImport ||
		r[0].ExpirationModel != "" || r[0].ValidTo != nil {
		t.Errorf("ListKeyRotations after expiry: %+v", r)
	}
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(id)})
	expectAPIError(t, err, "KMSInvalidStateException", pending)

	// The same material brings the key back; other material does not.
	_, err = e.tryImport(t, id, mustRandom(t, 32), nil)
	expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
	if got := aws.ToString(e.importMaterial(t, id, material, nil).KeyMaterialId); got != materialID {
		t.Errorf("re-import KeyMaterialId %s, want %s", got, materialID)
	}
	e.expectImported(t, id, materialID, notExpiring, nil)
	if d := e.decrypt(t, blob, nil); !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyMaterialId) != materialID {
		t.Error("the old ciphertext does not decrypt after re-import")
	}
	// Material that does not expire stays.
	e.clock.Advance(400 * day)
	e.maintain(t)
	e.expectImported(t, id, materialID, notExpiring, nil)
}

// Material that expires while maintenance has not run yet can be imported
// again at once, and the late maintenance run must not delete it.
func TestE2EImportReimportBeforeExpiryMaintenance(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newExternalKey(t)
	material := mustRandom(t, 32)
	validTo := e.clock.Now().Add(time.Hour)
	materialID := aws.ToString(e.importMaterial(t, id, material, &validTo).KeyMaterialId)
	blob := e.encrypt(t, id, []byte("x"), nil).CiphertextBlob
	e.clock.Advance(2 * time.Hour)
	e.expectPendingImport(t, id)
	later := e.clock.Now().Add(time.Hour)
	e.importMaterial(t, id, material, &later)
	e.expectImported(t, id, materialID, expiring, &later)
	e.maintain(t)
	e.expectImported(t, id, materialID, expiring, &later)
	if d := e.decrypt(t, blob, nil); !bytes.Equal(d.Plaintext, []byte("x")) {
		t.Error("old ciphertext does not decrypt")
	}
}

func TestE2EImportRotationOperations(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	arn := e.keyARN(id)
	originMsg := arn + " origin is EXTERNAL which is not valid for this operation."
	check := func(t *testing.T, rotateCode, rotateMsg string) {
		t.Helper()
		_, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "UnsupportedOperationException", originMsg)
		expectTyped[*types.UnsupportedOperationException](t, err)
		_, err = e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)})
		expectAPIError(t, err, "UnsupportedOperationException", originMsg)
		_, err = e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "UnsupportedOperationException", originMsg)
		_, err = e.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "UnsupportedOperationException", originMsg)
		_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
		expectAPIError(t, err, rotateCode, rotateMsg)
	}
	t.Run("pending import", func(t *testing.T) {
		check(t, "KMSInvalidStateException", arn+" is pending import.")
	})
	materialID := aws.ToString(e.importMaterial(t, id, mustRandom(t, 32), nil).KeyMaterialId)
	t.Run("imported", func(t *testing.T) {
		check(t, "KMSInvalidStateException", "No available key material pending rotation for the key: "+arn+".")
		e.clock.Advance(3 * 365 * day)
		e.maintain(t)
		e.expectImported(t, id, materialID, notExpiring, nil)
		if r := e.rotations(t, id, ""); len(r) != 0 {
			t.Errorf("an imported key rotated: %+v", r)
		}
	})
}

// Imported material, and import tokens, survive a restart.
func TestE2EImportSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	material := mustRandom(t, 32)
	validTo := e.clock.Now().Add(2 * time.Hour)
	materialID := aws.ToString(e.importMaterial(t, id, material, &validTo).KeyMaterialId)
	ec := map[string]string{"restart": "yes"}
	pt := []byte("imported, then restarted")
	blob := e.encrypt(t, id, pt, ec).CiphertextBlob
	pending := e.newExternalKey(t)
	p := e.importParams(t, pending, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048)
	pendingMaterial := mustRandom(t, 32)

	r := e.reopen(t)
	if d := r.decrypt(t, blob, ec); !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyMaterialId) != materialID {
		t.Errorf("Decrypt after restart: plaintext ok %v, KeyMaterialId %s", bytes.Equal(d.Plaintext, pt), aws.ToString(d.KeyMaterialId))
	}
	r.expectImported(t, id, materialID, expiring, &validTo)
	// A token issued before the restart is still good after it.
	out, err := r.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(pending), ImportToken: p.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaAesKeyWrapSha256, p.PublicKey, pendingMaterial),
	})
	if err != nil {
		t.Fatalf("import with a token from before the restart: %v", err)
	}
	r.expectImported(t, pending, aws.ToString(out.KeyMaterialId), notExpiring, nil)
	// The expiry is stored too: the new process deletes the material on time.
	r.clock.Advance(2 * time.Hour)
	r.maintain(t)
	r.expectPendingImport(t, id)
	r.importMaterial(t, id, material, nil)
	if d := r.decrypt(t, blob, ec); !bytes.Equal(d.Plaintext, pt) {
		t.Error("Decrypt after expiry and re-import in the new process failed")
	}
}

// kms:ValidTo holds the ValidTo of the request to the millisecond, as the
// request gives it: a key policy that refuses material valid past an
// instant refuses material valid half a second past it, and allows
// material valid until that instant.
func TestE2EImportValidToConditionToTheMillisecond(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newExternalKey(t)
	limit := e.clock.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	deny := kpDeny(kpRootARN, "kms:ImportKeyMaterial").with(map[string]any{
		"DateGreaterThan": map[string]any{"kms:ValidTo": limit.Format(time.RFC3339)}})
	e.kpPutKeyPolicy(t, e.client, id, kpDoc(kpRootStmt(), deny), false)
	material := mustRandom(t, 32)

	late := limit.Add(500 * time.Millisecond)
	_, err := e.tryImport(t, id, material, &late)
	expectAPIErrorCode(t, err, "AccessDeniedException")
	e.expectPendingImport(t, id)

	e.importMaterial(t, id, material, &limit)
}

// A disabled key whose material expired is PendingImport, whether or not
// the maintenance round has swept the material away yet, and importing
// the material again makes it Enabled either way, as AWS's key states
// have it (deleted or expired material makes any key PendingImport; an
// import makes a PendingImport key Enabled): the answer does not depend on
// when the round ran.
func TestE2EReimportIntoDisabledExpiredKey(t *testing.T) {
	t.Parallel()
	for _, swept := range []bool{false, true} {
		t.Run(map[bool]string{false: "before the sweep", true: "after the sweep"}[swept], func(t *testing.T) {
			e := newKMSEnv(t)
			id := e.newExternalKey(t)
			material := mustRandom(t, 32)
			validTo := e.clock.Now().Add(time.Hour)
			e.importMaterial(t, id, material, &validTo)
			if _, err := e.client.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Hour)
			if swept {
				e.maintain(t)
			}
			e.expectPendingImport(t, id)
			materialID := aws.ToString(e.importMaterial(t, id, material, nil).KeyMaterialId)
			e.expectImported(t, id, materialID, notExpiring, nil)
		})
	}
}
