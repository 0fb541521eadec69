package e2e_test

// ML-KEM keys end to end (FIPS 203): CreateKey, DescribeKey and
// GetPublicKey of ML_KEM_512, ML_KEM_768 and ML_KEM_1024 keys,
// Encapsulate, Decapsulate and ML-KEM data key pairs through the SDK
// against the real server. Every public key and ciphertext is checked by
// implementations other than the server's own use of them: a secret
// encapsulated by the client to the public key alone (the standard
// library's crypto/mlkem, circl for ML-KEM-512) is what Decapsulate
// returns, and a data key pair's private key, read with encoding/asn1,
// decapsulates what its public key encapsulates.

import (
	"bytes"
	"context"
	"crypto/mlkem"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
)

const asKEM = types.KeyUsageTypeEncapsulateDecapsulate

var mlkemCases = []struct {
	spec          types.KeySpec
	oid           asn1.ObjectIdentifier
	publicKeySize int
	ciphertext    int
}{
	{types.KeySpecMlKem512, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 1}, 800, 768},
	{types.KeySpecMlKem768, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 2}, 1184, 1088},
	{types.KeySpecMlKem1024, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 3}, 1568, 1568},
}

// mlkemPublic reads an ML-KEM SubjectPublicKeyInfo of spec: the FIPS 203
// OID, no parameters, the encapsulation key of the spec's size.
func mlkemPublic(t testing.TB, spec types.KeySpec, der []byte) []byte {
	t.Helper()
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) != 0 {
		t.Fatalf("%s public key is not a SubjectPublicKeyInfo: %v", spec, err)
	}
	for _, c := range mlkemCases {
		if c.spec == spec {
			if !spki.Algorithm.Algorithm.Equal(c.oid) || len(spki.Algorithm.Parameters.FullBytes) != 0 ||
				len(spki.PublicKey.Bytes) != c.publicKeySize || spki.PublicKey.BitLength != 8*c.publicKeySize {
				t.Fatalf("%s public key: algorithm %v, parameters %x, %d bytes; want %v, none, %d",
					spec, spki.Algorithm.Algorithm, spki.Algorithm.Parameters.FullBytes, len(spki.PublicKey.Bytes), c.oid, c.publicKeySize)
			}
			return spki.PublicKey.Bytes
		}
	}
	t.Fatalf("not an ML-KEM spec: %s", spec)
	return nil
}

// mlkemEncapsulate encapsulates a fresh secret to an encapsulation key
// with an implementation of the client's: crypto/mlkem, or circl for
// ML-KEM-512, which the standard library does not offer.
func mlkemEncapsulate(t testing.TB, spec types.KeySpec, ek []byte) (shared, ct []byte) {
	t.Helper()
	switch spec {
	case types.KeySpecMlKem768:
		k, err := mlkem.NewEncapsulationKey768(ek)
		if err != nil {
			t.Fatal(err)
		}
		return k.Encapsulate()
	case types.KeySpecMlKem1024:
		k, err := mlkem.NewEncapsulationKey1024(ek)
		if err != nil {
			t.Fatal(err)
		}
		return k.Encapsulate()
	}
	pk, err := mlkem512.Scheme().UnmarshalBinaryPublicKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	ct, shared, err = mlkem512.Scheme().Encapsulate(pk)
	if err != nil {
		t.Fatal(err)
	}
	return shared, ct
}

// mlkemSeed reads the seed of a private key in PKCS#8 seed form: the
// privateKey holds [0] IMPLICIT OCTET STRING of 64 bytes.
func mlkemSeed(t testing.TB, oid asn1.ObjectIdentifier, der []byte) []byte {
	t.Helper()
	var p asPKCS8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 || p.Version != 0 || !p.Algorithm.Algorithm.Equal(oid) {
		t.Fatalf("private key is not PKCS#8 of %v: %v", oid, err)
	}
	var seed asn1.RawValue
	if rest, err := asn1.Unmarshal(p.PrivateKey, &seed); err != nil || len(rest) != 0 ||
		seed.Class != asn1.ClassContextSpecific || seed.Tag != 0 || seed.IsCompound || len(seed.Bytes) != 64 {
		t.Fatalf("privateKey is not the seed form: %x", p.PrivateKey)
	}
	return seed.Bytes
}

