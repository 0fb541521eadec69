package e2e_test

// HMAC KMS keys end to end (reference §3.2, §3.3, §4.8, §4.11, §4.12):
// GenerateMac and VerifyMac for the four HMAC key specs through the SDK
// against the real server, with MACs of imported material held against
// crypto/hmac and openssl. Helpers here are prefixed "hm"; the "as"
// helpers are in e2e_asymmetric_test.go.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// hmSpecs is reference §3.2 and §3.3 for HMAC keys: each spec's one MAC
// algorithm, its hash and the size of its MACs and imported material.
var hmSpecs = []struct {
	spec   types.KeySpec
	alg    types.MacAlgorithmSpec
	size   int
	hash   func() hash.Hash
	digest string // openssl's name
}{
	{types.KeySpecHmac224, types.MacAlgorithmSpecHmacSha224, 28, sha256.New224, "sha224"},
	{types.KeySpecHmac256, types.MacAlgorithmSpecHmacSha256, 32, sha256.New, "sha256"},
	{types.KeySpecHmac384, types.MacAlgorithmSpecHmacSha384, 48, sha512.New384, "sha384"},
	{types.KeySpecHmac512, types.MacAlgorithmSpecHmacSha512, 64, sha512.New, "sha512"},
}

// hmMac calls GenerateMac and checks the response but the MAC, which it
// returns.
func (e *kmsEnv) hmMac(t testing.TB, id string, alg types.MacAlgorithmSpec, msg []byte) []byte {
	t.Helper()
	out, err := e.client.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: msg})
	if err != nil {
		t.Fatalf("GenerateMac %s: %v", alg, err)
	}
	if aws.ToString(out.KeyId) != e.keyARN(id) || out.MacAlgorithm != alg {
		t.Errorf("GenerateMac KeyId %s MacAlgorithm %s, want %s %s", aws.ToString(out.KeyId), out.MacAlgorithm, e.keyARN(id), alg)
	}
	return out.Mac
}

func (e *kmsEnv) hmVerify(id string, alg types.MacAlgorithmSpec, msg, mac []byte) (*kms.VerifyMacOutput, error) {
	return e.client.VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: msg, Mac: mac})
}

// hmVerifyOK checks that VerifyMac accepts a MAC.
func (e *kmsEnv) hmVerifyOK(t testing.TB, id string, alg types.MacAlgorithmSpec, msg, mac []byte) {
	t.Helper()
	out, err := e.hmVerify(id, alg, msg, mac)
	if err != nil {
		t.Errorf("VerifyMac %s of a good MAC: %v", alg, err)
		return
	}
	if !out.MacValid || aws.ToString(out.KeyId) != e.keyARN(id) || out.MacAlgorithm != alg {
		t.Errorf("VerifyMac MacValid %v KeyId %s MacAlgorithm %s", out.MacValid, aws.ToString(out.KeyId), out.MacAlgorithm)
	}
}

// hmInvalid checks VerifyMac refusing a MAC: KMSInvalidMacException with no
// message, never MacValid false.
func (e *kmsEnv) hmInvalid(t testing.TB, id string, alg types.MacAlgorithmSpec, msg, mac []byte) {
	t.Helper()
	out, err := e.hmVerify(id, alg, msg, mac)
	if err == nil {
		t.Errorf("VerifyMac of a bad MAC succeeded with MacValid %v", out.MacValid)
		return
	}
	expectAPIError(t, err, "KMSInvalidMacException", "")
	expectTyped[*types.KMSInvalidMacException](t, err)
}

