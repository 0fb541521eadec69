package service_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

func (f *fixture) publicKey(id string) crypto.PublicKey {
	f.t.Helper()
	out, err := f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		f.t.Fatal(err)
	}
	return pub
}

// Signatures made by Sign verify with the public key outside the service,
// and Verify accepts them; RAW and DIGEST of the same message are the same
// message.
func TestSignVerify(t *testing.T) {
	f := newFixture(t)
	msg := []byte("message to sign")
	digest := sha256.Sum256(msg)
	for _, tc := range []struct {
		spec, alg string
		verify    func(pub crypto.PublicKey, sig []byte) bool
	}{
		{"ECC_NIST_P256", "ECDSA_SHA_256", func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig)
		}},
		{"RSA_2048", "RSASSA_PSS_SHA_256", func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}},
		{"RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig) == nil
		}},
		{"ECC_NIST_EDWARDS25519", "ED25519_SHA_512", func(pub crypto.PublicKey, sig []byte) bool {
			return ed25519.Verify(pub.(ed25519.PublicKey), msg, sig)
		}},
	} {
		t.Run(tc.spec+"/"+tc.alg, func(t *testing.T) {
			id := f.createKey(kmsapi.CreateKeyInput{KeySpec: tc.spec, KeyUsage: "SIGN_VERIFY"})
			arn := keyARN(acctA, id)
			out, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: id, Message: msg, SigningAlgorithm: tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			if out.KeyID != arn || out.SigningAlgorithm != tc.alg {
				t.Fatalf("Sign = %+v", out)
			}
			if !tc.verify(f.publicKey(id), out.Signature) {
				t.Fatal("the signature does not verify with the public key")
			}
			v, err := f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: arn, Message: msg, Signature: out.Signature, SigningAlgorithm: tc.alg})
			if err != nil || !v.SignatureValid || v.KeyID != arn || v.SigningAlgorithm != tc.alg {
				t.Fatalf("Verify = %+v, %v", v, err)
			}
			if tc.spec != "ECC_NIST_EDWARDS25519" {
				_, err = f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: id, Message: digest[:], MessageType: "DIGEST", Signature: out.Signature, SigningAlgorithm: tc.alg})
				if err != nil {
					t.Fatalf("Verify of the digest of a message signed RAW: %v", err)
				}
			}
			_, err = f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: id, Message: []byte("another message"), Signature: out.Signature, SigningAlgorithm: tc.alg})
			wantErr(t, err, fault.InvalidSignature, "")
		})
	}
}

func TestSignVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	ecc := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	ed := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_EDWARDS25519", KeyUsage: "SIGN_VERIFY"})
	sym := f.createKey(kmsapi.CreateKeyInput{})
	sig, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: ecc, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   kmsapi.SignInput
		code fault.Code
		msg  string
	}{
		{"algorithm of another spec", kmsapi.SignInput{KeyID: ecc, Message: []byte("m"), SigningAlgorithm: "RSASSA_PSS_SHA_256"}, fault.InvalidKeyUsage,
			"Algorithm RSASSA_PSS_SHA_256 is incompatible with key spec ECC_NIST_P256."},
		{"digest of the wrong length", kmsapi.SignInput{KeyID: ecc, Message: []byte("short"), MessageType: "DIGEST", SigningAlgorithm: "ECDSA_SHA_256"}, fault.Validation,
			"Digest is invalid length for algorithm ECDSA_SHA_256."},
		{"pure Ed25519 of a digest", kmsapi.SignInput{KeyID: ed, Message: make([]byte, 64), MessageType: "DIGEST", SigningAlgorithm: "ED25519_SHA_512"}, fault.Validation,
			"MessageType DIGEST is not valid for algorithm ED25519_SHA_512."},
		{"symmetric key", kmsapi.SignInput{KeyID: sym, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"}, fault.InvalidKeyUsage,
			keyARN(acctA, sym) + " key usage is ENCRYPT_DECRYPT which is not valid for Sign."},
		{"no algorithm", kmsapi.SignInput{KeyID: ecc, Message: []byte("m")}, fault.Validation,
			"1 validation error detected: Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"no message", kmsapi.SignInput{KeyID: ecc, SigningAlgorithm: "ECDSA_SHA_256"}, fault.Validation,
			"1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null"},
		{"message type not in the enum", kmsapi.SignInput{KeyID: ecc, Message: []byte("m"), MessageType: "HASH", SigningAlgorithm: "ECDSA_SHA_256"}, fault.Validation,
			"1 validation error detected: Value 'HASH' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]"},
		{"dry run", kmsapi.SignInput{KeyID: ecc, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256", DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run("Sign/"+tc.name, func(t *testing.T) {
			_, err := f.svc.Sign(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	for _, tc := range []struct {
		name string
		in   kmsapi.VerifyInput
		code fault.Code
		msg  string
	}{
		{"no signature", kmsapi.VerifyInput{KeyID: ecc, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"}, fault.Validation,
			"1 validation error detected: Value null at 'signature' failed to satisfy constraint: Member must not be null"},
		{"garbage signature", kmsapi.VerifyInput{KeyID: ecc, Message: []byte("m"), Signature: []byte("xx"), SigningAlgorithm: "ECDSA_SHA_256"}, fault.InvalidSignature, ""},
		{"digest of the wrong length", kmsapi.VerifyInput{KeyID: ecc, Message: []byte("m"), MessageType: "DIGEST", Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256"},
			fault.Validation, "Digest is invalid length for algorithm ECDSA_SHA_256."},
		{"dry run", kmsapi.VerifyInput{KeyID: ecc, Message: []byte("m"), Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256", DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run("Verify/"+tc.name, func(t *testing.T) {
			_, err := f.svc.Verify(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	f.must2(f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: ecc}))
	_, err = f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: ecc, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
	wantErr(t, err, fault.Disabled, keyARN(acctA, ecc)+" is disabled.")
	_, err = f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: ecc})
	wantErr(t, err, fault.Disabled, keyARN(acctA, ecc)+" is disabled.")
}

func TestGetPublicKey(t *testing.T) {
	f := newFixture(t)
	sign := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P384", KeyUsage: "SIGN_VERIFY"})
	agree := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "KEY_AGREEMENT"})
	sym := f.createKey(kmsapi.CreateKeyInput{})
	hmac := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	out, err := f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: sign})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyID != keyARN(acctA, sign) || out.KeySpec != "ECC_NIST_P384" || out.CustomerMasterKeySpec != "ECC_NIST_P384" || out.KeyUsage != "SIGN_VERIFY" ||
		len(out.SigningAlgorithms) != 1 || out.SigningAlgorithms[0] != "ECDSA_SHA_384" || out.EncryptionAlgorithms != nil || out.KeyAgreementAlgorithms != nil {
		t.Fatalf("GetPublicKey = %+v", out)
	}
	if pub, ok := f.publicKey(sign).(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
		t.Fatal("the public key is not a P-384 key")
	}
	out, err = f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: agree})
	if err != nil || len(out.KeyAgreementAlgorithms) != 1 || out.KeyAgreementAlgorithms[0] != "ECDH" || out.SigningAlgorithms != nil {
		t.Fatalf("GetPublicKey of a key agreement key = %+v, %v", out, err)
	}
	for _, id := range []string{sym, hmac} {
		spec := f.describe(id).KeySpec
		_, err := f.svc.GetPublicKey(f.ctx, rootA, &kmsapi.GetPublicKeyInput{KeyID: id})
		wantErr(t, err, fault.UnsupportedOperation, keyARN(acctA, id)+" has key spec "+spec+", which has no public key.")
	}
}