// mlkemDecapsulateLocally decapsulates ct with the key of a seed, without
// the server.
func mlkemDecapsulateLocally(t testing.TB, spec types.KeySpec, seed, ct []byte) []byte {
	t.Helper()
	var dk interface{ Decapsulate([]byte) ([]byte, error) }
	var err error
	switch spec {
	case types.KeySpecMlKem768:
		dk, err = mlkem.NewDecapsulationKey768(seed)
	case types.KeySpecMlKem1024:
		dk, err = mlkem.NewDecapsulationKey1024(seed)
	default:
		_, sk := mlkem512.NewKeyFromSeed(seed)
		dk = mlkemCirclKey{sk}
	}
	if err != nil {
		t.Fatal(err)
	}
	ss, err := dk.Decapsulate(ct)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// mlkemCirclKey is circl's ML-KEM-512 private key as crypto/mlkem's
// decapsulation keys are used.
type mlkemCirclKey struct{ sk kem.PrivateKey }

func (k mlkemCirclKey) Decapsulate(ct []byte) ([]byte, error) {
	return k.sk.Scheme().Decapsulate(k.sk, ct)
}

// mlkemPublicOf returns the DER public key of a stored ML-KEM private
// key in PKCS#8 seed form, or nil for any other material.
func mlkemPublicOf(m []byte) []byte {
	seed := asMLKEMSeed(m)
	if seed == nil {
		return nil
	}
	var p asPKCS8
	asn1.Unmarshal(m, &p)
	var ek []byte
	switch p.Algorithm.Algorithm[8] {
	case 1:
		pk, _ := mlkem512.NewKeyFromSeed(seed)
		ek, _ = pk.MarshalBinary()
	case 2:
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil
		}
		ek = dk.EncapsulationKey().Bytes()
	case 3:
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil
		}
		ek = dk.EncapsulationKey().Bytes()
	default:
		return nil
	}
	der, _ := asn1.Marshal(asSPKI{Algorithm: pkix.AlgorithmIdentifier{Algorithm: p.Algorithm.Algorithm}, PublicKey: asn1.BitString{Bytes: ek, BitLength: 8 * len(ek)}})
	return der
}