// hmLocal is RFC 2104 HMAC with crypto/hmac.
func hmLocal(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// hmOpenSSL is the HMAC that openssl dgst computes.
func hmOpenSSL(t testing.TB, openssl, dir, digest string, key, msg []byte) []byte {
	t.Helper()
	return asRun(t, openssl, "dgst", "-"+digest, "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(key), "-binary", asTemp(t, dir, "msg-*", msg))
}

func TestE2EHmacKeys(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	for i, s := range hmSpecs {
		t.Run(string(s.spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, s.spec, asMAC)
			arn := e.keyARN(id)
			asCheckMetadata(t, e.describe(t, id), s.spec, asMAC, types.OriginTypeAwsKms)

			for _, msg := range [][]byte{[]byte("m"), []byte("an HMAC message"), bytes.Repeat([]byte{0xff}, 4096)} {
				mac := e.hmMac(t, id, s.alg, msg)
				if len(mac) != s.size {
					t.Errorf("%s MAC is %d bytes, want %d", s.alg, len(mac), s.size)
				}
				if again := e.hmMac(t, id, s.alg, msg); !bytes.Equal(again, mac) {
					t.Errorf("%s: two MACs of one message differ", s.alg)
				}
				e.hmVerifyOK(t, id, s.alg, msg, mac)
				e.hmInvalid(t, id, s.alg, flipLastBit(msg), mac)
				e.hmInvalid(t, id, s.alg, msg, flipLastBit(mac))
				e.hmInvalid(t, id, s.alg, msg, mac[:len(mac)-1])
				e.hmInvalid(t, id, s.alg, msg, append(bytes.Clone(mac), 0))
			}
			e.asRawError(t, "VerifyMac", map[string]any{"KeyId": id, "MacAlgorithm": s.alg, "Message": []byte("m"), "Mac": make([]byte, s.size)},
				"KMSInvalidMacException", "-")

			// Another spec's algorithm.
			other := hmSpecs[(i+1)%len(hmSpecs)].alg
			want := fmt.Sprintf("Algorithm %s is incompatible with key spec %s.", other, s.spec)
			_, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: other, Message: []byte("m")})
			expectAPIError(t, err, "InvalidKeyUsageException", want)
			expectTyped[*types.InvalidKeyUsageException](t, err)
			_, err = e.hmVerify(id, other, []byte("m"), make([]byte, s.size))
			expectAPIError(t, err, "InvalidKeyUsageException", want)

			// An HMAC key is for GenerateMac and VerifyMac only.
			_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("p")})
			expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.")
			_, err = e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(32)})
			expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKey.")
			_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
			expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is GENERATE_VERIFY_MAC which is not valid for Sign.")
			_, err = e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
			expectAPIErrorCode(t, err, "UnsupportedOperationException")
		})
	}

	t.Run("rules", func(t *testing.T) {
		t.Parallel()
		id := e.asCreate(t, types.KeySpecHmac256, asMAC)
		arn := e.keyARN(id)
		alg := types.MacAlgorithmSpecHmacSha256
		mac := e.hmMac(t, id, alg, []byte("m"))

		// VerifyMac with HMAC_SHA_512 on an HMAC_256 key (reference §4.8).
		_, err := e.hmVerify(id, types.MacAlgorithmSpecHmacSha512, []byte("m"), mac)
		expectAPIError(t, err, "InvalidKeyUsageException", "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.")
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: "INVALID", Message: []byte("m")})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]")
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("key_id"), MacAlgorithm: alg, Message: []byte("m")})
		expectAPIError(t, err, "NotFoundException", "Invalid keyId 'key_id'")
		_, err = e.hmVerify("key_id", alg, []byte("m"), mac)
		expectAPIError(t, err, "NotFoundException", "Invalid keyId 'key_id'")

		// Message 1 to 4096 bytes.
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: make([]byte, 4097)})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096")
		_, err = e.hmVerify(id, alg, make([]byte, 4097), mac)
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096")
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte{}})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1")

		// Other usages' keys refuse GenerateMac.
		for _, c := range []struct{ id, usage string }{
			{e.newKey(t), "ENCRYPT_DECRYPT"},
			{e.asCreate(t, types.KeySpecEccNistP256, asSignVerify), "SIGN_VERIFY"},
		} {
			_, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(c.id), MacAlgorithm: alg, Message: []byte("m")})
			expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for GenerateMac.")
			_, err = e.hmVerify(c.id, alg, []byte("m"), mac)
			expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for VerifyMac.")
		}
		// Decrypt naming the HMAC key of another key's ciphertext
		// (reference §4.6).
		blob := e.encrypt(t, e.newKey(t), []byte("p"), nil).CiphertextBlob
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: blob})
		expectAPIError(t, err, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")

		// Aliases, DryRun, disabled.
		e.createAlias(t, "alias/mac", id)
		for _, ref := range []string{"alias/mac", e.aliasARN("alias/mac"), arn} {
			out, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(ref), MacAlgorithm: alg, Message: []byte("m")})
			if err != nil || !bytes.Equal(out.Mac, mac) || aws.ToString(out.KeyId) != arn {
				t.Errorf("GenerateMac through %s: %v", ref, err)
			}
		}
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte("m"), DryRun: aws.Bool(true)})
		expectAPIError(t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
		e.disable(t, id)
		_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte("m")})
		expectAPIError(t, err, "DisabledException", arn+" is disabled.")
		_, err = e.hmVerify(id, alg, []byte("m"), mac)
		expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	})
}

