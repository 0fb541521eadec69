package service_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
)

func TestEncryptDecryptRoundTrip(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/data", TargetKeyID: id}))
	ec := map[string]string{"purpose": "test", "Tenant": "t1"}
	material := f.describe(id).CurrentKeyMaterialID
	for _, ident := range []string{id, arn, "alias/data", "arn:aws:kms:us-east-1:111122223333:alias/data"} {
		enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: ident, Plaintext: []byte("secret"), EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Encrypt(%s): %v", ident, err)
		}
		if enc.KeyID != arn || enc.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" || bytes.Contains(enc.CiphertextBlob, []byte("secret")) {
			t.Fatalf("Encrypt(%s) = %+v", ident, enc)
		}
		// Without a KeyId, and with each form of it.
		for _, keyID := range []string{"", ident} {
			dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyID: keyID})
			if err != nil {
				t.Fatalf("Decrypt(KeyId %q): %v", keyID, err)
			}
			want := kmsapi.DecryptOutput{KeyID: arn, Plaintext: []byte("secret"), EncryptionAlgorithm: "SYMMETRIC_DEFAULT", KeyMaterialID: material}
			if dec.KeyID != want.KeyID || !bytes.Equal(dec.Plaintext, want.Plaintext) || dec.EncryptionAlgorithm != want.EncryptionAlgorithm || dec.KeyMaterialID != want.KeyMaterialID {
				t.Fatalf("Decrypt = %+v, want %+v", dec, want)
			}
		}
	}
}

func TestDecryptRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	other := f.createKey(kmsapi.CreateKeyInput{})
	ec := map[string]string{"purpose": "test"}
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	blob := enc.CiphertextBlob
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		in   kmsapi.DecryptInput
		code fault.Code
		msg  string
	}{
		{"no context", kmsapi.DecryptInput{CiphertextBlob: blob}, fault.InvalidCiphertext, ""},
		{"context of another case", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"Purpose": "test"}}, fault.InvalidCiphertext, ""},
		{"context with another value", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"purpose": "Test"}}, fault.InvalidCiphertext, ""},
		{"a bit flipped", kmsapi.DecryptInput{CiphertextBlob: flipped, EncryptionContext: ec}, fault.InvalidCiphertext, ""},
		{"bytes appended", kmsapi.DecryptInput{CiphertextBlob: append(bytes.Clone(blob), "bad_data"...), EncryptionContext: ec}, fault.InvalidCiphertext, ""},
		{"header cut", kmsapi.DecryptInput{CiphertextBlob: blob[4:], EncryptionContext: ec}, fault.InvalidCiphertext, ""},
		{"garbage", kmsapi.DecryptInput{CiphertextBlob: []byte("garbage")}, fault.InvalidCiphertext, ""},
		{"another key named", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyID: other}, fault.IncorrectKey,
			"The key ID in the request does not identify a CMK that can perform this operation."},
		{"key that does not exist named", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyID: "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"}, fault.AccessDenied,
			"The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."},
		{"unknown key named", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, KeyID: "alias/none"}, fault.NotFound,
			"Alias arn:aws:kms:us-east-1:111122223333:alias/none is not found."},
		{"asymmetric algorithm for a symmetric key", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"},
			fault.InvalidKeyUsage, "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT."},
		{"no blob", kmsapi.DecryptInput{}, fault.Validation,
			"1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"},
		{"blob too long", kmsapi.DecryptInput{CiphertextBlob: make([]byte, 6145)}, fault.Validation,
			"1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144"},
		{"empty context key", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"": "x"}}, fault.Validation,
			"1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Map keys must have length greater than or equal to 1"},
		{"algorithm not in the enum", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionAlgorithm: "AES"}, fault.Validation,
			"1 validation error detected: Value 'AES' at 'encryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"},
		{"recipient", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, Recipient: &kmsapi.RecipientInfo{KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256"}},
			fault.UnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this server."},
		{"malformed grant token", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, GrantTokens: []string{"not-a-token"}},
			fault.InvalidGrantToken, "The grant token is not valid."},
		{"dry run", kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Decrypt(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// Another account cannot decrypt: the blob names no key of its own,
	// and the answer names neither the key nor its account.
	_, err = f.svc.Decrypt(f.ctx, accountRoot(acctB), &kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	wantErr(t, err, fault.AccessDenied, ciphertextKeyMsg)
	// Nor does one whose header names no key at all: the two read alike.
	noKey := slices.Clone(blob)
	unknown := keys.NewID()
	copy(noKey[1:17], unknown[:])
	_, err = f.svc.Decrypt(f.ctx, accountRoot(acctB), &kmsapi.DecryptInput{CiphertextBlob: noKey, EncryptionContext: ec})
	wantErr(t, err, fault.AccessDenied, ciphertextKeyMsg)
	// Naming a key it may not use, it learns nothing of the key (its type,
	// or whether the blob is under it) beyond AccessDeniedException.
	rsa := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	bOut, err := f.svc.Encrypt(f.ctx, accountRoot(acctB), &kmsapi.EncryptInput{
		KeyID: f.createKeyAs(accountRoot(acctB), kmsapi.CreateKeyInput{}), Plaintext: []byte("b")})
	f.must(err)
	otherBlob := bOut.CiphertextBlob
	for name, in := range map[string]kmsapi.DecryptInput{
		"symmetric key, junk blob":      {CiphertextBlob: []byte("garbagegarbagegarbage"), KeyID: keyARN(acctA, id)},
		"asymmetric key, junk blob":     {CiphertextBlob: []byte("garbagegarbagegarbage"), KeyID: keyARN(acctA, rsa), EncryptionAlgorithm: "RSAES_OAEP_SHA_256"},
		"symmetric key, its own blob":   {CiphertextBlob: otherBlob, KeyID: keyARN(acctA, id)},
		"symmetric key, the right blob": {CiphertextBlob: blob, EncryptionContext: ec, KeyID: keyARN(acctA, id)},
	} {
		_, err := f.svc.Decrypt(f.ctx, accountRoot(acctB), &in)
		if fault.CodeOf(err) != fault.AccessDenied {
			t.Errorf("another account, %s: %v, want AccessDeniedException", name, err)
		}
	}
	// After the key's deletion date its ciphertexts are unreadable: the
	// key is gone, as one that never was.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)}))
	f.advance(7 * day)
	_, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	wantErr(t, err, fault.AccessDenied, ciphertextKeyMsg)
}

func TestEncryptRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	signing := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	for _, tc := range []struct {
		name string
		in   kmsapi.EncryptInput
		code fault.Code
		msg  string
	}{
		{"no plaintext", kmsapi.EncryptInput{KeyID: id}, fault.Validation,
			"1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null"},
		{"signing key", kmsapi.EncryptInput{KeyID: signing, Plaintext: []byte("p")}, fault.InvalidKeyUsage,
			keyARN(acctA, signing) + " key usage is SIGN_VERIFY which is not valid for Encrypt."},
		{"RSA algorithm for a symmetric key", kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p"), EncryptionAlgorithm: "RSAES_OAEP_SHA_1"}, fault.InvalidKeyUsage,
			"Algorithm RSAES_OAEP_SHA_1 is incompatible with key spec SYMMETRIC_DEFAULT."},
		{"eleven grant tokens", kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p"), GrantTokens: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, fault.Validation,
			"1 validation error detected: Value '[a, b, c, d, e, f, g, h, i, j, k]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"},
		{"dry run", kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p"), DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Encrypt(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
}

func TestReEncrypt(t *testing.T) {
	f := newFixture(t)
	src := f.createKey(kmsapi.CreateKeyInput{})
	dst := f.createKey(kmsapi.CreateKeyInput{})
	signing := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/dst", TargetKeyID: dst}))
	srcEC := map[string]string{"a": "1"}
	dstEC := map[string]string{"b": "2"}
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: src, Plaintext: []byte("moving"), EncryptionContext: srcEC})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC,
		DestinationKeyID: "alias/dst", DestinationEncryptionContext: dstEC})
	if err != nil {
		t.Fatal(err)
	}
	if out.SourceKeyID != keyARN(acctA, src) || out.KeyID != keyARN(acctA, dst) || out.SourceEncryptionAlgorithm != "SYMMETRIC_DEFAULT" ||
		out.DestinationEncryptionAlgorithm != "SYMMETRIC_DEFAULT" || out.SourceKeyMaterialID != f.describe(src).CurrentKeyMaterialID ||
		out.DestinationKeyMaterialID != f.describe(dst).CurrentKeyMaterialID {
		t.Fatalf("ReEncrypt = %+v", out)
	}
	dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstEC})
	if err != nil || string(dec.Plaintext) != "moving" || dec.KeyID != keyARN(acctA, dst) {
		t.Fatalf("Decrypt of the re-encrypted blob: %+v, %v", dec, err)
	}
	_, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: srcEC})
	wantErr(t, err, fault.InvalidCiphertext, "")

	for _, tc := range []struct {
		name string
		in   kmsapi.ReEncryptInput
		code fault.Code
		msg  string
	}{
		{"wrong source key", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, SourceKeyID: dst, DestinationKeyID: dst},
			fault.IncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation."},
		{"wrong source context", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyID: dst}, fault.InvalidCiphertext, ""},
		{"signing destination", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: signing},
			fault.InvalidKeyUsage, keyARN(acctA, signing) + " key usage is SIGN_VERIFY which is not valid for ReEncrypt."},
		{"unknown destination", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: "alias/none"},
			fault.NotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/none is not found."},
		{"no destination", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob}, fault.Validation,
			"1 validation error detected: Value null at 'destinationKeyId' failed to satisfy constraint: Member must not be null"},
		{"destination algorithm", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: dst, DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1"},
			fault.InvalidKeyUsage, "Algorithm RSAES_OAEP_SHA_1 is incompatible with key spec SYMMETRIC_DEFAULT."},
		{"dry run", kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: dst, DryRun: true},
			fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// A disabled destination is refused after the source was opened.
	f.must2(f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: dst}))
	_, err = f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: dst})
	wantErr(t, err, fault.Disabled, keyARN(acctA, dst)+" is disabled.")
}