func TestE2EMLKEMKeys(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	for _, c := range mlkemCases {
		t.Run(string(c.spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, c.spec, asKEM)
			m := e.describe(t, id)
			asCheckMetadata(t, m, c.spec, asKEM, types.OriginTypeAwsKms)
			if fmt.Sprint(m.EncapsulationAlgorithms) != "[ML_KEM]" {
				t.Errorf("EncapsulationAlgorithms %v, want [ML_KEM]", m.EncapsulationAlgorithms)
			}
			pubOut, err := e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			if pubOut.KeyUsage != asKEM || pubOut.KeySpec != c.spec || fmt.Sprint(pubOut.EncapsulationAlgorithms) != "[ML_KEM]" ||
				pubOut.EncryptionAlgorithms != nil || pubOut.SigningAlgorithms != nil || pubOut.KeyAgreementAlgorithms != nil {
				t.Errorf("GetPublicKey: usage %s spec %s encapsulation %v encryption %v signing %v agreement %v",
					pubOut.KeyUsage, pubOut.KeySpec, pubOut.EncapsulationAlgorithms, pubOut.EncryptionAlgorithms, pubOut.SigningAlgorithms, pubOut.KeyAgreementAlgorithms)
			}
			ek := mlkemPublic(t, c.spec, pubOut.PublicKey)

			// A peer with the public key alone encapsulates a secret that
			// the key's holder recovers.
			shared, ct := mlkemEncapsulate(t, c.spec, ek)
			dec, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct,
				EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
			if err != nil {
				t.Fatalf("Decapsulate: %v", err)
			}
			if !bytes.Equal(dec.SharedSecret, shared) || aws.ToString(dec.KeyId) != e.keyARN(id) || dec.EncapsulationAlgorithm != types.EncapsulationAlgorithmSpecMlKem {
				t.Fatalf("Decapsulate: secret %x (want %x), KeyId %s, algorithm %s", dec.SharedSecret, shared, aws.ToString(dec.KeyId), dec.EncapsulationAlgorithm)
			}

			// Encapsulate, by alias too: a fresh secret each call, which
			// Decapsulate recovers.
			alias := "alias/kem-" + strings.ToLower(string(c.spec))
			e.createAlias(t, alias, id)
			var secrets [][]byte
			for _, keyID := range []string{id, alias, e.keyARN(id)} {
				enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(keyID), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
				if err != nil {
					t.Fatalf("Encapsulate %s: %v", keyID, err)
				}
				if len(enc.SharedSecret) != 32 || len(enc.SharedSecretCiphertextBlob) != c.ciphertext || aws.ToString(enc.KeyId) != e.keyARN(id) ||
					enc.EncapsulationAlgorithm != types.EncapsulationAlgorithmSpecMlKem {
					t.Fatalf("Encapsulate: %d-byte secret, %d-byte ciphertext (want 32, %d), KeyId %s, algorithm %s",
						len(enc.SharedSecret), len(enc.SharedSecretCiphertextBlob), c.ciphertext, aws.ToString(enc.KeyId), enc.EncapsulationAlgorithm)
				}
				for _, s := range secrets {
					if bytes.Equal(s, enc.SharedSecret) {
						t.Fatal("Encapsulate returned the same secret twice")
					}
				}
				secrets = append(secrets, enc.SharedSecret)
				dec, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(keyID), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob,
					EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
				if err != nil || !bytes.Equal(dec.SharedSecret, enc.SharedSecret) {
					t.Fatalf("Decapsulate of Encapsulate's ciphertext: %v", err)
				}
			}

			// Implicit rejection: an altered ciphertext gives 32 other
			// bytes, not an error; one of the wrong length is refused.
			bad := bytes.Clone(ct)
			bad[10] ^= 0x80
			out, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: bad, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
			if err != nil || len(out.SharedSecret) != 32 || bytes.Equal(out.SharedSecret, shared) {
				t.Fatalf("altered ciphertext: %v, %x", err, out)
			}
			for _, n := range []int{1, c.ciphertext - 1, c.ciphertext + 1, 6144} {
				_, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: make([]byte, n), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
				expectAPIErrorCode(t, err, "InvalidCiphertextException")
				expectTyped[*types.InvalidCiphertextException](t, err)
			}
		})
	}

	t.Run("another key", func(t *testing.T) {
		t.Parallel()
		a := e.asCreate(t, types.KeySpecMlKem768, asKEM)
		b := e.asCreate(t, types.KeySpecMlKem768, asKEM)
		enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(a), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(b), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		if err != nil || bytes.Equal(out.SharedSecret, enc.SharedSecret) {
			t.Fatalf("another key's Decapsulate: %v (same secret: %v)", err, err == nil && bytes.Equal(out.SharedSecret, enc.SharedSecret))
		}
		// A ciphertext of ML-KEM-1024's size is the wrong length for a
		// 768 key.
		c := e.asCreate(t, types.KeySpecMlKem1024, asKEM)
		enc1024, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(c), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(a), SharedSecretCiphertextBlob: enc1024.SharedSecretCiphertextBlob, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
	})
}