// DeriveSharedSecret gives the secret the peer computes with the key's
// public half.
func TestDeriveSharedSecret(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "KEY_AGREEMENT"})
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peerPub, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.DeriveSharedSecret(f.ctx, rootA, &kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH", PublicKey: peerPub})
	if err != nil {
		t.Fatal(err)
	}
	kmsPub, err := f.publicKey(id).(*ecdsa.PublicKey).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	want, err := peer.ECDH(kmsPub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.SharedSecret, want) || out.KeyID != keyARN(acctA, id) || out.KeyAgreementAlgorithm != "ECDH" || out.KeyOrigin != "AWS_KMS" {
		t.Fatalf("DeriveSharedSecret = %+v, want secret %x", out, want)
	}
	otherCurve, _ := ecdh.P384().GenerateKey(rand.Reader)
	otherPub, _ := x509.MarshalPKIXPublicKey(otherCurve.PublicKey())
	signing := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	for _, tc := range []struct {
		name string
		in   kmsapi.DeriveSharedSecretInput
		code fault.Code
		msg  string
	}{
		{"garbage public key", kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH", PublicKey: []byte("garbage")}, fault.Validation, ""},
		{"public key on another curve", kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH", PublicKey: otherPub}, fault.Validation, ""},
		{"signing key", kmsapi.DeriveSharedSecretInput{KeyID: signing, KeyAgreementAlgorithm: "ECDH", PublicKey: peerPub}, fault.InvalidKeyUsage,
			keyARN(acctA, signing) + " key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret."},
		{"no algorithm", kmsapi.DeriveSharedSecretInput{KeyID: id, PublicKey: peerPub}, fault.Validation,
			"1 validation error detected: Value null at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"no public key", kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH"}, fault.Validation,
			"1 validation error detected: Value null at 'publicKey' failed to satisfy constraint: Member must not be null"},
		{"recipient", kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH", PublicKey: peerPub, Recipient: &kmsapi.RecipientInfo{}},
			fault.UnsupportedOperation, "Recipient (Nitro Enclaves attestation) is not supported by this server."},
		{"dry run", kmsapi.DeriveSharedSecretInput{KeyID: id, KeyAgreementAlgorithm: "ECDH", PublicKey: peerPub, DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.DeriveSharedSecret(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
}

func TestGenerateAndVerifyMac(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	other := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	arn := keyARN(acctA, id)
	msg := []byte("authenticate me")
	out, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256"})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyID != arn || out.MacAlgorithm != "HMAC_SHA_256" || len(out.Mac) != 32 {
		t.Fatalf("GenerateMac = %+v", out)
	}
	again, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256"})
	if err != nil || !bytes.Equal(again.Mac, out.Mac) {
		t.Fatalf("an HMAC is deterministic: %x then %x (%v)", out.Mac, again.Mac, err)
	}
	v, err := f.svc.VerifyMac(f.ctx, rootA, &kmsapi.VerifyMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac})
	if err != nil || !v.MacValid || v.KeyID != arn || v.MacAlgorithm != "HMAC_SHA_256" {
		t.Fatalf("VerifyMac = %+v, %v", v, err)
	}
	sym := f.createKey(kmsapi.CreateKeyInput{})
	for _, tc := range []struct {
		name string
		in   kmsapi.VerifyMacInput
		code fault.Code
		msg  string
	}{
		{"another message", kmsapi.VerifyMacInput{KeyID: id, Message: []byte("forged"), MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac}, fault.InvalidMac, ""},
		{"another key", kmsapi.VerifyMacInput{KeyID: other, Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac}, fault.InvalidMac, ""},
		{"algorithm of another spec", kmsapi.VerifyMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_512", Mac: out.Mac}, fault.InvalidKeyUsage,
			"Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256."},
		{"no mac", kmsapi.VerifyMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256"}, fault.Validation,
			"1 validation error detected: Value null at 'mac' failed to satisfy constraint: Member must not be null"},
		{"symmetric key", kmsapi.VerifyMacInput{KeyID: sym, Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac}, fault.InvalidKeyUsage,
			keyARN(acctA, sym) + " key usage is ENCRYPT_DECRYPT which is not valid for VerifyMac."},
		{"malformed key id", kmsapi.VerifyMacInput{KeyID: "key_id", Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac}, fault.NotFound, "Invalid keyId 'key_id'"},
		{"dry run", kmsapi.VerifyMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: out.Mac, DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run("VerifyMac/"+tc.name, func(t *testing.T) {
			_, err := f.svc.VerifyMac(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	for _, tc := range []struct {
		name string
		in   kmsapi.GenerateMacInput
		code fault.Code
		msg  string
	}{
		{"algorithm of another spec", kmsapi.GenerateMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_384"}, fault.InvalidKeyUsage,
			"Algorithm HMAC_SHA_384 is incompatible with key spec HMAC_256."},
		{"no algorithm", kmsapi.GenerateMacInput{KeyID: id, Message: msg}, fault.Validation,
			"1 validation error detected: Value null at 'macAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"message too long", kmsapi.GenerateMacInput{KeyID: id, Message: make([]byte, 4097), MacAlgorithm: "HMAC_SHA_256"}, fault.Validation,
			"1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"dry run", kmsapi.GenerateMacInput{KeyID: id, Message: msg, MacAlgorithm: "HMAC_SHA_256", DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run("GenerateMac/"+tc.name, func(t *testing.T) {
			_, err := f.svc.GenerateMac(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
}
