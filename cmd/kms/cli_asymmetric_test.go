package main_test

import (
	"bytes"
	"context"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/asn1"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// opensslFails runs `openssl ARGS` in the aws CLI's working directory and
// fails the test if it succeeds.
func (a *awsCLI) opensslFails(bin string, args ...string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = baseEnv(), a.dir
	if out, err := cmd.CombinedOutput(); err == nil {
		a.t.Errorf("openssl %s succeeded, want a failure\n%s", strings.Join(args, " "), out)
	}
}

type cliPublicKey struct {
	KeyId                string
	PublicKey            []byte // base64 in JSON: DER SubjectPublicKeyInfo
	KeySpec              string
	KeyUsage             string
	SigningAlgorithms    []string
	EncryptionAlgorithms []string
}

// TestAWSCLIAsymmetric drives asymmetric and HMAC keys with the real aws
// command line and checks what the server produces with openssl, as a user
// who holds only the public key would: ECDSA and RSASSA-PSS signatures,
// RSAES-OAEP ciphertexts made outside KMS, HMACs and data key pairs.
func TestAWSCLIAsymmetric(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	ossl := requireOpenSSL(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	start := time.Now()
	defer func() { t.Logf("%d aws CLI runs in %v", a.runs, time.Since(start)) }()

	// createKey creates a key of spec and usage and returns its metadata.
	createKey := func(spec, usage string) cliKeyMetadata {
		t.Helper()
		var created struct{ KeyMetadata cliKeyMetadata }
		a.json(&created, "create-key", "--key-spec", spec, "--key-usage", usage, "--description", "cli "+spec+" "+usage)
		k := created.KeyMetadata
		if k.KeyId == "" || k.KeySpec != spec || k.KeyUsage != usage || k.KeyState != "Enabled" {
			t.Fatalf("create-key --key-spec %s --key-usage %s: %+v", spec, usage, k)
		}
		return k
	}
	// publicKey fetches the key's public key into NAME.der and NAME.pem
	// (converted by openssl) and returns what get-public-key said.
	publicKey := func(k cliKeyMetadata, name string) cliPublicKey {
		t.Helper()
		var pk cliPublicKey
		a.json(&pk, "get-public-key", "--key-id", k.KeyId)
		if pk.KeyId != k.Arn || pk.KeySpec != k.KeySpec || pk.KeyUsage != k.KeyUsage || len(pk.PublicKey) == 0 {
			t.Fatalf("get-public-key %s: KeyId %q KeySpec %q KeyUsage %q, %d-byte key", k.KeyId, pk.KeyId, pk.KeySpec, pk.KeyUsage, len(pk.PublicKey))
		}
		a.file(name+".der", pk.PublicKey)
		a.openssl(ossl, "pkey", "-pubin", "-inform", "DER", "-in", name+".der", "-out", name+".pem")
		return pk
	}

	msg := randBytes(t, 500)
	msgFile := a.file("msg.bin", msg)
	other := slices.Clone(msg)
	other[len(other)/2] ^= 0x01
	otherFile := a.file("other.bin", other)

	// ECC_NIST_P256: sign the raw message, check the signature with openssl
	// and with aws kms verify; a changed message does not verify.
	ec := createKey("ECC_NIST_P256", "SIGN_VERIFY")
	var signed struct {
		KeyId            string
		Signature        []byte // base64 in JSON
		SigningAlgorithm string
	}
	a.json(&signed, "sign", "--key-id", ec.KeyId, "--message", msgFile, "--message-type", "RAW",
		"--signing-algorithm", "ECDSA_SHA_256")
	if signed.KeyId != ec.Arn || signed.SigningAlgorithm != "ECDSA_SHA_256" || len(signed.Signature) == 0 {
		t.Fatalf("sign: KeyId %q SigningAlgorithm %q, %d-byte signature", signed.KeyId, signed.SigningAlgorithm, len(signed.Signature))
	}
	ecSig := a.file("ec-sig.bin", signed.Signature)
	pk := publicKey(ec, "ec-pub")
	if !slices.Equal(pk.SigningAlgorithms, []string{"ECDSA_SHA_256"}) || len(pk.EncryptionAlgorithms) != 0 {
		t.Errorf("get-public-key of ECC_NIST_P256: SigningAlgorithms %v EncryptionAlgorithms %v", pk.SigningAlgorithms, pk.EncryptionAlgorithms)
	}
	a.openssl(ossl, "dgst", "-sha256", "-verify", "ec-pub.pem", "-signature", "ec-sig.bin", "msg.bin")
	a.opensslFails(ossl, "dgst", "-sha256", "-verify", "ec-pub.pem", "-signature", "ec-sig.bin", "other.bin")
	var verified struct {
		KeyId            string
		SignatureValid   bool
		SigningAlgorithm string
	}
	a.json(&verified, "verify", "--key-id", ec.KeyId, "--message", msgFile, "--message-type", "RAW",
		"--signing-algorithm", "ECDSA_SHA_256", "--signature", ecSig)
	if !verified.SignatureValid || verified.KeyId != ec.Arn || verified.SigningAlgorithm != "ECDSA_SHA_256" {
		t.Errorf("verify: %+v", verified)
	}
	// The same signature over the message's digest.
	digest := sha256.Sum256(msg)
	verified.SignatureValid = false
	a.json(&verified, "verify", "--key-id", ec.KeyId, "--message", a.file("digest.bin", digest[:]), "--message-type", "DIGEST",
		"--signing-algorithm", "ECDSA_SHA_256", "--signature", ecSig)
	if !verified.SignatureValid {
		t.Errorf("verify of the RAW signature over the message's DIGEST: %+v", verified)
	}
	a.fails([]string{"KMSInvalidSignatureException"}, "verify", "--key-id", ec.KeyId, "--message", otherFile,
		"--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256", "--signature", ecSig)

	// RSA_2048 with RSASSA-PSS: openssl verifies it with the salt as long as
	// the digest.
	rsaSign := createKey("RSA_2048", "SIGN_VERIFY")
	pssSig := a.blob("Signature", "sign", "--key-id", rsaSign.KeyId, "--message", msgFile, "--message-type", "RAW",
		"--signing-algorithm", "RSASSA_PSS_SHA_256")
	if len(pssSig) != 256 {
		t.Errorf("RSA_2048 signature is %d bytes, want 256", len(pssSig))
	}
	a.file("pss-sig.bin", pssSig)
	publicKey(rsaSign, "rsa-sign-pub")
	pss := []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"}
	a.openssl(ossl, append([]string{"dgst", "-sha256", "-verify", "rsa-sign-pub.pem", "-signature", "pss-sig.bin"}, append(pss, "msg.bin")...)...)
	a.opensslFails(ossl, append([]string{"dgst", "-sha256", "-verify", "rsa-sign-pub.pem", "-signature", "pss-sig.bin"}, append(pss, "other.bin")...)...)

	// RSA_2048 ENCRYPT_DECRYPT: openssl encrypts under the public key with
	// OAEP and SHA-256 (for MGF1 too); KMS decrypts.
	rsaEnc := createKey("RSA_2048", "ENCRYPT_DECRYPT")
	pk = publicKey(rsaEnc, "rsa-enc-pub")
	if !slices.Equal(pk.EncryptionAlgorithms, []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}) || len(pk.SigningAlgorithms) != 0 {
		t.Errorf("get-public-key of an RSA ENCRYPT_DECRYPT key: EncryptionAlgorithms %v SigningAlgorithms %v", pk.EncryptionAlgorithms, pk.SigningAlgorithms)
	}
	secret := randBytes(t, 190) // the most OAEP-SHA-256 takes under RSA_2048
	a.file("secret.bin", secret)
	a.openssl(ossl, "pkeyutl", "-encrypt", "-pubin", "-inkey", "rsa-enc-pub.pem", "-in", "secret.bin", "-out", "oaep.bin",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	var dec cliDecrypt
	a.json(&dec, "decrypt", "--key-id", rsaEnc.KeyId, "--ciphertext-blob", "fileb://oaep.bin",
		"--encryption-algorithm", "RSAES_OAEP_SHA_256")
	if !bytes.Equal(dec.Plaintext, secret) || dec.KeyId != rsaEnc.Arn || dec.EncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
		t.Errorf("decrypt of openssl's OAEP ciphertext: %d bytes (same: %v), KeyId %q, algorithm %q",
			len(dec.Plaintext), bytes.Equal(dec.Plaintext, secret), dec.KeyId, dec.EncryptionAlgorithm)
	}

	// HMAC_256: generate-mac, then verify-mac of it; a changed message does
	// not verify.
	hm := createKey("HMAC_256", "GENERATE_VERIFY_MAC")
	var mac struct {
		Mac          []byte // base64 in JSON
		MacAlgorithm string
		KeyId        string
	}
	a.json(&mac, "generate-mac", "--key-id", hm.KeyId, "--message", msgFile, "--mac-algorithm", "HMAC_SHA_256")
	if len(mac.Mac) != 32 || mac.MacAlgorithm != "HMAC_SHA_256" || mac.KeyId != hm.Arn {
		t.Fatalf("generate-mac: %d-byte MAC, MacAlgorithm %q, KeyId %q", len(mac.Mac), mac.MacAlgorithm, mac.KeyId)
	}
	macFile := a.file("mac.bin", mac.Mac)
	var vm struct {
		MacValid     bool
		MacAlgorithm string
		KeyId        string
	}
	a.json(&vm, "verify-mac", "--key-id", hm.KeyId, "--message", msgFile, "--mac-algorithm", "HMAC_SHA_256", "--mac", macFile)
	if !vm.MacValid || vm.MacAlgorithm != "HMAC_SHA_256" || vm.KeyId != hm.Arn {
		t.Errorf("verify-mac: %+v", vm)
	}
	a.fails([]string{"KMSInvalidMacException"}, "verify-mac", "--key-id", hm.KeyId, "--message", otherFile,
		"--mac-algorithm", "HMAC_SHA_256", "--mac", macFile)

	// A data key pair: the encrypted private key decrypts to the plaintext
	// one, whose public half (per openssl) is the PublicKey returned.
	sym := createKey("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
	var pair struct {
		PrivateKeyCiphertextBlob []byte // base64 in JSON
		PrivateKeyPlaintext      []byte
		PublicKey                []byte
		KeyId                    string
		KeyPairSpec              string
	}
	a.json(&pair, "generate-data-key-pair", "--key-id", sym.KeyId, "--key-pair-spec", "ECC_NIST_P256",
		"--encryption-context", "purpose=pair")
	if len(pair.PrivateKeyCiphertextBlob) == 0 || len(pair.PrivateKeyPlaintext) == 0 || len(pair.PublicKey) == 0 ||
		pair.KeyId != sym.Arn || pair.KeyPairSpec != "ECC_NIST_P256" {
		t.Fatalf("generate-data-key-pair: KeyId %q KeyPairSpec %q, %d/%d/%d bytes of ciphertext/private/public", pair.KeyId,
			pair.KeyPairSpec, len(pair.PrivateKeyCiphertextBlob), len(pair.PrivateKeyPlaintext), len(pair.PublicKey))
	}
	dec = cliDecrypt{}
	a.json(&dec, "decrypt", "--ciphertext-blob", a.file("pair-ct.bin", pair.PrivateKeyCiphertextBlob),
		"--encryption-context", "purpose=pair")
	if !bytes.Equal(dec.Plaintext, pair.PrivateKeyPlaintext) || dec.KeyId != sym.Arn {
		t.Errorf("decrypt of PrivateKeyCiphertextBlob: KeyId %q, equals PrivateKeyPlaintext: %v", dec.KeyId, bytes.Equal(dec.Plaintext, pair.PrivateKeyPlaintext))
	}
	a.file("pair-priv.der", pair.PrivateKeyPlaintext)
	a.openssl(ossl, "pkey", "-inform", "DER", "-in", "pair-priv.der", "-pubout", "-outform", "DER", "-out", "pair-pub.der")
	if got := a.read("pair-pub.der"); !bytes.Equal(got, pair.PublicKey) {
		t.Errorf("the public half of PrivateKeyPlaintext (%x) is not PublicKey (%x)", got, pair.PublicKey)
	}

	// ML-KEM (this CLI's model predates Encapsulate and Decapsulate, and
	// drops the EncapsulationAlgorithms it does not know, but passes the
	// new key spec and usage through): a key whose public key
	// the standard library's crypto/mlkem takes, and a data key pair whose
	// private key, in PKCS#8 seed form, decapsulates what its public key
	// encapsulates.
	kem := createKey("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")
	var kemPub cliPublicKey
	a.json(&kemPub, "get-public-key", "--key-id", kem.KeyId)
	if kemPub.KeyId != kem.Arn || kemPub.KeyUsage != "ENCAPSULATE_DECAPSULATE" || kemPub.KeySpec != "ML_KEM_768" {
		t.Errorf("get-public-key of ML_KEM_768: %+v", kemPub)
	}
	if _, err := mlkem.NewEncapsulationKey768(cliSPKIKey(t, kemPub.PublicKey)); err != nil {
		t.Errorf("get-public-key of ML_KEM_768: crypto/mlkem refuses the key: %v", err)
	}
	pair.PrivateKeyPlaintext = nil
	a.json(&pair, "generate-data-key-pair", "--key-id", sym.KeyId, "--key-pair-spec", "ML_KEM_768")
	if pair.KeyPairSpec != "ML_KEM_768" || len(pair.PrivateKeyPlaintext) != 86 {
		t.Fatalf("generate-data-key-pair ML_KEM_768: KeyPairSpec %q, %d-byte private key", pair.KeyPairSpec, len(pair.PrivateKeyPlaintext))
	}
	var p8 struct {
		Version    int
		Algorithm  struct{ Algorithm asn1.ObjectIdentifier }
		PrivateKey []byte
	}
	var seed asn1.RawValue
	if _, err := asn1.Unmarshal(pair.PrivateKeyPlaintext, &p8); err != nil {
		t.Fatalf("ML-KEM PrivateKeyPlaintext is not PKCS#8: %v", err)
	}
	if _, err := asn1.Unmarshal(p8.PrivateKey, &seed); err != nil || seed.Tag != 0 || len(seed.Bytes) != 64 {
		t.Fatalf("ML-KEM PrivateKeyPlaintext does not hold a seed: %v", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.EncapsulationKey().Bytes(), cliSPKIKey(t, pair.PublicKey)) {
		t.Error("generate-data-key-pair ML_KEM_768: PublicKey is not the private key's")
	}
}

// cliSPKIKey returns the key bits of a DER SubjectPublicKeyInfo.
func cliSPKIKey(t *testing.T, der []byte) []byte {
	t.Helper()
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) != 0 {
		t.Fatalf("not a SubjectPublicKeyInfo: %v", err)
	}
	return spki.PublicKey.Bytes
}