func TestE2EMLKEMErrors(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	before := len(e.listAllKeys(t))
	for _, c := range []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecMlKem512, asEncrypt}, {types.KeySpecMlKem768, asSignVerify}, {types.KeySpecMlKem1024, asAgreement},
		{types.KeySpecMlKem768, asMAC}, {types.KeySpecSymmetricDefault, asKEM}, {types.KeySpecRsa2048, asKEM},
		{types.KeySpecEccNistP256, asKEM}, {types.KeySpecMlDsa65, asKEM}, {types.KeySpecHmac256, asKEM},
	} {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: c.usage})
		expectAPIError(t, err, "ValidationException", fmt.Sprintf("KeyUsage %s is not compatible with KeySpec %s", c.usage, c.spec))
	}
	for _, c := range mlkemCases {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec})
		expectAPIError(t, err, "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
	}
	if after := len(e.listAllKeys(t)); after != before {
		t.Errorf("refused CreateKey calls changed the number of keys from %d to %d", before, after)
	}

	id := e.asCreate(t, types.KeySpecMlKem768, asKEM)
	arn := e.keyARN(id)
	enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	if err != nil {
		t.Fatal(err)
	}
	ct := enc.SharedSecretCiphertextBlob

	// Validation: the algorithm is required and ML_KEM only; the
	// ciphertext is required and 1..6144 bytes.
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: "RSAES_OAEP_SHA_256"})
	expectAPIError(t, err, "ValidationException", "1 validation error detected: Value 'RSAES_OAEP_SHA_256' at 'encapsulationAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ML_KEM]")
	e.asRawError(t, "Encapsulate", map[string]any{"KeyId": id}, "ValidationException",
		"1 validation error detected: Value null at 'encapsulationAlgorithm' failed to satisfy constraint: Member must not be null")
	e.asRawError(t, "Decapsulate", map[string]any{"KeyId": id, "EncapsulationAlgorithm": "ML_KEM"}, "ValidationException",
		"1 validation error detected: Value null at 'sharedSecretCiphertextBlob' failed to satisfy constraint: Member must not be null")
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: make([]byte, 6145), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'sharedSecretCiphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144")

	// Keys of other usages refuse both operations; an ML-KEM key refuses
	// every other cryptographic operation.
	for _, c := range []struct {
		id, usage string
	}{
		{e.newKey(t), "ENCRYPT_DECRYPT"},
		{e.asCreate(t, types.KeySpecEccNistP256, asAgreement), "KEY_AGREEMENT"},
		{e.asCreate(t, types.KeySpecMlDsa44, asSignVerify), "SIGN_VERIFY"},
	} {
		_, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(c.id), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for Encapsulate.")
		_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(c.id), SharedSecretCiphertextBlob: ct, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
		expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for Decapsulate.")
	}
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("p"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCAPSULATE_DECAPSULATE which is not valid for Encrypt.")
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
	expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCAPSULATE_DECAPSULATE which is not valid for Sign.")
	_, err = e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "UnsupportedOperationException")

	// Dry runs: where the call would succeed, and where it would not.
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem, DryRun: aws.Bool(true)})
	expectAPIErrorCode(t, err, "DryRunOperationException")
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem, DryRun: aws.Bool(true)})
	expectAPIErrorCode(t, err, "DryRunOperationException")
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct[1:], EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem, DryRun: aws.Bool(true)})
	expectAPIErrorCode(t, err, "InvalidCiphertextException")

	// Importing material into an ML-KEM key is refused here.
	ext := e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecMlKem512, KeyUsage: asKEM, Origin: types.OriginTypeExternal})
	if ext.KeyState != types.KeyStatePendingImport {
		t.Errorf("EXTERNAL ML-KEM key in state %s, want PendingImport", ext.KeyState)
	}
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: ext.KeyId, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	expectAPIErrorCode(t, err, "KMSInvalidStateException")

	// A disabled key, then one pending deletion.
	e.disable(t, id)
	_, err = e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	e.scheduleDeletion(t, id, 7)
	_, err = e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: ct, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	expectAPIErrorCode(t, err, "KMSInvalidStateException")
}

// Encapsulate and Decapsulate are separate permissions: a principal the
// key policy lets encapsulate may not decapsulate, and a grant of
// Decapsulate lets its grantee recover secrets, only on an ML-KEM key.
func TestE2EMLKEMPermissions(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	sender := e.kpUser(t, "sender", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encapsulate","kms:GetPublicKey"],"Resource":"*"}]}`)
	holder := e.kpUser(t, "holder", "")
	id := e.asCreate(t, types.KeySpecMlKem1024, asKEM)
	arn := e.keyARN(id)

	enc, err := sender.kms.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(arn), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	if err != nil {
		t.Fatalf("Encapsulate as a principal allowed it: %v", err)
	}
	_, err = sender.kms.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	kpDenied(t, err, sender.arn, "kms:Decapsulate", arn, kpNoIdentity("kms:Decapsulate"))
	_, err = holder.kms.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob, EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	kpDenied(t, err, holder.arn, "kms:Decapsulate", arn, kpNoIdentity("kms:Decapsulate"))

	_, token := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(holder.arn),
		Operations: grOps(types.GrantOperationDecapsulate)})
	dec, err := holder.kms.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(arn), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob,
		EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem, GrantTokens: []string{token}})
	if err != nil || !bytes.Equal(dec.SharedSecret, enc.SharedSecret) {
		t.Fatalf("grantee's Decapsulate: %v", err)
	}
	_, err = holder.kms.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(arn), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	kpDenied(t, err, holder.arn, "kms:Encapsulate", arn, kpNoIdentity("kms:Encapsulate"))

	// Operations of other usages cannot be granted on it, nor these on
	// keys of other usages.
	for _, op := range []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationSign, types.GrantOperationDeriveSharedSecret,
		types.GrantOperationGenerateMac, types.GrantOperationGenerateDataKeyPair} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(holder.arn),
			Operations: grOps(types.GrantOperationDecapsulate, op)})
		expectAPIErrorCode(t, err, "ValidationException")
	}
	for _, other := range []string{e.newKey(t), e.asCreate(t, types.KeySpecEccNistP256, asAgreement)} {
		for _, op := range []types.GrantOperation{types.GrantOperationEncapsulate, types.GrantOperationDecapsulate} {
			_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(other), GranteePrincipal: aws.String(holder.arn), Operations: grOps(op)})
			expectAPIErrorCode(t, err, "ValidationException")
		}
	}

	// GetKeyLastUsage names the last of them.
	lu, err := e.client.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(id)})
	if err != nil || lu.KeyLastUsage == nil || lu.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationDecapsulate {
		t.Errorf("GetKeyLastUsage: %v, %+v", err, lu)
	}
}

