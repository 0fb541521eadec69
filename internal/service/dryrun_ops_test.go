package service_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"maps"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

// A call with DryRun is answered DryRunOperationException only when the
// same call without DryRun succeeds; one that would fail gets the error
// the call itself gets. No dry run changes the store or counts as a use
// of its keys.
func TestDryRunAnswersAsTheCall(t *testing.T) {
	f := newFixture(t)
	sym := f.createKey(kmsapi.CreateKeyInput{})
	rsaEnc := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	rsaSign := f.createKey(kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
	ecc := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	ed := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_EDWARDS25519", KeyUsage: "SIGN_VERIFY"})
	mldsa := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ML_DSA_44", KeyUsage: "SIGN_VERIFY"})
	agree := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "KEY_AGREEMENT"})
	mac := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	// Keys that make what the calls take: a signature, a MAC, blobs.
	other := f.createKey(kmsapi.CreateKeyInput{})
	sigKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	macKey := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	msg := []byte("message")
	digest := sha256.Sum256(msg)
	sig, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: sigKey, Message: msg, SigningAlgorithm: "ECDSA_SHA_256"})
	f.must(err)
	tag, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: macKey, Message: msg, MacAlgorithm: "HMAC_SHA_256"})
	f.must(err)
	small, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: other, Plaintext: []byte("small")})
	f.must(err)
	large, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: other, Plaintext: make([]byte, 1000)})
	f.must(err)
	rsaBlob, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: rsaEnc, Plaintext: []byte("small"), EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
	f.must(err)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	f.must(err)
	peerPub, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
	f.must(err)
	p384, err := ecdh.P384().GenerateKey(rand.Reader)
	f.must(err)
	p384Pub, err := x509.MarshalPKIXPublicKey(p384.PublicKey())
	f.must(err)
	ec := map[string]string{"purpose": "test"}
	ignore := []string{"IGNORE_CIPHERTEXT"}

	cases := []struct {
		name string
		call func(dryRun bool) error
		// code and msg are the error of the call without DryRun; code
		// DryRun is a call that succeeds.
		code fault.Code
		msg  string
	}{
		{"Sign, algorithm of another spec", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: rsaSign, Message: msg, SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm ECDSA_SHA_256 is incompatible with key spec RSA_2048."},
		{"Sign, digest of the wrong length", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: ecc, Message: msg, MessageType: "DIGEST", SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.Validation, "Digest is invalid length for algorithm ECDSA_SHA_256."},
		{"Sign, digest for pure Ed25519", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: ed, Message: make([]byte, 64), MessageType: "DIGEST", SigningAlgorithm: "ED25519_SHA_512", DryRun: dry})
			return err
		}, fault.Validation, "MessageType DIGEST is not valid for algorithm ED25519_SHA_512."},
		{"Sign, external mu", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: mldsa, Message: make([]byte, 64), MessageType: "EXTERNAL_MU", SigningAlgorithm: "ML_DSA_SHAKE_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"Sign, external mu of the wrong length", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: mldsa, Message: make([]byte, 32), MessageType: "EXTERNAL_MU", SigningAlgorithm: "ML_DSA_SHAKE_256", DryRun: dry})
			return err
		}, fault.Validation, "Digest is invalid length for algorithm ML_DSA_SHAKE_256."},
		{"Verify, external mu", func(dry bool) error {
			_, err := f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: mldsa, Message: make([]byte, 64), MessageType: "EXTERNAL_MU", Signature: make([]byte, 2420), SigningAlgorithm: "ML_DSA_SHAKE_256", DryRun: dry})
			return err
		}, fault.UnsupportedOperation, "MessageType EXTERNAL_MU is not supported by this server for Verify."},
		{"Sign, digest", func(dry bool) error {
			_, err := f.svc.Sign(f.ctx, rootA, &kmsapi.SignInput{KeyID: ecc, Message: digest[:], MessageType: "DIGEST", SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"Verify, algorithm of another spec", func(dry bool) error {
			_, err := f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: rsaSign, Message: msg, Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm ECDSA_SHA_256 is incompatible with key spec RSA_2048."},
		{"Verify, digest of the wrong length", func(dry bool) error {
			_, err := f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: sigKey, Message: msg, MessageType: "DIGEST", Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.Validation, "Digest is invalid length for algorithm ECDSA_SHA_256."},
		{"Verify", func(dry bool) error {
			_, err := f.svc.Verify(f.ctx, rootA, &kmsapi.VerifyInput{KeyID: sigKey, Message: digest[:], MessageType: "DIGEST", Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"DeriveSharedSecret, garbage public key", func(dry bool) error {
			_, err := f.svc.DeriveSharedSecret(f.ctx, rootA, &kmsapi.DeriveSharedSecretInput{KeyID: agree, KeyAgreementAlgorithm: "ECDH", PublicKey: []byte("garbage"), DryRun: dry})
			return err
		}, fault.Validation, ""},
		{"DeriveSharedSecret, public key on another curve", func(dry bool) error {
			_, err := f.svc.DeriveSharedSecret(f.ctx, rootA, &kmsapi.DeriveSharedSecretInput{KeyID: agree, KeyAgreementAlgorithm: "ECDH", PublicKey: p384Pub, DryRun: dry})
			return err
		}, fault.Validation, ""},
		{"DeriveSharedSecret", func(dry bool) error {
			_, err := f.svc.DeriveSharedSecret(f.ctx, rootA, &kmsapi.DeriveSharedSecretInput{KeyID: agree, KeyAgreementAlgorithm: "ECDH", PublicKey: peerPub, DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"GenerateMac, algorithm of another spec", func(dry bool) error {
			_, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: mac, Message: msg, MacAlgorithm: "HMAC_SHA_512", DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256."},
		{"GenerateMac", func(dry bool) error {
			_, err := f.svc.GenerateMac(f.ctx, rootA, &kmsapi.GenerateMacInput{KeyID: mac, Message: msg, MacAlgorithm: "HMAC_SHA_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"VerifyMac, algorithm of another spec", func(dry bool) error {
			_, err := f.svc.VerifyMac(f.ctx, rootA, &kmsapi.VerifyMacInput{KeyID: macKey, Message: msg, MacAlgorithm: "HMAC_SHA_224", Mac: tag.Mac, DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm HMAC_SHA_224 is incompatible with key spec HMAC_256."},
		{"VerifyMac", func(dry bool) error {
			_, err := f.svc.VerifyMac(f.ctx, rootA, &kmsapi.VerifyMacInput{KeyID: macKey, Message: msg, MacAlgorithm: "HMAC_SHA_256", Mac: tag.Mac, DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"Encrypt, too large for RSA", func(dry bool) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: rsaEnc, Plaintext: make([]byte, 191), EncryptionAlgorithm: "RSAES_OAEP_SHA_256", DryRun: dry})
			return err
		}, fault.Validation, "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."},
		{"Encrypt, context with RSA", func(dry bool) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: rsaEnc, Plaintext: msg, EncryptionContext: ec, EncryptionAlgorithm: "RSAES_OAEP_SHA_1", DryRun: dry})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"Encrypt, RSA without an algorithm", func(dry bool) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: rsaEnc, Plaintext: msg, DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."},
		{"Encrypt, the most RSA takes", func(dry bool) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: rsaEnc, Plaintext: make([]byte, 190), EncryptionAlgorithm: "RSAES_OAEP_SHA_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"Encrypt, context", func(dry bool) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: sym, Plaintext: msg, EncryptionContext: ec, DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"ReEncrypt, too large for the RSA destination", func(dry bool) error {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: large.CiphertextBlob, DestinationKeyID: rsaEnc,
				DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1", DryRun: dry})
			return err
		}, fault.Validation, "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes."},
		{"ReEncrypt, context for the RSA destination", func(dry bool) error {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: small.CiphertextBlob, DestinationKeyID: rsaEnc,
				DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1", DestinationEncryptionContext: ec, DryRun: dry})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"ReEncrypt ignoring the ciphertext, context for the RSA destination", func(dry bool) error {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: small.CiphertextBlob, SourceKeyID: other, DestinationKeyID: rsaEnc,
				DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1", DestinationEncryptionContext: ec, DryRun: dry, DryRunModifiers: ignore})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"ReEncrypt to RSA", func(dry bool) error {
			_, err := f.svc.ReEncrypt(f.ctx, rootA, &kmsapi.ReEncryptInput{CiphertextBlob: small.CiphertextBlob, DestinationKeyID: rsaEnc,
				DestinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"Decrypt, RSA without an algorithm", func(dry bool) error {
			_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: rsaBlob.CiphertextBlob, KeyID: rsaEnc, DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."},
		{"Decrypt, context with RSA", func(dry bool) error {
			_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: rsaBlob.CiphertextBlob, KeyID: rsaEnc, EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
				EncryptionContext: ec, DryRun: dry})
			return err
		}, fault.Validation, "EncryptionContext is not supported with asymmetric KMS keys."},
		{"Decrypt, RSA", func(dry bool) error {
			_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: rsaBlob.CiphertextBlob, KeyID: rsaEnc, EncryptionAlgorithm: "RSAES_OAEP_SHA_256", DryRun: dry})
			return err
		}, fault.DryRun, ""},
		{"GenerateDataKey, RSA key", func(dry bool) error {
			_, err := f.svc.GenerateDataKey(f.ctx, rootA, &kmsapi.GenerateDataKeyInput{KeyID: rsaEnc, KeySpec: "AES_256", DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, keyARN(acctA, rsaEnc) + " key spec is RSA_2048 which is not valid for GenerateDataKey."},
		{"GenerateDataKeyPair, RSA key", func(dry bool) error {
			_, err := f.svc.GenerateDataKeyPair(f.ctx, rootA, &kmsapi.GenerateDataKeyPairInput{KeyID: rsaEnc, KeyPairSpec: "ECC_NIST_P256", DryRun: dry})
			return err
		}, fault.InvalidKeyUsage, keyARN(acctA, rsaEnc) + " key spec is RSA_2048 which is not valid for GenerateDataKeyPair."},
	}

	// The dry runs first, all of them: a use noted would be newer than
	// any made above.
	f.advance(time.Second)
	lastUses := func() map[string]string {
		m := map[string]string{}
		for _, id := range []string{sym, rsaEnc, rsaSign, ecc, ed, mldsa, agree, mac, other, sigKey, macKey} {
			out, err := f.svc.GetKeyLastUsage(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			f.must(err)
			if u := out.KeyLastUsage; u != nil {
				m[id] = u.Operation + " at " + time.Time(*u.Timestamp).String()
			}
		}
		return m
	}
	records, uses := f.snapshot(), lastUses()
	dryErrs := make([]error, len(cases))
	for i, tc := range cases {
		dryErrs[i] = tc.call(true)
	}
	if !sameRecords(records, f.snapshot()) {
		t.Error("dry runs changed the store")
	}
	if after := lastUses(); !maps.Equal(uses, after) {
		t.Errorf("dry runs were noted as uses of their keys:\nbefore %v\nafter  %v", uses, after)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(false)
			if tc.code == fault.DryRun {
				if err != nil {
					t.Fatalf("without DryRun: %v", err)
				}
				wantErr(t, dryErrs[i], fault.DryRun, dryRunMsg)
				return
			}
			wantErr(t, err, tc.code, tc.msg)
			wantErr(t, dryErrs[i], tc.code, tc.msg)
		})
	}
}