// HMAC keys with imported material compute the RFC 2104 HMAC of that
// material, as crypto/hmac and openssl do.
func TestE2EHmacImportedMaterial(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	for _, s := range hmSpecs {
		t.Run(string(s.spec), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			id := e.asCreateExternal(t, s.spec, asMAC)
			e.expectPendingImport(t, id)
			_, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: s.alg, Message: []byte("m")})
			expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending import.")

			// Material shorter than the hash is refused.
			for _, n := range []int{16, s.size - 1} {
				_, err := e.tryImport(t, id, mustRandom(t, n), nil)
				expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
				expectTyped[*types.IncorrectKeyMaterialException](t, err)
			}
			e.expectPendingImport(t, id)

			material := mustRandom(t, s.size)
			out := e.importMaterial(t, id, material, nil) // RSAES_OAEP_SHA_256 under an RSA_2048 wrapping key
			if aws.ToString(out.KeyId) != e.keyARN(id) || !hex64RE.MatchString(aws.ToString(out.KeyMaterialId)) {
				t.Errorf("ImportKeyMaterial KeyId %s KeyMaterialId %q", aws.ToString(out.KeyId), aws.ToString(out.KeyMaterialId))
			}
			m := e.describe(t, id)
			if m.KeySpec != s.spec || m.KeyState != types.KeyStateEnabled || !m.Enabled || m.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
				t.Errorf("after import: KeySpec %s KeyState %s Enabled %v ExpirationModel %s", m.KeySpec, m.KeyState, m.Enabled, m.ExpirationModel)
			}
			asCheckAlgorithms(t, m, s.spec, asMAC)

			for _, msg := range [][]byte{[]byte("a message MACed with imported material"), bytes.Repeat([]byte{1}, 4096)} {
				mac := e.hmMac(t, id, s.alg, msg)
				if want := hmLocal(s.hash, material, msg); !bytes.Equal(mac, want) {
					t.Errorf("%s: GenerateMac %x, crypto/hmac computes %x", s.alg, mac, want)
				}
				if want := hmOpenSSL(t, openssl, dir, s.digest, material, msg); !bytes.Equal(mac, want) {
					t.Errorf("%s: GenerateMac %x, openssl computes %x", s.alg, mac, want)
				}
				e.hmVerifyOK(t, id, s.alg, msg, hmLocal(s.hash, material, msg))
				e.hmInvalid(t, id, s.alg, msg, hmLocal(s.hash, flipLastBit(material), msg))
			}

			// Only the same material can come back.
			_, err = e.tryImport(t, id, mustRandom(t, s.size), nil)
			expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
			if _, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}
			_, err = e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: s.alg, Message: []byte("m")})
			expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending import.")
			e.importMaterial(t, id, material, nil)
			if mac := e.hmMac(t, id, s.alg, []byte("m")); !bytes.Equal(mac, hmLocal(s.hash, material, []byte("m"))) {
				t.Errorf("after re-import the MAC is not the material's")
			}
		})
	}
}

// Only symmetric encryption keys rotate (reference §4.11).
func TestE2EHmacRotationUnsupported(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	for _, s := range hmSpecs {
		id := e.asCreate(t, s.spec, asMAC)
		_, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		_, err = e.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		_, err = e.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		_, err = e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		_, err = e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "UnsupportedOperationException", "")
		e.asRawError(t, "RotateKeyOnDemand", map[string]any{"KeyId": id}, "UnsupportedOperationException", "-")
	}
}

// Grants on an HMAC key allow GenerateMac and VerifyMac, and nothing of
// other usages.
func TestE2EHmacGrants(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	id := e.asCreate(t, types.KeySpecHmac384, asMAC)
	arn := e.keyARN(id)
	alg := types.MacAlgorithmSpecHmacSha384
	_, err := gina.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte("m")})
	kpDenied(t, err, gina.arn, "kms:GenerateMac", arn, kpNoIdentity("kms:GenerateMac"))
	_, token := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationGenerateMac, types.GrantOperationVerifyMac)})
	out, err := gina.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte("m"), GrantTokens: []string{token}})
	if err != nil {
		t.Fatalf("grantee GenerateMac: %v", err)
	}
	if !bytes.Equal(out.Mac, e.hmMac(t, id, alg, []byte("m"))) {
		t.Errorf("grantee's MAC differs from the owner's")
	}
	if v, err := gina.kms.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: []byte("m"), Mac: out.Mac}); err != nil || !v.MacValid {
		t.Errorf("grantee VerifyMac: %v", err)
	}
	for _, op := range []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationSign, types.GrantOperationGetPublicKey,
		types.GrantOperationGenerateDataKey, types.GrantOperationDeriveSharedSecret} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(gina.arn), Operations: grOps(op)})
		expectAPIErrorCode(t, err, "ValidationException")
	}
}