// An ML-KEM data key pair: the private key in PKCS#8 seed form (86 bytes
// for every spec), the public key its SubjectPublicKeyInfo, and the
// private key encrypted under a symmetric key, which Decrypt returns.
func TestE2EMLKEMDataKeyPairs(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	wrapper := e.newKey(t)
	ec := map[string]string{"purpose": "ml-kem"}
	for _, c := range mlkemCases {
		t.Run(string(c.spec), func(t *testing.T) {
			spec := types.DataKeyPairSpec(c.spec)
			out, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(wrapper), KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPair: %v", err)
			}
			if out.KeyPairSpec != spec || len(out.PrivateKeyPlaintext) != 86 {
				t.Fatalf("KeyPairSpec %s, private key of %d bytes; want %s, 86", out.KeyPairSpec, len(out.PrivateKeyPlaintext), spec)
			}
			seed := mlkemSeed(t, c.oid, out.PrivateKeyPlaintext)
			ek := mlkemPublic(t, c.spec, out.PublicKey)
			shared, ct := mlkemEncapsulate(t, c.spec, ek)
			if got := mlkemDecapsulateLocally(t, c.spec, seed, ct); !bytes.Equal(got, shared) {
				t.Fatal("the private key does not decapsulate what its public key encapsulates")
			}
			dec := e.decrypt(t, out.PrivateKeyCiphertextBlob, ec)
			if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
				t.Fatal("PrivateKeyCiphertextBlob decrypts to another private key")
			}
			wo, err := e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(wrapper), KeyPairSpec: spec})
			if err != nil {
				t.Fatal(err)
			}
			priv := e.decrypt(t, wo.PrivateKeyCiphertextBlob, nil).Plaintext
			shared, ct = mlkemEncapsulate(t, c.spec, mlkemPublic(t, c.spec, wo.PublicKey))
			if got := mlkemDecapsulateLocally(t, c.spec, mlkemSeed(t, c.oid, priv), ct); !bytes.Equal(got, shared) {
				t.Fatal("WithoutPlaintext: the encrypted private key is not the public key's")
			}
		})
	}
}

// The audit trail records Encapsulate and Decapsulate with their
// algorithm, and no shared secret or ciphertext.
func TestE2EMLKEMAudit(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	id := e.asCreate(t, types.KeySpecMlKem512, asKEM)
	enc, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(id), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Decapsulate(ctx, &kms.DecapsulateInput{KeyId: aws.String(id), SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob,
		EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem}); err != nil {
		t.Fatal(err)
	}
	recs, raw := auditRecords(t, logPath)
	for _, op := range []string{"Encapsulate", "Decapsulate"} {
		var found bool
		for _, r := range recs {
			if r.EventName != op {
				continue
			}
			found = true
			var params map[string]any
			if err := json.Unmarshal(r.RequestParameters, &params); err != nil {
				t.Fatal(err)
			}
			if params["keyId"] != id || params["encapsulationAlgorithm"] != "ML_KEM" || len(params) != 2 {
				t.Errorf("%s requestParameters %s, want keyId and encapsulationAlgorithm alone", op, r.RequestParameters)
			}
			if len(r.Resources) != 1 || r.Resources[0].ARN != e.keyARN(id) {
				t.Errorf("%s resources %+v", op, r.Resources)
			}
			if !r.ReadOnly || string(r.ResponseElements) != "null" {
				t.Errorf("%s readOnly %v, responseElements %s; want true, null (as CloudTrail records it)", op, r.ReadOnly, r.ResponseElements)
			}
		}
		if !found {
			t.Errorf("no %s record", op)
		}
	}
	for _, line := range raw {
		for _, secret := range [][]byte{enc.SharedSecret, enc.SharedSecretCiphertextBlob[:30]} {
			if bytes.Contains(line, []byte(b64(secret))) || bytes.Contains(line, secret) {
				t.Fatalf("the trail holds a secret or ciphertext: %s", line)
			}
		}
	}
}