// ReEncrypt needs kms:ReEncryptFrom on the source and kms:ReEncryptTo on
// the destination, each from that key's own policy.
func TestReEncryptAuthorizesEachKey(t *testing.T) {
	f := newFixture(t)
	user := iamUser(t, acctA, "mover")
	both := policyFor(user.ARN, "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo")
	// Each policy also keeps the account's root a key administrator.
	withRoot := func(p string) *string {
		return strp(strings.Replace(p, `"Statement":[`, `"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},`, 1))
	}
	fromOnly := f.createKey(kmsapi.CreateKeyInput{Policy: withRoot(policyFor(user.ARN, "kms:Encrypt", "kms:ReEncryptFrom"))})
	toOnly := f.createKey(kmsapi.CreateKeyInput{Policy: withRoot(policyFor(user.ARN, "kms:ReEncryptTo"))})
	full := f.createKey(kmsapi.CreateKeyInput{Policy: withRoot(both)})
	blob := func(id string) []byte {
		out, err := f.svc.Encrypt(f.ctx, user, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
		if err != nil {
			t.Fatal(err)
		}
		return out.CiphertextBlob
	}
	if _, err := f.svc.ReEncrypt(f.ctx, user, &kmsapi.ReEncryptInput{CiphertextBlob: blob(fromOnly), DestinationKeyID: toOnly}); err != nil {
		t.Fatalf("ReEncrypt from a key allowing ReEncryptFrom to one allowing ReEncryptTo: %v", err)
	}
	_, err := f.svc.ReEncrypt(f.ctx, user, &kmsapi.ReEncryptInput{CiphertextBlob: blob(fromOnly), DestinationKeyID: fromOnly})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ReEncryptTo", keyARN(acctA, fromOnly), noIdentityPolicy("kms:ReEncryptTo")))
	_, err = f.svc.ReEncrypt(f.ctx, user, &kmsapi.ReEncryptInput{CiphertextBlob: blob(full), DestinationKeyID: full})
	if err != nil {
		t.Fatalf("ReEncrypt on the same key: %v", err)
	}
	// kms:ReEncryptOnSameKey lets a policy tell the two apart.
	sameKeyDenied := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Allow","Principal":{"AWS":"` + user.ARN + `"},"Action":["kms:Encrypt","kms:ReEncrypt*"],"Resource":"*"},
	 {"Effect":"Deny","Principal":{"AWS":"` + user.ARN + `"},"Action":"kms:ReEncryptTo","Resource":"*","Condition":{"Bool":{"kms:ReEncryptOnSameKey":"true"}}}]}`)})
	_, err = f.svc.ReEncrypt(f.ctx, user, &kmsapi.ReEncryptInput{CiphertextBlob: blob(sameKeyDenied), DestinationKeyID: sameKeyDenied})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ReEncryptTo", keyARN(acctA, sameKeyDenied), "with an explicit deny in a resource-based policy"))
	if _, err := f.svc.ReEncrypt(f.ctx, user, &kmsapi.ReEncryptInput{CiphertextBlob: blob(sameKeyDenied), DestinationKeyID: full}); err != nil {
		t.Fatalf("ReEncrypt to another key: %v", err)
	}
}

func TestGenerateDataKey(t *testing.T) {
	fixed := bytes.Repeat([]byte{0x5a}, 64)
	f := newFixture(t)
	f.svc = f.newService(service.Config{Random: func(b []byte) (int, error) { return copy(b, fixed), nil }})
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	ec := map[string]string{"file": "f1"}
	for _, tc := range []struct {
		in   kmsapi.GenerateDataKeyInput
		size int
	}{
		{kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", EncryptionContext: ec}, 32},
		{kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_128", EncryptionContext: ec}, 16},
		{kmsapi.GenerateDataKeyInput{KeyID: id, NumberOfBytes: int32p(7), EncryptionContext: ec}, 7},
	} {
		out, err := f.svc.GenerateDataKey(f.ctx, rootA, &tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if out.KeyID != arn || !bytes.Equal(out.Plaintext, fixed[:tc.size]) || out.KeyMaterialID != f.describe(id).CurrentKeyMaterialID {
			t.Fatalf("GenerateDataKey(%+v) = %+v", tc.in, out)
		}
		dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		if err != nil || !bytes.Equal(dec.Plaintext, out.Plaintext) {
			t.Fatalf("the data key does not decrypt to its plaintext: %v", err)
		}
		wo, err := f.svc.GenerateDataKeyWithoutPlaintext(f.ctx, rootA, &tc.in)
		if err != nil || wo.Plaintext != nil {
			t.Fatalf("GenerateDataKeyWithoutPlaintext = %+v, %v", wo, err)
		}
		dec, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: wo.CiphertextBlob, EncryptionContext: ec})
		if err != nil || len(dec.Plaintext) != tc.size {
			t.Fatalf("the data key without plaintext does not decrypt: %v", err)
		}
	}
	rsaKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	hmacKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	for _, tc := range []struct {
		name string
		in   kmsapi.GenerateDataKeyInput
		code fault.Code
		msg  string
	}{
		{"neither spec nor size", kmsapi.GenerateDataKeyInput{KeyID: id}, fault.Validation, "Please specify either number of bytes or key spec."},
		{"both spec and size", kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", NumberOfBytes: int32p(32)}, fault.Validation,
			"Please specify either number of bytes or key spec."},
		{"1025 bytes", kmsapi.GenerateDataKeyInput{KeyID: id, NumberOfBytes: int32p(1025)}, fault.Validation,
			"1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"},
		{"RSA key", kmsapi.GenerateDataKeyInput{KeyID: rsaKey, KeySpec: "AES_256"}, fault.InvalidKeyUsage,
			keyARN(acctA, rsaKey) + " key spec is RSA_2048 which is not valid for GenerateDataKey."},
		{"HMAC key", kmsapi.GenerateDataKeyInput{KeyID: hmacKey, KeySpec: "AES_256"}, fault.InvalidKeyUsage,
			keyARN(acctA, hmacKey) + " key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKey."},
		{"recipient", kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", Recipient: &kmsapi.RecipientInfo{}}, fault.UnsupportedOperation,
			"Recipient (Nitro Enclaves attestation) is not supported by this server."},
		{"dry run", kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.GenerateDataKey(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// A random source that fails is an internal error, never a weak key.
	broken := f.newService(service.Config{Random: func([]byte) (int, error) { return 0, errors.New("entropy exhausted") }})
	_, err := broken.GenerateDataKey(f.ctx, rootA, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256"})
	wantErr(t, err, fault.Internal, "An internal error occurred.")
	_, err = broken.GenerateRandom(f.ctx, rootA, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(8)})
	wantErr(t, err, fault.Internal, "An internal error occurred.")
}

// RSA data key pairs, which cost a CPU for up to a second each, are made
// at most RSAKeyPairs at once: a call past the bound waits for its turn
// (here, with its client gone, it gives up) instead of taking one more
// CPU from every other call. Other specs are not held back.
func TestGenerateDataKeyPairBoundsRSA(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	rsaKey, err := keys.GenerateAsymmetric("RSA_2048")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	svc := f.newService(service.Config{RSAKeyPairs: 1, GenerateKeyPair: func(spec string) ([]byte, error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		if spec == "RSA_2048" {
			return slices.Clone(rsaKey), nil
		}
		return keys.GenerateAsymmetric(spec)
	}})
	pair := func(ctx context.Context, spec string) error {
		_, err := svc.GenerateDataKeyPair(ctx, rootA, &kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: spec})
		return err
	}
	first := make(chan error, 1)
	go func() { first <- pair(f.ctx, "RSA_2048") }()
	<-entered
	gone, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := pair(gone, "RSA_3072"); !errors.Is(err, context.Canceled) {
		t.Errorf("a second RSA pair while the first is made: %v; want it to wait (and give up with its client)", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d RSA pairs made at once; want 1", n)
	}
	if err := pair(gone, "ECC_NIST_P256"); err != nil {
		t.Errorf("an ECC pair while an RSA pair is made: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the first RSA pair: %v", err)
	}
	if err := pair(f.ctx, "RSA_2048"); err != nil {
		t.Errorf("an RSA pair once the first is done: %v", err)
	}
}

func TestGenerateDataKeyPair(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	ec := map[string]string{"k": "v"}
	for _, spec := range []string{"ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "RSA_2048"} {
		t.Run(spec, func(t *testing.T) {
			out, err := f.svc.GenerateDataKeyPair(f.ctx, rootA, &kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if out.KeyID != keyARN(acctA, id) || out.KeyPairSpec != spec || len(out.PrivateKeyPlaintext) == 0 {
				t.Fatalf("GenerateDataKeyPair = %+v", out)
			}
			priv, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext)
			if err != nil {
				t.Fatalf("private key is not PKCS#8: %v", err)
			}
			pub, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
			if err != nil || !bytes.Equal(pub, out.PublicKey) {
				t.Fatalf("the public key is not the private key's: %v", err)
			}
			dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
			if err != nil || !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
				t.Fatalf("the sealed private key does not decrypt to the plaintext one: %v", err)
			}
			wo, err := f.svc.GenerateDataKeyPairWithoutPlaintext(f.ctx, rootA, &kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: spec})
			if err != nil || wo.PrivateKeyPlaintext != nil || len(wo.PublicKey) == 0 {
				t.Fatalf("GenerateDataKeyPairWithoutPlaintext = %+v, %v", wo, err)
			}
		})
	}
	for _, tc := range []struct {
		in   kmsapi.GenerateDataKeyPairInput
		code fault.Code
		msg  string
	}{
		{kmsapi.GenerateDataKeyPairInput{KeyID: id}, fault.Validation,
			"1 validation error detected: Value null at 'keyPairSpec' failed to satisfy constraint: Member must not be null"},
		{kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: "SM2"}, fault.UnsupportedOperation, "KeyPairSpec SM2 is only available in AWS China Regions."},
		{kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: "ECC_NIST_P256", DryRun: true}, fault.DryRun, dryRunMsg},
		{kmsapi.GenerateDataKeyPairInput{KeyID: id, KeyPairSpec: "ECC_NIST_P256", Recipient: &kmsapi.RecipientInfo{}}, fault.UnsupportedOperation,
			"Recipient (Nitro Enclaves attestation) is not supported by this server."},
	} {
		_, err := f.svc.GenerateDataKeyPair(f.ctx, rootA, &tc.in)
		wantErr(t, err, tc.code, tc.msg)
	}
}

func TestGenerateRandom(t *testing.T) {
	f := newFixture(t)
	for _, n := range []int32{1, 1024} {
		out, err := f.svc.GenerateRandom(f.ctx, rootA, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(n)})
		if err != nil || len(out.Plaintext) != int(n) {
			t.Fatalf("GenerateRandom(%d): %d bytes, %v", n, len(out.Plaintext), err)
		}
	}
	_, err := f.svc.GenerateRandom(f.ctx, rootA, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(8), CustomKeyStoreID: strp("cks-1")})
	wantErr(t, err, fault.CustomKeyStoreNotFound, "Custom key store cks-1 does not exist in this account: this server does not support custom key stores.")
	_, err = f.svc.GenerateRandom(f.ctx, rootA, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(8), Recipient: &kmsapi.RecipientInfo{}})
	wantErr(t, err, fault.UnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this server.")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.GenerateRandom(f.ctx, user, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(8)})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:GenerateRandom", "*", noIdentityPolicy("kms:GenerateRandom")))
	allowed := iamUser(t, acctA, "r", identityAllow("kms:GenerateRandom"))
	if _, err := f.svc.GenerateRandom(f.ctx, allowed, &kmsapi.GenerateRandomInput{NumberOfBytes: int32p(8)}); err != nil {
		t.Fatalf("GenerateRandom allowed by an identity policy: %v", err)
	}
}

// An RSA ENCRYPT_DECRYPT key encrypts with RSAES-OAEP: what anyone
// encrypts with its public key, Decrypt opens.
func TestAsymmetricEncryption(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	arn := keyARN(acctA, id)
	pk, err := f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	offline, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, parsed.(*rsa.PublicKey), []byte("offline"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: offline, KeyID: id, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
	if err != nil || string(dec.Plaintext) != "offline" || dec.KeyID != arn || dec.KeyMaterialID != "" {
		t.Fatalf("Decrypt of an offline ciphertext: %+v, %v", dec, err)
	}
	enc, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("online"), EncryptionAlgorithm: "RSAES_OAEP_SHA_1"})
	if err != nil || enc.EncryptionAlgorithm != "RSAES_OAEP_SHA_1" {
		t.Fatalf("Encrypt: %+v, %v", enc, err)
	}
	dec, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyID: id, EncryptionAlgorithm: "RSAES_OAEP_SHA_1"})
	if err != nil || string(dec.Plaintext) != "online" {
		t.Fatalf("Decrypt: %+v, %v", dec, err)
	}
	// Re-encrypt from the RSA key to a symmetric one.
	sym := f.createKey(kmsapi.CreateKeyInput{})
	re, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyID: id,
		SourceEncryptionAlgorithm: "RSAES_OAEP_SHA_1", DestinationKeyID: sym})
	if err != nil || re.SourceKeyMaterialID != "" || re.DestinationKeyMaterialID == "" {
		t.Fatalf("ReEncrypt from RSA: %+v, %v", re, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code fault.Code
		msg  string
	}{
		{"symmetric algorithm", func() error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
			return err
		}, fault.InvalidKeyUsage, "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."},
		{"encryption context", func() error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p"), EncryptionAlgorithm: "RSAES_OAEP_SHA_256", EncryptionContext: map[string]string{"a": "b"}})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"plaintext too large", func() error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: make([]byte, 191), EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
			return err
		}, fault.Validation, "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."},
		{"decrypt under the other hash", func() error {
			_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyID: id, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
			return err
		}, fault.InvalidCiphertext, ""},
		{"decrypt with a context", func() error {
			_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyID: id, EncryptionAlgorithm: "RSAES_OAEP_SHA_1", EncryptionContext: map[string]string{"a": "b"}})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"RSA destination with a context", func() error {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyID: id,
				DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_256", DestinationEncryptionContext: map[string]string{"a": "b"}})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.code, tc.msg) })
	}
}
