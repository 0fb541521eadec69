package e2e_test

// Asymmetric KMS keys end to end (reference §3, §4.6, §4.8, §5.2): RSA,
// NIST and secp256k1 ECC, Ed25519 and ML-DSA keys through the SDK against
// the real server. Every signature, ciphertext, public key, key pair and
// shared secret the server returns is checked by an implementation other
// than the server's: the openssl command, and in Go crypto/rsa,
// crypto/ecdsa, crypto/ecdh, crypto/ed25519, decred's secp256k1 and
// circl's ML-DSA, used from the public key alone. HMAC keys are in
// e2e_hmac_test.go. Helpers here are prefixed "as".

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

const (
	asSignVerify = types.KeyUsageTypeSignVerify
	asEncrypt    = types.KeyUsageTypeEncryptDecrypt
	asAgreement  = types.KeyUsageTypeKeyAgreement
	asMAC        = types.KeyUsageTypeGenerateVerifyMac
)

// ---- reference tables (§3.2, §3.3) -----------------------------------------

// asRSASigning is the RSA signing algorithm list in AWS's order (reference
// §3.2, from the botocore GetPublicKey example).
var asRSASigning = []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
	"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}

// asAlgorithms is reference §3.2: the one algorithm list that KeyMetadata
// and GetPublicKey carry for a key spec and usage; the others are absent.
func asAlgorithms(spec types.KeySpec, usage types.KeyUsageType) (enc, sig, mac, agree []string) {
	s := string(spec)
	switch usage {
	case asEncrypt:
		if spec == types.KeySpecSymmetricDefault {
			return []string{"SYMMETRIC_DEFAULT"}, nil, nil, nil
		}
		return []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}, nil, nil, nil
	case asMAC:
		return nil, nil, []string{"HMAC_SHA_" + strings.TrimPrefix(s, "HMAC_")}, nil
	case asAgreement:
		return nil, nil, nil, []string{"ECDH"}
	}
	switch {
	case strings.HasPrefix(s, "RSA_"):
		sig = asRSASigning
	case spec == types.KeySpecEccNistP256, spec == types.KeySpecEccSecgP256k1:
		sig = []string{"ECDSA_SHA_256"}
	case spec == types.KeySpecEccNistP384:
		sig = []string{"ECDSA_SHA_384"}
	case spec == types.KeySpecEccNistP521:
		sig = []string{"ECDSA_SHA_512"}
	case spec == types.KeySpecEccNistEdwards25519:
		sig = []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}
	case strings.HasPrefix(s, "ML_DSA_"):
		sig = []string{"ML_DSA_SHAKE_256"}
	}
	return nil, sig, nil, nil
}

// asInCMKSpecEnum reports whether the deprecated CustomerMasterKeySpec enum
// has the spec (reference §3.1: all but ML-DSA and Ed25519), so that AWS
// must echo it there.
func asInCMKSpecEnum(spec types.KeySpec) bool {
	return slices.Contains(types.CustomerMasterKeySpec("").Values(), types.CustomerMasterKeySpec(spec))
}

// asOAEPLimit is reference §3.3: the largest plaintext of each RSA key spec
// and encryption algorithm.
var asOAEPLimit = map[types.KeySpec]map[types.EncryptionAlgorithmSpec]int{
	types.KeySpecRsa2048: {types.EncryptionAlgorithmSpecRsaesOaepSha1: 214, types.EncryptionAlgorithmSpecRsaesOaepSha256: 190},
	types.KeySpecRsa3072: {types.EncryptionAlgorithmSpecRsaesOaepSha1: 342, types.EncryptionAlgorithmSpecRsaesOaepSha256: 318},
	types.KeySpecRsa4096: {types.EncryptionAlgorithmSpecRsaesOaepSha1: 470, types.EncryptionAlgorithmSpecRsaesOaepSha256: 446},
}

// Object identifiers of the public keys Go's x509 does not parse.
var (
	asOIDECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	asOIDSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	// FIPS 204 / RFC 9881: id-ml-dsa-44, -65, -87.
	asOIDMLDSA = map[types.KeySpec]asn1.ObjectIdentifier{
		types.KeySpecMlDsa44: {2, 16, 840, 1, 101, 3, 4, 3, 17},
		types.KeySpecMlDsa65: {2, 16, 840, 1, 101, 3, 4, 3, 18},
		types.KeySpecMlDsa87: {2, 16, 840, 1, 101, 3, 4, 3, 19},
	}
	asMLDSAScheme = map[types.KeySpec]sign.Scheme{
		types.KeySpecMlDsa44: mldsa44.Scheme(), types.KeySpecMlDsa65: mldsa65.Scheme(), types.KeySpecMlDsa87: mldsa87.Scheme(),
	}
)

// ---- openssl ---------------------------------------------------------------

// asOpenSSL returns the openssl command, the implementation these tests
// hold the server's output against. Without it a test fails in CI and is
// skipped elsewhere.
func asOpenSSL(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return p
}

// asRun runs openssl and returns its output, failing the test if it fails.
func asRun(t testing.TB, openssl string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(openssl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// asTemp writes b to a fresh file in dir and returns its path.
func asTemp(t testing.TB, dir, pattern string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func asReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asPEM converts a DER SubjectPublicKeyInfo to a PEM file with openssl,
// which thereby also accepts it.
func asPEM(t testing.TB, openssl, dir string, der []byte) string {
	t.Helper()
	in := asTemp(t, dir, "pub-*.der", der)
	out := in + ".pem"
	asRun(t, openssl, "pkey", "-pubin", "-inform", "DER", "-in", in, "-out", out)
	return out
}

// asOpenSSLDigest names alg's hash for openssl.
func asOpenSSLDigest(alg string) string {
	return "sha" + alg[len(alg)-3:]
}

// asOpenSSLVerify checks with openssl dgst that sig is alg's signature of
// msg under the public key in pemPath. RSASSA-PSS is checked with MGF1 of
// the same hash and a salt exactly the hash's length (reference §3.2).
func asOpenSSLVerify(t testing.TB, openssl, dir, pemPath, alg string, msg, sig []byte) {
	t.Helper()
	md := asOpenSSLDigest(alg)
	args := []string{"dgst", "-" + md, "-verify", pemPath, "-signature", asTemp(t, dir, "sig-*", sig)}
	if strings.HasPrefix(alg, "RSASSA_PSS_") {
		args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1", "-sigopt", "rsa_mgf1_md:"+md)
	}
	args = append(args, asTemp(t, dir, "msg-*", msg))
	out, err := exec.Command(openssl, args...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Verified OK")) {
		t.Errorf("openssl does not verify the %s signature: openssl %s: %v\n%s", alg, strings.Join(args, " "), err, out)
	}
}

// asOpenSSLPublicOf returns the DER public key openssl derives from a DER
// PKCS#8 private key.
func asOpenSSLPublicOf(t testing.TB, openssl, dir string, pkcs8 []byte) []byte {
	t.Helper()
	in := asTemp(t, dir, "priv-*.der", pkcs8)
	return asRun(t, openssl, "pkey", "-inform", "DER", "-in", in, "-pubout", "-outform", "DER")
}

// asOpenSSLKey generates a private key with openssl genpkey and returns its
// DER PKCS#8 (openssl pkcs8 -topk8: genpkey writes EC keys in SEC 1 form).
func asOpenSSLKey(t testing.TB, openssl, dir string, genpkeyArgs ...string) []byte {
	t.Helper()
	gen := filepath.Join(dir, fmt.Sprintf("gen-%x.pem", mustRandom(t, 6)))
	asRun(t, openssl, append(append([]string{"genpkey"}, genpkeyArgs...), "-out", gen)...)
	out := gen + ".p8.der"
	asRun(t, openssl, "pkcs8", "-topk8", "-nocrypt", "-in", gen, "-outform", "DER", "-out", out)
	der := asReadFile(t, out)
	var p asPKCS8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		t.Fatalf("openssl pkcs8 -topk8 did not write DER PKCS#8: %v", err)
	}
	return der
}

// ---- keys and metadata -----------------------------------------------------

func asStrs[T ~string](xs []T) []string {
	if xs == nil {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// asCheckList checks one algorithm list: absent when want is nil, else the
// same algorithms (in AWS's order for RSA keys, whose order is recorded).
func asCheckList(t testing.TB, what string, spec types.KeySpec, got, want []string) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("%s %s = %v, want absent", spec, what, got)
	case want == nil:
	case strings.HasPrefix(string(spec), "RSA_"):
		if !slices.Equal(got, want) {
			t.Errorf("%s %s = %v, want %v", spec, what, got, want)
		}
	default:
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s %s = %v, want %v", spec, what, got, want)
		}
	}
}

// asCheckMetadata checks KeyMetadata of a new asymmetric or HMAC key:
// spec, usage, origin and state, exactly the algorithm list of its usage,
// and no CurrentKeyMaterialId (reference §3.2, §5.1).
func asCheckMetadata(t testing.TB, m *types.KeyMetadata, spec types.KeySpec, usage types.KeyUsageType, origin types.OriginType) {
	t.Helper()
	if m.KeySpec != spec || m.KeyUsage != usage || m.Origin != origin || m.KeyManager != types.KeyManagerTypeCustomer || m.MultiRegion == nil || *m.MultiRegion {
		t.Errorf("KeyMetadata KeySpec %s KeyUsage %s Origin %s KeyManager %s MultiRegion %v; want %s %s %s CUSTOMER false",
			m.KeySpec, m.KeyUsage, m.Origin, m.KeyManager, m.MultiRegion, spec, usage, origin)
	}
	if asInCMKSpecEnum(spec) && string(m.CustomerMasterKeySpec) != string(spec) {
		t.Errorf("%s CustomerMasterKeySpec = %q, want the KeySpec", spec, m.CustomerMasterKeySpec)
	}
	wantState, wantEnabled := types.KeyStateEnabled, true
	if origin == types.OriginTypeExternal {
		wantState, wantEnabled = types.KeyStatePendingImport, false
	}
	if m.KeyState != wantState || m.Enabled != wantEnabled {
		t.Errorf("%s KeyState %s Enabled %v, want %s %v", spec, m.KeyState, m.Enabled, wantState, wantEnabled)
	}
	asCheckAlgorithms(t, m, spec, usage)
}

// asCheckAlgorithms checks that KeyMetadata has exactly the algorithm list
// of the key's usage and no CurrentKeyMaterialId.
func asCheckAlgorithms(t testing.TB, m *types.KeyMetadata, spec types.KeySpec, usage types.KeyUsageType) {
	t.Helper()
	if m.CurrentKeyMaterialId != nil {
		t.Errorf("%s %s key has CurrentKeyMaterialId %q; asymmetric and HMAC keys have none (reference §5.1)", spec, usage, *m.CurrentKeyMaterialId)
	}
	enc, sig, mac, agree := asAlgorithms(spec, usage)
	asCheckList(t, "EncryptionAlgorithms", spec, asStrs(m.EncryptionAlgorithms), enc)
	asCheckList(t, "SigningAlgorithms", spec, asStrs(m.SigningAlgorithms), sig)
	asCheckList(t, "MacAlgorithms", spec, asStrs(m.MacAlgorithms), mac)
	asCheckList(t, "KeyAgreementAlgorithms", spec, asStrs(m.KeyAgreementAlgorithms), agree)
}

// asCreate creates a key of spec and usage and checks its metadata.
func (e *kmsEnv) asCreate(t testing.TB, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	m := e.createKey(t, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	asCheckMetadata(t, m, spec, usage, types.OriginTypeAwsKms)
	return aws.ToString(m.KeyId)
}

// asCreateExternal creates an EXTERNAL key awaiting its material.
func (e *kmsEnv) asCreateExternal(t testing.TB, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	m := e.createKey(t, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: types.OriginTypeExternal})
	asCheckMetadata(t, m, spec, usage, types.OriginTypeExternal)
	return aws.ToString(m.KeyId)
}

// asPublicKey calls GetPublicKey on key id and checks everything but the
// key itself, which it returns.
func (e *kmsEnv) asPublicKey(t testing.TB, id string, spec types.KeySpec, usage types.KeyUsageType) []byte {
	t.Helper()
	out, err := e.client.GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetPublicKey %s: %v", spec, err)
	}
	if aws.ToString(out.KeyId) != e.keyARN(id) || out.KeySpec != spec || out.KeyUsage != usage {
		t.Errorf("GetPublicKey KeyId %s KeySpec %s KeyUsage %s, want %s %s %s", aws.ToString(out.KeyId), out.KeySpec, out.KeyUsage, e.keyARN(id), spec, usage)
	}
	if asInCMKSpecEnum(spec) && string(out.CustomerMasterKeySpec) != string(spec) {
		t.Errorf("GetPublicKey %s CustomerMasterKeySpec = %q", spec, out.CustomerMasterKeySpec)
	}
	enc, sig, _, agree := asAlgorithms(spec, usage)
	asCheckList(t, "GetPublicKey EncryptionAlgorithms", spec, asStrs(out.EncryptionAlgorithms), enc)
	asCheckList(t, "GetPublicKey SigningAlgorithms", spec, asStrs(out.SigningAlgorithms), sig)
	asCheckList(t, "GetPublicKey KeyAgreementAlgorithms", spec, asStrs(out.KeyAgreementAlgorithms), agree)
	if len(out.PublicKey) == 0 {
		t.Fatalf("GetPublicKey %s returned no PublicKey", spec)
	}
	return out.PublicKey
}

// asSPKI is a SubjectPublicKeyInfo read field by field.
type asSPKI struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

func asParseSPKI(t testing.TB, der []byte) asSPKI {
	t.Helper()
	var s asSPKI
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil || len(rest) != 0 || s.PublicKey.BitLength != 8*len(s.PublicKey.Bytes) {
		t.Fatalf("public key is not a DER SubjectPublicKeyInfo: %v (%d trailing bytes)", err, len(rest))
	}
	return s
}

// asParsePublic reads a DER public key of spec, independently of the
// server: x509 for RSA, NIST curves and Ed25519; the secp256k1 and ML-DSA
// SubjectPublicKeyInfo field by field, into decred's and circl's keys.
func asParsePublic(t testing.TB, spec types.KeySpec, der []byte) any {
	t.Helper()
	switch spec {
	case types.KeySpecEccSecgP256k1:
		s := asParseSPKI(t, der)
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(s.Algorithm.Parameters.FullBytes, &curve); err != nil || !s.Algorithm.Algorithm.Equal(asOIDECPublicKey) || !curve.Equal(asOIDSecp256k1) {
			t.Fatalf("secp256k1 public key algorithm %v parameters %x, want id-ecPublicKey with secp256k1", s.Algorithm.Algorithm, s.Algorithm.Parameters.FullBytes)
		}
		if len(s.PublicKey.Bytes) != 65 || s.PublicKey.Bytes[0] != 4 {
			t.Errorf("secp256k1 public key is %d bytes, want an uncompressed point (65 bytes)", len(s.PublicKey.Bytes))
		}
		pk, err := secp256k1.ParsePubKey(s.PublicKey.Bytes)
		if err != nil {
			t.Fatalf("secp256k1 public key: %v", err)
		}
		return pk
	case types.KeySpecMlDsa44, types.KeySpecMlDsa65, types.KeySpecMlDsa87:
		s := asParseSPKI(t, der)
		if !s.Algorithm.Algorithm.Equal(asOIDMLDSA[spec]) || len(s.Algorithm.Parameters.FullBytes) != 0 {
			t.Fatalf("%s public key algorithm %v parameters %x, want %v without parameters", spec, s.Algorithm.Algorithm, s.Algorithm.Parameters.FullBytes, asOIDMLDSA[spec])
		}
		scheme := asMLDSAScheme[spec]
		if len(s.PublicKey.Bytes) != scheme.PublicKeySize() {
			t.Fatalf("%s public key is %d bytes, want %d", spec, len(s.PublicKey.Bytes), scheme.PublicKeySize())
		}
		pk, err := scheme.UnmarshalBinaryPublicKey(s.PublicKey.Bytes)
		if err != nil {
			t.Fatalf("%s public key: %v", spec, err)
		}
		return pk
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("%s public key does not parse with crypto/x509: %v", spec, err)
	}
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		ok = fmt.Sprintf("RSA_%d", p.N.BitLen()) == string(spec)
	case *ecdsa.PublicKey:
		ok = p.Curve == asCurve(spec)
	case ed25519.PublicKey:
		ok = spec == types.KeySpecEccNistEdwards25519
	}
	if !ok {
		t.Fatalf("%s public key is a %T", spec, pub)
	}
	return pub
}

func asCurve(spec types.KeySpec) elliptic.Curve {
	switch spec {
	case types.KeySpecEccNistP256:
		return elliptic.P256()
	case types.KeySpecEccNistP384:
		return elliptic.P384()
	case types.KeySpecEccNistP521:
		return elliptic.P521()
	}
	return nil
}

// asHash is the hash of a signing algorithm: its name's suffix.
func asHash(alg string) crypto.Hash {
	switch alg[len(alg)-3:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	}
	return crypto.SHA512
}

func asDigest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// asVerifyLocal checks in Go, from the public key alone, that sig is alg's
// signature of msg: PKCS#1 v1.5 or PSS with a salt of exactly the hash's
// length for RSA, DER ECDSA for NIST curves and secp256k1.
func asVerifyLocal(pub any, alg string, msg, sig []byte) error {
	h := asHash(alg)
	d := asDigest(h, msg)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "RSASSA_PSS_") {
			return rsa.VerifyPSS(p, h, d, sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
		}
		return rsa.VerifyPKCS1v15(p, h, d, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, d, sig) {
			return errors.New("crypto/ecdsa: signature does not verify")
		}
		return nil
	case *secp256k1.PublicKey:
		s, err := k1ecdsa.ParseDERSignature(sig)
		if err != nil {
			return fmt.Errorf("secp256k1 signature is not DER: %w", err)
		}
		if !s.Verify(d, p) {
			return errors.New("secp256k1: signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("no local verifier for %T", pub)
}

// asBothS returns a DER ECDSA signature and the same signature with S
// replaced by n-S, which ECDSA accepts just the same.
func asBothS(t testing.TB, sig []byte, n *big.Int) [][]byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		t.Fatalf("ECDSA signature is not DER: %v", err)
	}
	other, err := asn1.Marshal(struct{ R, S *big.Int }{rs.R, new(big.Int).Sub(n, rs.S)})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{sig, other}
}

// asSign signs through the SDK and checks the response's KeyId and
// SigningAlgorithm.
func (e *kmsEnv) asSign(t testing.TB, id, alg string, mt types.MessageType, msg []byte) []byte {
	t.Helper()
	out, err := e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: msg, MessageType: mt,
		SigningAlgorithm: types.SigningAlgorithmSpec(alg)})
	if err != nil {
		t.Fatalf("Sign %s %s: %v", alg, mt, err)
	}
	if aws.ToString(out.KeyId) != e.keyARN(id) || string(out.SigningAlgorithm) != alg || len(out.Signature) == 0 {
		t.Errorf("Sign KeyId %s SigningAlgorithm %s, %d-byte signature; want %s %s", aws.ToString(out.KeyId), out.SigningAlgorithm, len(out.Signature), e.keyARN(id), alg)
	}
	return out.Signature
}

func (e *kmsEnv) asVerify(id, alg string, mt types.MessageType, msg, sig []byte) (*kms.VerifyOutput, error) {
	return e.client.Verify(context.Background(), &kms.VerifyInput{KeyId: aws.String(id), Message: msg, MessageType: mt,
		Signature: sig, SigningAlgorithm: types.SigningAlgorithmSpec(alg)})
}

// asVerifyOK checks that KMS Verify accepts a signature.
func (e *kmsEnv) asVerifyOK(t testing.TB, id, alg string, mt types.MessageType, msg, sig []byte) {
	t.Helper()
	out, err := e.asVerify(id, alg, mt, msg, sig)
	if err != nil {
		t.Errorf("Verify %s %s of a good signature: %v", alg, mt, err)
		return
	}
	if !out.SignatureValid || aws.ToString(out.KeyId) != e.keyARN(id) || string(out.SigningAlgorithm) != alg {
		t.Errorf("Verify: SignatureValid %v KeyId %s SigningAlgorithm %s", out.SignatureValid, aws.ToString(out.KeyId), out.SigningAlgorithm)
	}
}

// asInvalidSignature checks KMS Verify refusing a signature: KMSInvalidSignatureException, never SignatureValid false.
func (e *kmsEnv) asInvalidSignature(t testing.TB, id, alg string, mt types.MessageType, msg, sig []byte) {
	t.Helper()
	out, err := e.asVerify(id, alg, mt, msg, sig)
	if err == nil {
		t.Errorf("Verify %s of a bad signature succeeded with SignatureValid %v", alg, out.SignatureValid)
		return
	}
	expectAPIError(t, err, "KMSInvalidSignatureException", "")
	expectTyped[*types.KMSInvalidSignatureException](t, err)
}

// asRawError sends op with a JSON body (blobs as []byte, which encoding/json
// writes in base64) and checks the error; msg "-" means no message member.
func (e *kmsEnv) asRawError(t testing.TB, op string, body map[string]any, typ, msg string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	expectRawError(t, e.rawCall(t, op, string(b)), http.StatusBadRequest, typ, msg)
}

// asImportOpenSSL imports material into an EXTERNAL key with
// RSA_AES_KEY_WRAP_SHA_256 the way AWS documents it, with openssl: a
// fresh AES-256 key encrypted under the wrapping public key with
// RSAES-OAEP SHA-256, followed by the material under AES key wrap with
// padding (RFC 5649).
func (e *kmsEnv) asImportOpenSSL(t testing.TB, openssl, id string, material []byte) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.importParams(t, id, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048)
	dir := t.TempDir()
	kek := mustRandom(t, 32)
	wrappedKEK := filepath.Join(dir, "kek.wrapped")
	asRun(t, openssl, "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", asTemp(t, dir, "wrapping-*.der", p.PublicKey),
		"-in", asTemp(t, dir, "kek-*", kek), "-out", wrappedKEK,
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	wrappedMaterial := filepath.Join(dir, "material.wrapped")
	asRun(t, openssl, "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6",
		"-in", asTemp(t, dir, "material-*", material), "-out", wrappedMaterial)
	return e.client.ImportKeyMaterial(context.Background(), &kms.ImportKeyMaterialInput{
		KeyId: aws.String(id), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: append(asReadFile(t, wrappedKEK), asReadFile(t, wrappedMaterial)...),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire,
	})
}

// ---- private keys never leave ----------------------------------------------

// asNewEnv is newKMSEnv whose cleanup, besides the harness's check for
// whole key material, looks for the private parts of every key (RSA
// exponent and primes, EC scalars, Ed25519 and ML-DSA seeds and ML-DSA's
// secret K) in every response, also inside each base64, hex or PEM string
// of a JSON body, where a leak embedded in a larger blob would hide from a
// search of the body's bytes.
func asNewEnv(t testing.TB) *kmsEnv {
	t.Helper()
	e := newKMSEnv(t)
	asWatchLeaks(t, e)
	return e
}

// asWatchLeaks registers asNewEnv's check on e. Registered after the
// environment's own cleanups, it runs before the store closes.
func asWatchLeaks(t testing.TB, e *kmsEnv) {
	t.Helper()
	t.Cleanup(func() {
		for _, leak := range asFindLeaks(asPrivateParts(e.materials(t)), e.asBodies()) {
			t.Error(leak)
		}
	})
}

func (e *kmsEnv) asBodies() [][]byte {
	e.guard.mu.Lock()
	defer e.guard.mu.Unlock()
	return slices.Clone(e.guard.bodies)
}

// asPKCS8 and asECPrivateKey read PKCS#8 with any curve, which x509 does
// not (secp256k1).
type asPKCS8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

type asECPrivateKey struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// asK1Scalar returns the private scalar of a secp256k1 PKCS#8 key, or nil.
func asK1Scalar(der []byte) []byte {
	var p asPKCS8
	var curve asn1.ObjectIdentifier
	var ec asECPrivateKey
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 || !p.Algorithm.Algorithm.Equal(asOIDECPublicKey) {
		return nil
	}
	if _, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(asOIDSecp256k1) {
		return nil
	}
	if rest, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil || len(rest) != 0 {
		return nil
	}
	return ec.PrivateKey
}

// asMLKEMSeed returns the seed of an ML-KEM private key in PKCS#8 seed
// form, or nil.
func asMLKEMSeed(der []byte) []byte {
	var p asPKCS8
	var seed asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 || len(p.Algorithm.Algorithm) != 9 ||
		!slices.Equal(p.Algorithm.Algorithm[:8], []int{2, 16, 840, 1, 101, 3, 4, 4}) {
		return nil
	}
	if rest, err := asn1.Unmarshal(p.PrivateKey, &seed); err != nil || len(rest) != 0 || len(seed.Bytes) != 64 {
		return nil
	}
	return seed.Bytes
}

// asPrivateParts returns each material and the secret parts in it.
func asPrivateParts(materials [][]byte) [][]byte {
	var out [][]byte
	add := func(b []byte) {
		if b = bytes.TrimLeft(b, "\x00"); len(b) >= 16 {
			out = append(out, b)
		}
	}
	for _, m := range materials {
		add(m)
		if k, err := x509.ParsePKCS8PrivateKey(m); err == nil {
			switch k := k.(type) {
			case *rsa.PrivateKey:
				add(k.D.Bytes())
				for _, p := range k.Primes {
					add(p.Bytes())
				}
				if k.Precomputed.Dp != nil {
					add(k.Precomputed.Dp.Bytes())
					add(k.Precomputed.Dq.Bytes())
					add(k.Precomputed.Qinv.Bytes())
				}
			case *ecdsa.PrivateKey:
				if ek, err := k.ECDH(); err == nil {
					add(ek.Bytes())
				}
			case ed25519.PrivateKey:
				add(k.Seed())
			}
			continue
		}
		if d := asK1Scalar(m); d != nil {
			add(d)
			continue
		}
		if seed := asMLKEMSeed(m); seed != nil {
			add(seed)
			continue
		}
		if len(m) == 32 { // perhaps an ML-DSA seed: also its secret K
			for _, s := range asMLDSAScheme {
				_, sk := s.DeriveKey(m)
				if b, err := sk.MarshalBinary(); err == nil {
					add(b[32:64])
				}
			}
		}
	}
	return out
}

// asDecodedStrings returns what the string values of a JSON body decode
// to as base64, hex or PEM.
func asDecodedStrings(body []byte) [][]byte {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out [][]byte
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(v); err == nil {
					out = append(out, b)
				}
			}
			if b, err := hex.DecodeString(v); err == nil {
				out = append(out, b)
			}
			for rest := []byte(v); ; {
				var block *pem.Block
				if block, rest = pem.Decode(rest); block == nil {
					break
				}
				out = append(out, block.Bytes)
			}
		}
	}
	walk(v)
	return out
}

// asFindLeaks reports each body that holds a secret, raw or hex, in its
// bytes or in a decoded string.
func asFindLeaks(secrets, bodies [][]byte) []string {
	var leaks []string
	for i, body := range bodies {
		views := append([][]byte{body, bytes.ToLower(body)}, asDecodedStrings(body)...)
	secrets:
		for _, s := range secrets {
			hx := []byte(hex.EncodeToString(s))
			for _, v := range views {
				if bytes.Contains(v, s) || bytes.Contains(v, hx) {
					leaks = append(leaks, fmt.Sprintf("response %d contains %d bytes of private key material (%x...): %.200q", i, len(s), s[:4], body))
					break secrets
				}
			}
		}
	}
	return leaks
}

// ---- tests -----------------------------------------------------------------

// Every allowed key spec and usage pair (RSA_4096 is created, with the
// same checks, by the signing and encryption tests: it is slow to make),
// and the pairs AWS refuses.
func TestE2EAsymCreateKeyEveryPair(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	pairs := []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecRsa2048, asEncrypt}, {types.KeySpecRsa2048, asSignVerify},
		{types.KeySpecRsa3072, asEncrypt}, {types.KeySpecRsa3072, asSignVerify},
		{types.KeySpecEccNistP256, asSignVerify}, {types.KeySpecEccNistP256, asAgreement},
		{types.KeySpecEccNistP384, asSignVerify}, {types.KeySpecEccNistP384, asAgreement},
		{types.KeySpecEccNistP521, asSignVerify}, {types.KeySpecEccNistP521, asAgreement},
		{types.KeySpecEccSecgP256k1, asSignVerify}, {types.KeySpecEccNistEdwards25519, asSignVerify},
		{types.KeySpecMlDsa44, asSignVerify}, {types.KeySpecMlDsa65, asSignVerify}, {types.KeySpecMlDsa87, asSignVerify},
	}
	t.Run("allowed", func(t *testing.T) {
		for _, p := range pairs {
			t.Run(string(p.spec)+"/"+string(p.usage), func(t *testing.T) {
				t.Parallel()
				id := e.asCreate(t, p.spec, p.usage)
				// DescribeKey reads the key back from the store.
				asCheckMetadata(t, e.describe(t, id), p.spec, p.usage, types.OriginTypeAwsKms)
				der := e.asPublicKey(t, id, p.spec, p.usage)
				asParsePublic(t, p.spec, der)
				if !strings.HasPrefix(string(p.spec), "ML_DSA_") { // openssl 3.0 has no ML-DSA
					asPEM(t, openssl, t.TempDir(), der)
				}
			})
		}
	})
	// The deprecated CustomerMasterKeySpec still names the spec.
	m := e.createKey(t, &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecEccNistP256, KeyUsage: asSignVerify})
	asCheckMetadata(t, m, types.KeySpecEccNistP256, asSignVerify, types.OriginTypeAwsKms)
	_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecEccNistP256, KeySpec: types.KeySpecEccNistP256, KeyUsage: asSignVerify})
	expectAPIErrorCode(t, err, "ValidationException")

	before := len(e.listAllKeys(t))

	for _, c := range []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecRsa2048, asAgreement}, {types.KeySpecRsa3072, asMAC},
		{types.KeySpecEccNistP256, asEncrypt}, {types.KeySpecEccNistP384, asMAC}, {types.KeySpecEccNistP521, asEncrypt},
		{types.KeySpecEccSecgP256k1, asAgreement}, {types.KeySpecEccSecgP256k1, asEncrypt},
		{types.KeySpecEccNistEdwards25519, asAgreement}, {types.KeySpecEccNistEdwards25519, asEncrypt},
		{types.KeySpecMlDsa44, asEncrypt}, {types.KeySpecMlDsa65, asAgreement}, {types.KeySpecMlDsa87, asMAC},
		{types.KeySpecHmac224, asSignVerify}, {types.KeySpecHmac256, asEncrypt}, {types.KeySpecHmac384, asAgreement},
		{types.KeySpecSymmetricDefault, asSignVerify}, {types.KeySpecSymmetricDefault, asMAC},
	} {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: c.usage})
		expectAPIError(t, err, "ValidationException", fmt.Sprintf("KeyUsage %s is not compatible with KeySpec %s", c.usage, c.spec))
	}
	for _, spec := range []types.KeySpec{types.KeySpecRsa2048, types.KeySpecRsa3072, types.KeySpecRsa4096,
		types.KeySpecEccNistP256, types.KeySpecEccNistP384, types.KeySpecEccNistP521, types.KeySpecEccSecgP256k1,
		types.KeySpecEccNistEdwards25519, types.KeySpecMlDsa44, types.KeySpecMlDsa65, types.KeySpecMlDsa87,
		types.KeySpecHmac224, types.KeySpecHmac256, types.KeySpecHmac384, types.KeySpecHmac512} {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec})
		expectAPIError(t, err, "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
	}
	if after := len(e.listAllKeys(t)); after != before {
		t.Errorf("refused CreateKey calls changed the number of keys from %d to %d", before, after)
	}

	// GetPublicKey has nothing to return for symmetric and HMAC keys.
	for _, id := range []string{e.newKey(t), e.asCreate(t, types.KeySpecHmac256, asMAC)} {
		_, err := e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		expectTyped[*types.UnsupportedOperationException](t, err)
	}
}

// Sign with every algorithm of every RSA and ECDSA key spec, RAW and
// DIGEST; openssl, Go and KMS Verify each accept every signature.
func TestE2EAsymSignVerifyOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	for _, spec := range []types.KeySpec{types.KeySpecRsa2048, types.KeySpecRsa3072, types.KeySpecRsa4096,
		types.KeySpecEccNistP256, types.KeySpecEccNistP384, types.KeySpecEccNistP521, types.KeySpecEccSecgP256k1} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, spec, asSignVerify)
			der := e.asPublicKey(t, id, spec, asSignVerify)
			pub := asParsePublic(t, spec, der)
			dir := t.TempDir()
			pemPath := asPEM(t, openssl, dir, der)
			raw := []byte("a message signed as it is, with " + string(spec))
			hashed := []byte("a message whose digest is signed, with " + string(spec))
			_, sigAlgs, _, _ := asAlgorithms(spec, asSignVerify)
			for _, alg := range sigAlgs {
				digest := asDigest(asHash(alg), hashed)
				for _, c := range []struct {
					mt       types.MessageType
					sent     []byte // what goes to Sign
					original []byte // what the signature is of
				}{
					{types.MessageTypeRaw, raw, raw},
					{types.MessageTypeDigest, digest, hashed},
				} {
					sig := e.asSign(t, id, alg, c.mt, c.sent)
					if err := asVerifyLocal(pub, alg, c.original, sig); err != nil {
						t.Errorf("%s %s: Go does not verify the signature: %v", alg, c.mt, err)
					}
					asOpenSSLVerify(t, openssl, dir, pemPath, alg, c.original, sig)
					e.asVerifyOK(t, id, alg, c.mt, c.sent, sig)
				}
			}
		})
	}
}

// Ed25519: ED25519_SHA_512 is pure Ed25519 of a RAW message (RFC 8032),
// ED25519_PH_SHA_512 is Ed25519ph of the 64-byte DIGEST it is given.
func TestE2EAsymSignEd25519(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	spec := types.KeySpecEccNistEdwards25519
	id := e.asCreate(t, spec, asSignVerify)
	der := e.asPublicKey(t, id, spec, asSignVerify)
	pub := asParsePublic(t, spec, der).(ed25519.PublicKey)
	dir := t.TempDir()
	pemPath := asPEM(t, openssl, dir, der)

	for _, msg := range [][]byte{[]byte("an Ed25519 message"), bytes.Repeat([]byte{0xa5}, 4096)} {
		sig := e.asSign(t, id, "ED25519_SHA_512", types.MessageTypeRaw, msg)
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
			t.Errorf("ED25519_SHA_512: crypto/ed25519 does not verify the %d-byte signature", len(sig))
		}
		out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pemPath, "-rawin",
			"-in", asTemp(t, dir, "msg-*", msg), "-sigfile", asTemp(t, dir, "sig-*", sig)).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Signature Verified Successfully")) {
			t.Errorf("openssl pkeyutl -verify -rawin does not verify ED25519_SHA_512: %v\n%s", err, out)
		}
		e.asVerifyOK(t, id, "ED25519_SHA_512", types.MessageTypeRaw, msg, sig)
		e.asInvalidSignature(t, id, "ED25519_SHA_512", types.MessageTypeRaw, flipLastBit(msg), sig)
	}

	// For ED25519_PH_SHA_512 the DIGEST is a SHA-512 of the message, and
	// KMS still applies Ed25519ph's SHA-512 prehash to it (reference
	// §3.2): the signature is Ed25519ph of the digest, not of the message.
	msg := []byte("a message signed through its SHA-512")
	d := sha512.Sum512(msg)
	ph := e.asSign(t, id, "ED25519_PH_SHA_512", types.MessageTypeDigest, d[:])
	dd := sha512.Sum512(d[:])
	if err := ed25519.VerifyWithOptions(pub, dd[:], ph, &ed25519.Options{Hash: crypto.SHA512}); err != nil {
		t.Errorf("ED25519_PH_SHA_512: crypto/ed25519 does not verify the signature as Ed25519ph of the digest: %v", err)
	}
	if ed25519.VerifyWithOptions(pub, d[:], ph, &ed25519.Options{Hash: crypto.SHA512}) == nil {
		t.Errorf("ED25519_PH_SHA_512 signature is Ed25519ph of the message: the digest was not hashed again")
	}
	if ed25519.Verify(pub, msg, ph) || ed25519.Verify(pub, d[:], ph) {
		t.Errorf("ED25519_PH_SHA_512 signature is pure Ed25519, not Ed25519ph")
	}
	e.asVerifyOK(t, id, "ED25519_PH_SHA_512", types.MessageTypeDigest, d[:], ph)
	e.asInvalidSignature(t, id, "ED25519_PH_SHA_512", types.MessageTypeDigest, flipLastBit(d[:]), ph)

	// Each algorithm takes one message type; a DIGEST is a SHA-512.
	_, err := e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: d[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: "ED25519_SHA_512"})
	expectAPIErrorCode(t, err, "ValidationException")
	_, err = e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: msg, MessageType: types.MessageTypeRaw, SigningAlgorithm: "ED25519_PH_SHA_512"})
	expectAPIErrorCode(t, err, "ValidationException")
	_, err = e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: d[:32], MessageType: types.MessageTypeDigest, SigningAlgorithm: "ED25519_PH_SHA_512"})
	expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ED25519_PH_SHA_512.")
	_, err = e.asVerify(id, "ED25519_PH_SHA_512", types.MessageTypeDigest, d[:32], ph)
	expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ED25519_PH_SHA_512.")
	_, err = e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: msg, SigningAlgorithm: "ECDSA_SHA_256"})
	expectAPIErrorCode(t, err, "InvalidKeyUsageException")
}

// ML-DSA: ML_DSA_SHAKE_256 signatures of RAW messages verify with circl
// from the SubjectPublicKeyInfo alone (FIPS 204, empty context).
func TestE2EAsymSignMLDSA(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	for _, spec := range []types.KeySpec{types.KeySpecMlDsa44, types.KeySpecMlDsa65, types.KeySpecMlDsa87} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, spec, asSignVerify)
			pub := asParsePublic(t, spec, e.asPublicKey(t, id, spec, asSignVerify)).(sign.PublicKey)
			scheme := asMLDSAScheme[spec]
			for _, msg := range [][]byte{[]byte("an ML-DSA message"), bytes.Repeat([]byte{7}, 4096)} {
				sig := e.asSign(t, id, "ML_DSA_SHAKE_256", types.MessageTypeRaw, msg)
				if len(sig) != scheme.SignatureSize() {
					t.Errorf("%s signature is %d bytes, want %d", spec, len(sig), scheme.SignatureSize())
				}
				if !scheme.Verify(pub, msg, sig, nil) {
					t.Errorf("%s: circl does not verify the signature", spec)
				}
				if scheme.Verify(pub, append(bytes.Clone(msg), 1), sig, nil) {
					t.Errorf("%s: circl verifies the signature over another message", spec)
				}
				e.asVerifyOK(t, id, "ML_DSA_SHAKE_256", types.MessageTypeRaw, msg, sig)
				e.asInvalidSignature(t, id, "ML_DSA_SHAKE_256", types.MessageTypeRaw, flipLastBit(msg), sig)
			}
			d := sha256.Sum256([]byte("x"))
			_, err := e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: d[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: "ML_DSA_SHAKE_256"})
			expectAPIErrorCode(t, err, "ValidationException")
			_, err = e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: []byte("x"), SigningAlgorithm: "ED25519_SHA_512"})
			expectAPIErrorCode(t, err, "InvalidKeyUsageException")

			// EXTERNAL_MU: a μ of the wrong size is a validation error; a
			// μ the caller computed signs the message it stands for, as
			// one RAW signature (ML-DSA signs deterministically here).
			// Verify takes no μ: the implementation verifies messages
			// only (README).
			m := []byte("an ML-DSA message")
			mu := externalMu(t, pub, m)
			for _, bad := range [][]byte{mu[:32], append(bytes.Clone(mu), 0)} {
				_, err = e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(id), Message: bad, MessageType: types.MessageTypeExternalMu, SigningAlgorithm: "ML_DSA_SHAKE_256"})
				expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ML_DSA_SHAKE_256.")
			}
			muSig := e.asSign(t, id, "ML_DSA_SHAKE_256", types.MessageTypeExternalMu, mu)
			if !scheme.Verify(pub, m, muSig, nil) {
				t.Errorf("%s: circl does not verify the EXTERNAL_MU signature over the message of the μ", spec)
			}
			if scheme.Verify(pub, flipLastBit(m), muSig, nil) {
				t.Errorf("%s: circl verifies the EXTERNAL_MU signature over another message", spec)
			}
			if raw := e.asSign(t, id, "ML_DSA_SHAKE_256", types.MessageTypeRaw, m); !bytes.Equal(raw, muSig) {
				t.Errorf("%s: the RAW signature of a message differs from the EXTERNAL_MU signature of its μ", spec)
			}
			e.asVerifyOK(t, id, "ML_DSA_SHAKE_256", types.MessageTypeRaw, m, muSig)
			_, err = e.client.Verify(context.Background(), &kms.VerifyInput{KeyId: aws.String(id), Message: mu, MessageType: types.MessageTypeExternalMu,
				Signature: muSig, SigningAlgorithm: "ML_DSA_SHAKE_256"})
			expectAPIError(t, err, "UnsupportedOperationException", "MessageType EXTERNAL_MU is not supported by this server for Verify.")
		})
	}
	// EXTERNAL_MU is for ML-DSA keys only.
	ec := e.asCreate(t, types.KeySpecEccNistP256, asSignVerify)
	_, err := e.client.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(ec), Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu, SigningAlgorithm: "ECDSA_SHA_256"})
	expectAPIError(t, err, "ValidationException", "MessageType EXTERNAL_MU is not valid for algorithm ECDSA_SHA_256.")
}

// externalMu computes μ = SHAKE256(tr || 0x00 || 0x00 || msg, 64) with
// tr = SHAKE256(pk, 64): the message representative of FIPS 204 section
// 6.2 for an empty context, as a caller of EXTERNAL_MU computes it.
func externalMu(t testing.TB, pub sign.PublicKey, msg []byte) []byte {
	t.Helper()
	raw, err := pub.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tr := sha3.SumSHAKE256(raw, 64)
	h := sha3.NewSHAKE256()
	h.Write(tr)
	h.Write([]byte{0, 0})
	h.Write(msg)
	mu := make([]byte, 64)
	h.Read(mu)
	return mu
}

// The Verify API's answers and Sign's refusals (reference §4.8).
func TestE2EAsymVerifyAndSignErrors(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	p256 := e.asCreate(t, types.KeySpecEccNistP256, asSignVerify)
	arn := e.keyARN(p256)
	pub := asParsePublic(t, types.KeySpecEccNistP256, e.asPublicKey(t, p256, types.KeySpecEccNistP256, asSignVerify))
	const alg = "ECDSA_SHA_256"
	msg := []byte("the signed message")
	digest := asDigest(crypto.SHA256, msg)

	// A message and its digest are the same message, both ways.
	rawSig := e.asSign(t, p256, alg, types.MessageTypeRaw, msg)
	e.asVerifyOK(t, p256, alg, types.MessageTypeRaw, msg, rawSig)
	e.asVerifyOK(t, p256, alg, types.MessageTypeDigest, digest, rawSig)
	e.asVerifyOK(t, p256, alg, "", msg, rawSig) // MessageType defaults to RAW
	digestSig := e.asSign(t, p256, alg, types.MessageTypeDigest, digest)
	e.asVerifyOK(t, p256, alg, types.MessageTypeRaw, msg, digestSig)
	if err := asVerifyLocal(pub, alg, msg, digestSig); err != nil {
		t.Errorf("DIGEST signature: %v", err)
	}
	// A digest signed as RAW is hashed twice: it does not verify as DIGEST.
	twice := e.asSign(t, p256, alg, types.MessageTypeRaw, digest)
	e.asInvalidSignature(t, p256, alg, types.MessageTypeDigest, digest, twice)

	// A signature that does not verify is KMSInvalidSignatureException
	// with no message.
	other := e.asCreate(t, types.KeySpecEccNistP256, asSignVerify)
	otherSig := e.asSign(t, other, alg, types.MessageTypeRaw, msg)
	mid := bytes.Clone(rawSig)
	mid[len(mid)/2] ^= 0x10
	for name, c := range map[string]struct{ msg, sig []byte }{
		"wrong message":         {[]byte("another message"), rawSig},
		"altered signature":     {msg, mid},
		"last bit flipped":      {msg, flipLastBit(rawSig)},
		"another key's":         {msg, otherSig},
		"not a DER signature":   {msg, []byte("garbage")},
		"truncated":             {msg, rawSig[:len(rawSig)-1]},
		"signature of a digest": {digest, digestSig},
	} {
		t.Run(name, func(t *testing.T) {
			e.asInvalidSignature(t, p256, alg, types.MessageTypeRaw, c.msg, c.sig)
		})
	}
	e.asRawError(t, "Verify", map[string]any{"KeyId": p256, "Message": []byte("another message"), "Signature": rawSig, "SigningAlgorithm": alg},
		"KMSInvalidSignatureException", "-")

	// A DIGEST must be the hash's length.
	for _, n := range []int{31, 33, 48, 64} {
		_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: mustRandom(t, n), MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
		expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
		_, err = e.asVerify(p256, alg, types.MessageTypeDigest, mustRandom(t, n), rawSig)
		expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
	}

	// An algorithm of another spec.
	for _, wrong := range []string{"ECDSA_SHA_384", "ECDSA_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256", "ED25519_SHA_512", "ML_DSA_SHAKE_256"} {
		_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpec(wrong)})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		expectTyped[*types.InvalidKeyUsageException](t, err)
		_, err = e.asVerify(p256, wrong, types.MessageTypeRaw, msg, rawSig)
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
	}

	// Keys of other usages.
	for _, c := range []struct {
		id, usage string
	}{
		{e.newKey(t), "ENCRYPT_DECRYPT"},
		{e.asCreate(t, types.KeySpecEccNistP256, asAgreement), "KEY_AGREEMENT"},
		{e.asCreate(t, types.KeySpecHmac256, asMAC), "GENERATE_VERIFY_MAC"},
	} {
		_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(c.id), Message: msg, SigningAlgorithm: alg})
		expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for Sign.")
		_, err = e.asVerify(c.id, alg, types.MessageTypeRaw, msg, rawSig)
		expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for Verify.")
	}

	// Message size: 1 to 4096 bytes, Coral messages (the SDK does not
	// check lengths, so these come from the server).
	if _, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: make([]byte, 4096), SigningAlgorithm: alg}); err != nil {
		t.Errorf("Sign of 4096 bytes: %v", err)
	}
	tooLong := "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"
	_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: make([]byte, 4097), SigningAlgorithm: alg})
	expectAPIError(t, err, "ValidationException", tooLong)
	_, err = e.asVerify(p256, alg, types.MessageTypeRaw, make([]byte, 4097), rawSig)
	expectAPIError(t, err, "ValidationException", tooLong)
	e.asRawError(t, "Sign", map[string]any{"KeyId": p256, "Message": make([]byte, 4097), "SigningAlgorithm": alg}, "ValidationException", tooLong)
	_, err = e.asVerify(p256, alg, types.MessageTypeRaw, msg, make([]byte, 6145))
	expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'signature' failed to satisfy constraint: Member must have length less than or equal to 6144")
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: []byte{}, SigningAlgorithm: alg})
	expectAPIError(t, err, "ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1")
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: msg, SigningAlgorithm: "ECDSA_SHA_1"})
	expectAPIErrorPrefix(t, err, "ValidationException", "1 validation error detected: Value 'ECDSA_SHA_1' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [")

	// Aliases, DryRun.
	e.createAlias(t, "alias/signer", p256)
	for _, ref := range []string{"alias/signer", e.aliasARN("alias/signer"), arn} {
		out, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(ref), Message: msg, SigningAlgorithm: alg})
		if err != nil {
			t.Errorf("Sign through %s: %v", ref, err)
			continue
		}
		if aws.ToString(out.KeyId) != arn {
			t.Errorf("Sign through %s: KeyId %s, want the key ARN", ref, aws.ToString(out.KeyId))
		}
		if err := asVerifyLocal(pub, alg, msg, out.Signature); err != nil {
			t.Errorf("Sign through %s: %v", ref, err)
		}
		if _, err := e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(ref)}); err != nil {
			t.Errorf("GetPublicKey through %s: %v", ref, err)
		}
	}
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: msg, SigningAlgorithm: alg, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")

	// Disabled, then pending deletion (reference §4.4).
	e.disable(t, p256)
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: msg, SigningAlgorithm: alg})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	expectTyped[*types.DisabledException](t, err)
	_, err = e.asVerify(p256, alg, types.MessageTypeRaw, msg, rawSig)
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	_, err = e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(p256)})
	expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(p256)}); err != nil {
		t.Fatal(err)
	}
	e.asVerifyOK(t, p256, alg, types.MessageTypeRaw, msg, rawSig)
	e.scheduleDeletion(t, p256, 7)
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(p256), Message: msg, SigningAlgorithm: alg})
	expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
}

// RSA encryption: openssl encrypts with the public key and KMS decrypts;
// KMS round trips; the plaintext limits of reference §3.3; RSA ciphertexts
// take no encryption context and need KeyId and EncryptionAlgorithm.
func TestE2EAsymRSAEncryption(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	for _, spec := range []types.KeySpec{types.KeySpecRsa2048, types.KeySpecRsa3072, types.KeySpecRsa4096} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, spec, asEncrypt)
			arn := e.keyARN(id)
			der := e.asPublicKey(t, id, spec, asEncrypt)
			pub := asParsePublic(t, spec, der).(*rsa.PublicKey)
			dir := t.TempDir()
			pemPath := asPEM(t, openssl, dir, der)
			for _, alg := range []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256} {
				md := map[types.EncryptionAlgorithmSpec]string{types.EncryptionAlgorithmSpecRsaesOaepSha1: "sha1", types.EncryptionAlgorithmSpecRsaesOaepSha256: "sha256"}[alg]
				max := asOAEPLimit[spec][alg]
				decrypt := func(ct []byte) []byte {
					t.Helper()
					out, err := e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: ct, EncryptionAlgorithm: alg})
					if err != nil {
						t.Fatalf("Decrypt %s: %v", alg, err)
					}
					if aws.ToString(out.KeyId) != arn || out.EncryptionAlgorithm != alg || out.KeyMaterialId != nil {
						t.Errorf("Decrypt KeyId %s EncryptionAlgorithm %s KeyMaterialId %v; want %s %s and no KeyMaterialId",
							aws.ToString(out.KeyId), out.EncryptionAlgorithm, out.KeyMaterialId, arn, alg)
					}
					return out.Plaintext
				}

				// openssl encrypts under the public key, OAEP and MGF1 with
				// the same hash; KMS decrypts.
				for _, n := range []int{1, max} {
					pt := mustRandom(t, n)
					ctPath := filepath.Join(dir, fmt.Sprintf("ct-%s-%d", md, n))
					asRun(t, openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", pemPath, "-in", asTemp(t, dir, "pt-*", pt), "-out", ctPath,
						"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md)
					ct := asReadFile(t, ctPath)
					if got := decrypt(ct); !bytes.Equal(got, pt) {
						t.Errorf("%s: KMS decrypted openssl's %d-byte plaintext to %d other bytes", alg, n, len(got))
					}
					other := types.EncryptionAlgorithmSpecRsaesOaepSha1
					if alg == other {
						other = types.EncryptionAlgorithmSpecRsaesOaepSha256
					}
					_, err := e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: ct, EncryptionAlgorithm: other})
					expectAPIError(t, err, "InvalidCiphertextException", "")
				}

				// KMS round trip; the ciphertext is bare RSAES-OAEP output.
				pt := mustRandom(t, max)
				out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionAlgorithm: alg})
				if err != nil {
					t.Fatalf("Encrypt %s of %d bytes: %v", alg, max, err)
				}
				if aws.ToString(out.KeyId) != arn || out.EncryptionAlgorithm != alg || len(out.CiphertextBlob) != pub.Size() {
					t.Errorf("Encrypt KeyId %s EncryptionAlgorithm %s ciphertext of %d bytes; want %s %s %d bytes",
						aws.ToString(out.KeyId), out.EncryptionAlgorithm, len(out.CiphertextBlob), arn, alg, pub.Size())
				}
				if got := decrypt(out.CiphertextBlob); !bytes.Equal(got, pt) {
					t.Errorf("%s: Decrypt of Encrypt's ciphertext differs", alg)
				}
				_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: flipLastBit(out.CiphertextBlob), EncryptionAlgorithm: alg})
				expectAPIError(t, err, "InvalidCiphertextException", "")

				// One byte too many.
				_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: mustRandom(t, max+1), EncryptionAlgorithm: alg})
				expectAPIError(t, err, "ValidationException", fmt.Sprintf("Algorithm %s and key spec %s cannot encrypt data larger than %d bytes.", alg, spec, max))
			}
		})
	}

	t.Run("rules", func(t *testing.T) {
		t.Parallel()
		id := e.asCreate(t, types.KeySpecRsa2048, asEncrypt)
		arn := e.keyARN(id)
		sym := e.newKey(t)
		pt := []byte("RSA plaintext")
		sha256Alg := types.EncryptionAlgorithmSpecRsaesOaepSha256

		_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: pt, EncryptionAlgorithm: sha256Alg})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionAlgorithm: sha256Alg, EncryptionContext: map[string]string{"a": "b"}})
		expectAPIErrorCode(t, err, "ValidationException")

		out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionAlgorithm: sha256Alg})
		if err != nil {
			t.Fatal(err)
		}
		// The ciphertext names no key: without KeyId it does not decrypt.
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: sha256Alg})
		expectAPIError(t, err, "InvalidCiphertextException", "")
		expectTyped[*types.InvalidCiphertextException](t, err)
		e.asRawError(t, "Decrypt", map[string]any{"CiphertextBlob": out.CiphertextBlob, "EncryptionAlgorithm": sha256Alg}, "InvalidCiphertextException", "-")
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: sha256Alg, EncryptionContext: map[string]string{"a": "b"}})
		expectAPIErrorCode(t, err, "ValidationException")

		// ReEncrypt from a symmetric key to the RSA key and back.
		symBlob := e.encrypt(t, sym, pt, map[string]string{"ctx": "1"}).CiphertextBlob
		toRSA, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: symBlob, SourceEncryptionContext: map[string]string{"ctx": "1"},
			DestinationKeyId: aws.String(id), DestinationEncryptionAlgorithm: sha256Alg})
		if err != nil {
			t.Fatalf("ReEncrypt symmetric -> RSA: %v", err)
		}
		if aws.ToString(toRSA.SourceKeyId) != e.keyARN(sym) || aws.ToString(toRSA.KeyId) != arn ||
			toRSA.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || toRSA.DestinationEncryptionAlgorithm != sha256Alg ||
			toRSA.SourceKeyMaterialId == nil || toRSA.DestinationKeyMaterialId != nil || len(toRSA.CiphertextBlob) != 256 {
			t.Errorf("ReEncrypt symmetric -> RSA: SourceKeyId %s KeyId %s algorithms %s -> %s material %v -> %v, %d-byte ciphertext",
				aws.ToString(toRSA.SourceKeyId), aws.ToString(toRSA.KeyId), toRSA.SourceEncryptionAlgorithm, toRSA.DestinationEncryptionAlgorithm,
				toRSA.SourceKeyMaterialId, toRSA.DestinationKeyMaterialId, len(toRSA.CiphertextBlob))
		}
		dec, err := e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: toRSA.CiphertextBlob, EncryptionAlgorithm: sha256Alg})
		if err != nil || !bytes.Equal(dec.Plaintext, pt) {
			t.Errorf("Decrypt of the re-encrypted RSA ciphertext: %v", err)
		}
		back, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: toRSA.CiphertextBlob, SourceKeyId: aws.String(id), SourceEncryptionAlgorithm: sha256Alg,
			DestinationKeyId: aws.String(sym), DestinationEncryptionContext: map[string]string{"ctx": "2"}})
		if err != nil {
			t.Fatalf("ReEncrypt RSA -> symmetric: %v", err)
		}
		if aws.ToString(back.SourceKeyId) != arn || aws.ToString(back.KeyId) != e.keyARN(sym) || back.SourceEncryptionAlgorithm != sha256Alg ||
			back.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || back.SourceKeyMaterialId != nil || back.DestinationKeyMaterialId == nil {
			t.Errorf("ReEncrypt RSA -> symmetric: SourceKeyId %s KeyId %s algorithms %s -> %s material %v -> %v", aws.ToString(back.SourceKeyId), aws.ToString(back.KeyId),
				back.SourceEncryptionAlgorithm, back.DestinationEncryptionAlgorithm, back.SourceKeyMaterialId, back.DestinationKeyMaterialId)
		}
		if got := e.decrypt(t, back.CiphertextBlob, map[string]string{"ctx": "2"}).Plaintext; !bytes.Equal(got, pt) {
			t.Errorf("the round trip through the RSA key gave %q", got)
		}
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: symBlob, SourceEncryptionContext: map[string]string{"ctx": "1"},
			DestinationKeyId: aws.String(id), DestinationEncryptionAlgorithm: sha256Alg, DestinationEncryptionContext: map[string]string{"x": "y"}})
		expectAPIErrorCode(t, err, "ValidationException")
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: symBlob, SourceEncryptionContext: map[string]string{"ctx": "1"}, DestinationKeyId: aws.String(id)})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		big := e.encrypt(t, sym, make([]byte, 191), nil).CiphertextBlob
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: big, DestinationKeyId: aws.String(id), DestinationEncryptionAlgorithm: sha256Alg})
		expectAPIError(t, err, "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.")

		// The RSA key is for Encrypt and Decrypt only.
		_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: pt, SigningAlgorithm: "RSASSA_PSS_SHA_256"})
		expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
		_, err = e.asVerify(id, "RSASSA_PSS_SHA_256", types.MessageTypeRaw, pt, make([]byte, 256))
		expectAPIError(t, err, "InvalidKeyUsageException", arn+" key usage is ENCRYPT_DECRYPT which is not valid for Verify.")
		_, err = e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(32)})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		_, err = e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(id), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")

		e.disable(t, id)
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionAlgorithm: sha256Alg})
		expectAPIError(t, err, "DisabledException", arn+" is disabled.")
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: sha256Alg})
		expectAPIError(t, err, "DisabledException", arn+" is disabled.")
	})
}

// DeriveSharedSecret equals ECDH computed locally, by crypto/ecdh and by
// openssl, between a fresh peer key and the KMS key's public key.
func TestE2EAsymDeriveSharedSecret(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	curves := map[types.KeySpec]ecdh.Curve{types.KeySpecEccNistP256: ecdh.P256(), types.KeySpecEccNistP384: ecdh.P384(), types.KeySpecEccNistP521: ecdh.P521()}
	for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecEccNistP384, types.KeySpecEccNistP521} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, spec, asAgreement)
			der := e.asPublicKey(t, id, spec, asAgreement)
			kmsPub, err := asParsePublic(t, spec, der).(*ecdsa.PublicKey).ECDH()
			if err != nil {
				t.Fatal(err)
			}
			peer, err := curves[spec].GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			peerDER, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(id), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
			if err != nil {
				t.Fatalf("DeriveSharedSecret: %v", err)
			}
			if aws.ToString(out.KeyId) != e.keyARN(id) || out.KeyAgreementAlgorithm != types.KeyAgreementAlgorithmSpecEcdh || out.KeyOrigin != types.OriginTypeAwsKms {
				t.Errorf("DeriveSharedSecret KeyId %s KeyAgreementAlgorithm %s KeyOrigin %s", aws.ToString(out.KeyId), out.KeyAgreementAlgorithm, out.KeyOrigin)
			}
			want, err := peer.ECDH(kmsPub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.SharedSecret, want) {
				t.Errorf("SharedSecret %x, crypto/ecdh computes %x", out.SharedSecret, want)
			}
			dir := t.TempDir()
			peerPKCS8, err := x509.MarshalPKCS8PrivateKey(peer)
			if err != nil {
				t.Fatal(err)
			}
			peerPEM := asTemp(t, dir, "peer-*.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: peerPKCS8}))
			secretPath := filepath.Join(dir, "secret")
			asRun(t, openssl, "pkeyutl", "-derive", "-inkey", peerPEM, "-peerkey", asPEM(t, openssl, dir, der), "-out", secretPath)
			if got := asReadFile(t, secretPath); !bytes.Equal(out.SharedSecret, got) {
				t.Errorf("SharedSecret %x, openssl derives %x", out.SharedSecret, got)
			}
			// Another peer, another secret.
			peer2, _ := curves[spec].GenerateKey(rand.Reader)
			peer2DER, _ := x509.MarshalPKIXPublicKey(peer2.PublicKey())
			out2, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(id), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer2DER})
			if want2, _ := peer2.ECDH(kmsPub); err != nil || !bytes.Equal(out2.SharedSecret, want2) {
				t.Errorf("DeriveSharedSecret with a second peer: %v", err)
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		id := e.asCreate(t, types.KeySpecEccNistP256, asAgreement)
		derive := func(keyID string, pub []byte) error {
			_, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(keyID), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: pub})
			return err
		}
		p384, _ := ecdh.P384().GenerateKey(rand.Reader)
		p384DER, _ := x509.MarshalPKIXPublicKey(p384.PublicKey())
		edPub, _, _ := ed25519.GenerateKey(rand.Reader)
		edDER, _ := x509.MarshalPKIXPublicKey(edPub)
		p256, _ := ecdh.P256().GenerateKey(rand.Reader)
		p256DER, _ := x509.MarshalPKIXPublicKey(p256.PublicKey())
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
		k1, _ := secp256k1.GeneratePrivateKey()
		// A P-256 SubjectPublicKeyInfo around another point: one whose Y
		// is not the curve's for its X, and the point at infinity, which
		// SEC 1 encodes as the one byte 0.
		p256With := func(point []byte) []byte {
			s := asParseSPKI(t, p256DER)
			s.PublicKey = asn1.BitString{Bytes: point, BitLength: 8 * len(point)}
			der, err := asn1.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}
		offCurve := bytes.Clone(p256.PublicKey().Bytes())
		offCurve[len(offCurve)-1] ^= 1
		k1SPKI := asParseSPKI(t, p256DER)
		k1SPKI.Algorithm.Parameters.FullBytes, _ = asn1.Marshal(asOIDSecp256k1)
		k1SPKI.PublicKey = asn1.BitString{Bytes: k1.PubKey().SerializeUncompressed(), BitLength: 8 * 65}
		k1DER, _ := asn1.Marshal(k1SPKI)
		for name, pub := range map[string][]byte{
			"a P-384 key":             p384DER,
			"an Ed25519 key":          edDER,
			"an RSA key":              rsaDER,
			"a secp256k1 key":         k1DER,
			"a bare P-256 point":      p256.PublicKey().Bytes(),
			"garbage":                 []byte("not a public key"),
			"a truncated P-256 key":   p256DER[:len(p256DER)-1],
			"a point off the curve":   p256With(offCurve),
			"the point at infinity":   p256With([]byte{0}),
			"a point cut after its X": p256With(p256.PublicKey().Bytes()[:33]),
		} {
			t.Run(name, func(t *testing.T) {
				expectAPIErrorCode(t, derive(id, pub), "ValidationException")
			})
		}
		// AWS answers an unparsable public key with no message (reference §4.8).
		e.asRawError(t, "DeriveSharedSecret", map[string]any{"KeyId": id, "KeyAgreementAlgorithm": "ECDH", "PublicKey": []byte("not a public key")}, "ValidationException", "-")
		_, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(id), KeyAgreementAlgorithm: "INVALID", PublicKey: p384DER})
		expectAPIError(t, err, "ValidationException", "1 validation error detected: Value 'INVALID' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]")

		for _, c := range []struct{ id, usage string }{
			{e.asCreate(t, types.KeySpecEccNistP256, asSignVerify), "SIGN_VERIFY"},
			{e.newKey(t), "ENCRYPT_DECRYPT"},
		} {
			err := derive(c.id, p256DER)
			expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for DeriveSharedSecret.")
		}
		// A KEY_AGREEMENT key neither signs nor encrypts.
		_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
		expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(id)+" key usage is KEY_AGREEMENT which is not valid for Sign.")
		e.disable(t, id)
		expectAPIError(t, derive(id, p256DER), "DisabledException", e.keyARN(id)+" is disabled.")
	})
}

// asCheckPair checks a data key pair: the public key is DER SPKI of the
// spec's type and size, the private key is DER PKCS#8 of the same key (by
// Go where x509 reads it, by decred for secp256k1, and by openssl for all).
func asCheckPair(t testing.TB, openssl, dir string, spec types.DataKeyPairSpec, pubDER, privDER []byte) {
	t.Helper()
	pub := asParsePublic(t, types.KeySpec(spec), pubDER)
	if got := asOpenSSLPublicOf(t, openssl, dir, privDER); !bytes.Equal(got, pubDER) {
		t.Errorf("%s: openssl derives another public key from PrivateKeyPlaintext", spec)
	}
	if spec == types.DataKeyPairSpecEccSecgP256k1 {
		d := asK1Scalar(privDER)
		if d == nil {
			t.Fatalf("%s PrivateKeyPlaintext is not PKCS#8 of a secp256k1 key", spec)
		}
		if !secp256k1.PrivKeyFromBytes(d).PubKey().IsEqual(pub.(*secp256k1.PublicKey)) {
			t.Errorf("%s: the private scalar does not match the public key", spec)
		}
		return
	}
	priv, err := x509.ParsePKCS8PrivateKey(privDER)
	if err != nil {
		t.Fatalf("%s PrivateKeyPlaintext is not PKCS#8: %v", spec, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		t.Fatalf("%s private key is a %T", spec, priv)
	}
	if mine, err := x509.MarshalPKIXPublicKey(signer.Public()); err != nil || !bytes.Equal(mine, pubDER) {
		t.Errorf("%s: PublicKey is not the public half of PrivateKeyPlaintext (%v)", spec, err)
	}
}

// GenerateDataKeyPair and ...WithoutPlaintext for every key pair spec but
// SM2 (reference §4.7, §5.2).
func TestE2EAsymDataKeyPairs(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	sym := e.newKey(t)
	arn := e.keyARN(sym)
	material := aws.ToString(e.describe(t, sym).CurrentKeyMaterialId)
	ec := map[string]string{"purpose": "data key pairs"}
	for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecRsa3072, types.DataKeyPairSpecRsa4096,
		types.DataKeyPairSpecEccNistP256, types.DataKeyPairSpecEccNistP384, types.DataKeyPairSpecEccNistP521,
		types.DataKeyPairSpecEccSecgP256k1, types.DataKeyPairSpecEccNistEdwards25519} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(sym), KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPair: %v", err)
			}
			if aws.ToString(out.KeyId) != arn || out.KeyPairSpec != spec || aws.ToString(out.KeyMaterialId) != material {
				t.Errorf("GenerateDataKeyPair KeyId %s KeyPairSpec %s KeyMaterialId %s; want %s %s %s", aws.ToString(out.KeyId), out.KeyPairSpec, aws.ToString(out.KeyMaterialId), arn, spec, material)
			}
			asCheckPair(t, openssl, dir, spec, out.PublicKey, out.PrivateKeyPlaintext)
			// The encrypted private key is an ordinary ciphertext of the
			// symmetric key under the same context.
			for _, keyID := range []*string{aws.String(sym), nil} {
				dec, err := e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: keyID, CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
				if err != nil || !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
					t.Errorf("Decrypt of PrivateKeyCiphertextBlob (KeyId %v): %v", aws.ToString(keyID), err)
				}
			}
			_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
			expectAPIError(t, err, "InvalidCiphertextException", "")

			if spec == types.DataKeyPairSpecRsa4096 {
				return // slow to generate; WithoutPlaintext differs only in what it leaves out, seen with the other specs
			}
			wo, err := e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(sym), KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPairWithoutPlaintext: %v", err)
			}
			if aws.ToString(wo.KeyId) != arn || wo.KeyPairSpec != spec {
				t.Errorf("GenerateDataKeyPairWithoutPlaintext KeyId %s KeyPairSpec %s", aws.ToString(wo.KeyId), wo.KeyPairSpec)
			}
			if bytes.Equal(wo.PublicKey, out.PublicKey) {
				t.Errorf("two calls returned the same key pair")
			}
			dec := e.decrypt(t, wo.PrivateKeyCiphertextBlob, ec)
			asCheckPair(t, openssl, dir, spec, wo.PublicKey, dec.Plaintext)
		})
	}

	// WithoutPlaintext means no private key in the response at all.
	t.Run("without plaintext on the wire", func(t *testing.T) {
		t.Parallel()
		r := e.rawCall(t, "GenerateDataKeyPairWithoutPlaintext", `{"KeyId":"`+sym+`","KeyPairSpec":"ECC_NIST_P256"}`)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		body := r.json(t)
		if _, ok := body["PrivateKeyPlaintext"]; ok {
			t.Errorf("GenerateDataKeyPairWithoutPlaintext response has PrivateKeyPlaintext: %s", r.body)
		}
		blob, _ := base64.StdEncoding.DecodeString(fmt.Sprint(body["PrivateKeyCiphertextBlob"]))
		priv := e.decrypt(t, blob, nil).Plaintext
		if leaks := asFindLeaks(asPrivateParts([][]byte{priv}), [][]byte{r.body}); len(leaks) != 0 {
			t.Errorf("GenerateDataKeyPairWithoutPlaintext response carries its private key: %v", leaks)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		_, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecSm2})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		_, err = e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecSm2})
		expectAPIErrorCode(t, err, "UnsupportedOperationException")
		for _, c := range []struct{ id, usage string }{
			{e.asCreate(t, types.KeySpecEccNistP256, asSignVerify), "SIGN_VERIFY"},
			{e.asCreate(t, types.KeySpecEccNistP384, asAgreement), "KEY_AGREEMENT"},
			{e.asCreate(t, types.KeySpecHmac256, asMAC), "GENERATE_VERIFY_MAC"},
		} {
			_, err := e.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(c.id), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
			expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for GenerateDataKeyPair.")
			_, err = e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(c.id), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
			expectAPIError(t, err, "InvalidKeyUsageException", e.keyARN(c.id)+" key usage is "+c.usage+" which is not valid for GenerateDataKeyPairWithoutPlaintext.")
		}
	})
}

// Keys with imported private keys sign so that the local public key
// verifies, and derive the secret the local private key derives.
func TestE2EAsymImportedMaterial(t *testing.T) {
	t.Parallel()
	openssl := asOpenSSL(t)
	e := asNewEnv(t)
	ctx := context.Background()
	msg := []byte("signed with imported key material")
	// Every material sent, refused ones too, must stay out of responses.
	var sentMu sync.Mutex
	var sent [][]byte
	t.Cleanup(func() {
		sentMu.Lock()
		defer sentMu.Unlock()
		for _, leak := range asFindLeaks(asPrivateParts(sent), e.asBodies()) {
			t.Error(leak)
		}
	})
	importOpenSSL := func(t *testing.T, id string, material []byte) (*kms.ImportKeyMaterialOutput, error) {
		t.Helper()
		sentMu.Lock()
		sent = append(sent, material)
		sentMu.Unlock()
		return e.asImportOpenSSL(t, openssl, id, material)
	}

	// imported checks the import's response and the key's state after it.
	imported := func(t *testing.T, id string, out *kms.ImportKeyMaterialOutput, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("ImportKeyMaterial: %v", err)
		}
		if aws.ToString(out.KeyId) != e.keyARN(id) || !hex64RE.MatchString(aws.ToString(out.KeyMaterialId)) {
			t.Errorf("ImportKeyMaterial KeyId %s KeyMaterialId %q", aws.ToString(out.KeyId), aws.ToString(out.KeyMaterialId))
		}
		m := e.describe(t, id)
		if m.KeyState != types.KeyStateEnabled || !m.Enabled || m.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire || m.Origin != types.OriginTypeExternal {
			t.Errorf("after import: KeyState %s Enabled %v ExpirationModel %s Origin %s", m.KeyState, m.Enabled, m.ExpirationModel, m.Origin)
		}
		asCheckAlgorithms(t, m, m.KeySpec, m.KeyUsage)
	}
	wrong := func(t *testing.T, id string, material []byte) {
		t.Helper()
		_, err := importOpenSSL(t, id, material)
		expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
		expectTyped[*types.IncorrectKeyMaterialException](t, err)
	}
	p256Local, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256PKCS8, _ := x509.MarshalPKCS8PrivateKey(p256Local)
	p384Local, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384PKCS8, _ := x509.MarshalPKCS8PrivateKey(p384Local)
	p521Local, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521PKCS8, _ := x509.MarshalPKCS8PrivateKey(p521Local)
	_, edLocal, _ := ed25519.GenerateKey(rand.Reader)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(edLocal)

	t.Run("RSA_2048", func(t *testing.T) {
		t.Parallel()
		local, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		material, _ := x509.MarshalPKCS8PrivateKey(local)
		id := e.asCreateExternal(t, types.KeySpecRsa2048, asSignVerify)
		e.expectPendingImport(t, id)
		_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: msg, SigningAlgorithm: "RSASSA_PSS_SHA_256"})
		expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending import.")
		_, err = e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending import.")

		wrong(t, id, p256PKCS8)
		wrong(t, id, edPKCS8)
		wrong(t, id, mustRandom(t, 32))
		out, err := importOpenSSL(t, id, material)
		imported(t, id, out, err)
		want, _ := x509.MarshalPKIXPublicKey(&local.PublicKey)
		if got := e.asPublicKey(t, id, types.KeySpecRsa2048, asSignVerify); !bytes.Equal(got, want) {
			t.Errorf("GetPublicKey of the imported key is not the local public key")
		}
		for _, alg := range asRSASigning {
			sig := e.asSign(t, id, alg, types.MessageTypeRaw, msg)
			if err := asVerifyLocal(&local.PublicKey, alg, msg, sig); err != nil {
				t.Errorf("%s: the local public key does not verify the signature: %v", alg, err)
			}
			// And the other way: KMS verifies what the local key signed.
			h := asHash(alg)
			var mine []byte
			if strings.HasPrefix(alg, "RSASSA_PSS_") {
				mine, err = rsa.SignPSS(rand.Reader, local, h, asDigest(h, msg), &rsa.PSSOptions{SaltLength: h.Size()})
			} else {
				mine, err = rsa.SignPKCS1v15(rand.Reader, local, h, asDigest(h, msg))
			}
			if err != nil {
				t.Fatal(err)
			}
			e.asVerifyOK(t, id, alg, types.MessageTypeRaw, msg, mine)
		}
		_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: make([]byte, 31), MessageType: types.MessageTypeDigest, SigningAlgorithm: "RSASSA_PSS_SHA_256"})
		expectAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm RSASSA_PSS_SHA_256.")
	})

	t.Run("ECC_NIST_P256", func(t *testing.T) {
		t.Parallel()
		id := e.asCreateExternal(t, types.KeySpecEccNistP256, asSignVerify)
		wrong(t, id, p384PKCS8)
		wrong(t, id, edPKCS8)
		out, err := importOpenSSL(t, id, p256PKCS8)
		imported(t, id, out, err)
		want, _ := x509.MarshalPKIXPublicKey(&p256Local.PublicKey)
		if got := e.asPublicKey(t, id, types.KeySpecEccNistP256, asSignVerify); !bytes.Equal(got, want) {
			t.Errorf("GetPublicKey of the imported key is not the local public key")
		}
		sig := e.asSign(t, id, "ECDSA_SHA_256", types.MessageTypeRaw, msg)
		if err := asVerifyLocal(&p256Local.PublicKey, "ECDSA_SHA_256", msg, sig); err != nil {
			t.Errorf("the local public key does not verify the signature: %v", err)
		}
		// KMS verifies what the local key signed, with S high or low.
		mine, err := ecdsa.SignASN1(rand.Reader, p256Local, asDigest(crypto.SHA256, msg))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range asBothS(t, mine, elliptic.P256().Params().N) {
			e.asVerifyOK(t, id, "ECDSA_SHA_256", types.MessageTypeRaw, msg, v)
		}
		// Other material, even of the right type, is refused now.
		wrong(t, id, func() []byte {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			d, _ := x509.MarshalPKCS8PrivateKey(k)
			return d
		}())
		// Deleted, the key is unusable until the same material comes back.
		if _, err := e.client.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		e.expectPendingImport(t, id)
		_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: msg, SigningAlgorithm: "ECDSA_SHA_256"})
		expectAPIError(t, err, "KMSInvalidStateException", e.keyARN(id)+" is pending import.")
		out, err = importOpenSSL(t, id, p256PKCS8)
		imported(t, id, out, err)
		e.asVerifyOK(t, id, "ECDSA_SHA_256", types.MessageTypeRaw, msg, sig)
	})

	t.Run("ECC_NIST_P256 KEY_AGREEMENT", func(t *testing.T) {
		t.Parallel()
		local, _ := ecdh.P256().GenerateKey(rand.Reader)
		material, _ := x509.MarshalPKCS8PrivateKey(local)
		id := e.asCreateExternal(t, types.KeySpecEccNistP256, asAgreement)
		out, err := importOpenSSL(t, id, material)
		imported(t, id, out, err)
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
		got, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(id), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := local.ECDH(peer.PublicKey())
		if !bytes.Equal(got.SharedSecret, want) || got.KeyOrigin != types.OriginTypeExternal {
			t.Errorf("DeriveSharedSecret with imported material: secret matches %v, KeyOrigin %s (want EXTERNAL)", bytes.Equal(got.SharedSecret, want), got.KeyOrigin)
		}
	})

	// Keys openssl generated, in openssl's PKCS#8 encoding.
	t.Run("ECC_SECG_P256K1 from openssl", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		material := asOpenSSLKey(t, openssl, dir, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1")
		want := asOpenSSLPublicOf(t, openssl, dir, material)
		id := e.asCreateExternal(t, types.KeySpecEccSecgP256k1, asSignVerify)
		wrong(t, id, p256PKCS8)
		out, err := importOpenSSL(t, id, material)
		imported(t, id, out, err)
		if got := e.asPublicKey(t, id, types.KeySpecEccSecgP256k1, asSignVerify); !bytes.Equal(got, want) {
			t.Errorf("GetPublicKey of the imported key is not openssl's public key")
		}
		sig := e.asSign(t, id, "ECDSA_SHA_256", types.MessageTypeRaw, msg)
		pemPath := asPEM(t, openssl, dir, want)
		asOpenSSLVerify(t, openssl, dir, pemPath, "ECDSA_SHA_256", msg, sig)
		// KMS verifies what openssl signed with the key, with S high or
		// low (openssl does not normalize S; ECDSA accepts both).
		keyPath := filepath.Join(dir, "k1.pem")
		asRun(t, openssl, "pkey", "-inform", "DER", "-in", asTemp(t, dir, "k1-*.der", material), "-out", keyPath)
		sigPath := filepath.Join(dir, "openssl.sig")
		asRun(t, openssl, "dgst", "-sha256", "-sign", keyPath, "-out", sigPath, asTemp(t, dir, "msg-*", msg))
		for _, v := range asBothS(t, asReadFile(t, sigPath), secp256k1.S256().N) {
			asOpenSSLVerify(t, openssl, dir, pemPath, "ECDSA_SHA_256", msg, v)
			e.asVerifyOK(t, id, "ECDSA_SHA_256", types.MessageTypeRaw, msg, v)
		}
	})

	t.Run("ECC_NIST_EDWARDS25519 from openssl", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		material := asOpenSSLKey(t, openssl, dir, "-algorithm", "ed25519")
		want := asOpenSSLPublicOf(t, openssl, dir, material)
		id := e.asCreateExternal(t, types.KeySpecEccNistEdwards25519, asSignVerify)
		wrong(t, id, p256PKCS8)
		wrong(t, id, p521PKCS8) // once taken, and signed with as ECDSA
		out, err := importOpenSSL(t, id, material)
		imported(t, id, out, err)
		if got := e.asPublicKey(t, id, types.KeySpecEccNistEdwards25519, asSignVerify); !bytes.Equal(got, want) {
			t.Errorf("GetPublicKey of the imported key is not openssl's public key")
		}
		sig := e.asSign(t, id, "ED25519_SHA_512", types.MessageTypeRaw, msg)
		pemPath := asPEM(t, openssl, dir, want)
		keyPath := filepath.Join(dir, "ed.pem")
		asRun(t, openssl, "pkey", "-inform", "DER", "-in", asTemp(t, dir, "ed-*.der", material), "-out", keyPath)
		mine := filepath.Join(dir, "openssl.sig")
		asRun(t, openssl, "pkeyutl", "-sign", "-inkey", keyPath, "-rawin", "-in", asTemp(t, dir, "msg-*", msg), "-out", mine)
		if got := asReadFile(t, mine); !bytes.Equal(got, sig) { // Ed25519 is deterministic
			t.Errorf("openssl's Ed25519 signature with the key differs from KMS's")
		}
		res, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pemPath, "-rawin",
			"-in", asTemp(t, dir, "msg-*", msg), "-sigfile", asTemp(t, dir, "sig-*", sig)).CombinedOutput()
		if err != nil || !bytes.Contains(res, []byte("Signature Verified Successfully")) {
			t.Errorf("openssl does not verify the imported Ed25519 key's signature: %v\n%s", err, res)
		}
	})
}

// Only symmetric encryption keys rotate (reference §4.11).
func TestE2EAsymRotationUnsupported(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	for _, k := range []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecRsa2048, asEncrypt}, {types.KeySpecEccNistP256, asSignVerify}, {types.KeySpecEccNistP384, asAgreement},
		{types.KeySpecEccSecgP256k1, asSignVerify}, {types.KeySpecEccNistEdwards25519, asSignVerify}, {types.KeySpecMlDsa44, asSignVerify},
	} {
		t.Run(string(k.spec)+"/"+string(k.usage), func(t *testing.T) {
			t.Parallel()
			id := e.asCreate(t, k.spec, k.usage)
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
		})
	}
}

// Grants on asymmetric keys allow exactly the operations of the key's
// usage (reference §4.13).
func TestE2EAsymGrants(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	gina := e.kpUser(t, "gina", "")
	signer := e.asCreate(t, types.KeySpecRsa2048, asSignVerify)
	arn := e.keyARN(signer)
	pub := asParsePublic(t, types.KeySpecRsa2048, e.asPublicKey(t, signer, types.KeySpecRsa2048, asSignVerify))
	msg := []byte("signed by the grantee")

	_, err := gina.kms.Sign(ctx, &kms.SignInput{KeyId: aws.String(signer), Message: msg, SigningAlgorithm: "RSASSA_PSS_SHA_256"})
	kpDenied(t, err, gina.arn, "kms:Sign", arn, kpNoIdentity("kms:Sign"))
	_, token := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(signer), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationSign, types.GrantOperationVerify, types.GrantOperationGetPublicKey)})
	out, err := gina.kms.Sign(ctx, &kms.SignInput{KeyId: aws.String(signer), Message: msg, SigningAlgorithm: "RSASSA_PSS_SHA_256", GrantTokens: []string{token}})
	if err != nil {
		t.Fatalf("grantee Sign: %v", err)
	}
	if err := asVerifyLocal(pub, "RSASSA_PSS_SHA_256", msg, out.Signature); err != nil {
		t.Errorf("grantee's signature: %v", err)
	}
	v, err := gina.kms.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(arn), Message: msg, Signature: out.Signature, SigningAlgorithm: "RSASSA_PSS_SHA_256"})
	if err != nil || !v.SignatureValid {
		t.Errorf("grantee Verify: %v", err)
	}
	if _, err := gina.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(signer)}); err != nil {
		t.Errorf("grantee GetPublicKey: %v", err)
	}
	_, err = gina.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(signer)})
	kpDenied(t, err, gina.arn, "kms:DescribeKey", arn, kpNoIdentity("kms:DescribeKey"))

	// Operations of other usages cannot be granted on it.
	for _, op := range []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt, types.GrantOperationGenerateDataKey,
		types.GrantOperationReEncryptFrom, types.GrantOperationGenerateMac, types.GrantOperationDeriveSharedSecret, types.GrantOperationGenerateDataKeyPair} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(signer), GranteePrincipal: aws.String(gina.arn),
			Operations: grOps(types.GrantOperationSign, op)})
		expectAPIErrorCode(t, err, "ValidationException")
	}

	// A KEY_AGREEMENT key: DeriveSharedSecret, not Sign.
	agree := e.asCreate(t, types.KeySpecEccNistP256, asAgreement)
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(agree), GranteePrincipal: aws.String(gina.arn),
		Operations: grOps(types.GrantOperationDeriveSharedSecret)})
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	if _, err := gina.kms.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(agree), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER}); err != nil {
		t.Errorf("grantee DeriveSharedSecret: %v", err)
	}
	_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(agree), GranteePrincipal: aws.String(gina.arn), Operations: grOps(types.GrantOperationSign)})
	expectAPIErrorCode(t, err, "ValidationException")
}

// The leak check of asNewEnv sees every asymmetric key's private key: the
// stored material of each key is the private half of its public key, and
// the check finds such material hidden in a response.
func TestE2EAsymLeakGuardSeesPrivateKeys(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	specs := []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecEccNistP256, asSignVerify}, {types.KeySpecEccNistP521, asAgreement}, {types.KeySpecEccSecgP256k1, asSignVerify},
		{types.KeySpecEccNistEdwards25519, asSignVerify}, {types.KeySpecMlDsa65, asSignVerify}, {types.KeySpecMlKem512, asKEM},
	}
	var publics [][]byte
	for _, s := range specs {
		id := e.asCreate(t, s.spec, s.usage)
		publics = append(publics, e.asPublicKey(t, id, s.spec, s.usage))
	}
	materials := e.materials(t)
	for i, s := range specs {
		found := false
		for _, m := range materials {
			if slices.ContainsFunc(asPublicsOf(m), func(p []byte) bool { return bytes.Equal(p, publics[i]) }) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no stored material the leak check reads is the private key of the key's public key", s.spec)
		}
	}

	// The check finds a private key however a response would carry it.
	secrets := asPrivateParts(materials)
	var pkcs8 []byte
	for _, m := range materials {
		if _, err := x509.ParsePKCS8PrivateKey(m); err == nil {
			pkcs8 = m
			break
		}
	}
	if pkcs8 == nil {
		t.Fatal("no PKCS#8 material stored")
	}
	scalar := asPrivateParts([][]byte{pkcs8})[1]
	for name, body := range map[string]string{
		"PKCS#8 inside a base64 blob": `{"CiphertextBlob":"` + b64(append(append([]byte{1, 2}, pkcs8...), 3)) + `"}`,
		"a scalar in hex":             `{"Message":"` + strings.ToUpper(hex.EncodeToString(scalar)) + `"}`,
		"a PEM private key":           `{"Key":` + asJSONString(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))) + `}`,
		"a scalar inside a blob":      `{"Signature":"` + b64(append([]byte{9}, scalar...)) + `"}`,
	} {
		if len(asFindLeaks(secrets, [][]byte{[]byte(body)})) == 0 {
			t.Errorf("the leak check misses %s", name)
		}
	}
	if leaks := asFindLeaks(secrets, [][]byte{[]byte(`{"PublicKey":"` + b64(publics[0]) + `"}`)}); len(leaks) != 0 {
		t.Errorf("the leak check takes a public key for a private one: %v", leaks)
	}
}

// asJSONString is s as a JSON string.
func asJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// asPublicsOf returns the DER public keys a stored material can be the
// private half of.
func asPublicsOf(m []byte) [][]byte {
	if k, err := x509.ParsePKCS8PrivateKey(m); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			if d, err := x509.MarshalPKIXPublicKey(s.Public()); err == nil {
				return [][]byte{d}
			}
		}
		return nil
	}
	if d := asK1Scalar(m); d != nil {
		pt := secp256k1.PrivKeyFromBytes(d).PubKey().SerializeUncompressed()
		params, _ := asn1.Marshal(asOIDSecp256k1)
		der, _ := asn1.Marshal(asSPKI{Algorithm: pkix.AlgorithmIdentifier{Algorithm: asOIDECPublicKey, Parameters: asn1.RawValue{FullBytes: params}},
			PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)}})
		return [][]byte{der}
	}
	if der := mlkemPublicOf(m); der != nil {
		return [][]byte{der}
	}
	var out [][]byte
	if len(m) == 32 {
		for spec, s := range asMLDSAScheme {
			pk, _ := s.DeriveKey(m)
			raw, _ := pk.MarshalBinary()
			der, _ := asn1.Marshal(asSPKI{Algorithm: pkix.AlgorithmIdentifier{Algorithm: asOIDMLDSA[spec]}, PublicKey: asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)}})
			out = append(out, der)
		}
	}
	return out
}

// asSigner is a signing key of each kind, with what verifies its
// signatures locally.
type asSigner struct {
	spec types.KeySpec
	alg  string
	id   string
	pub  any
}

func (e *kmsEnv) asSigners(t testing.TB) []asSigner {
	t.Helper()
	var out []asSigner
	for _, c := range []struct {
		spec types.KeySpec
		alg  string
	}{
		{types.KeySpecRsa2048, "RSASSA_PSS_SHA_384"}, {types.KeySpecEccNistP256, "ECDSA_SHA_256"}, {types.KeySpecEccSecgP256k1, "ECDSA_SHA_256"},
		{types.KeySpecEccNistEdwards25519, "ED25519_SHA_512"}, {types.KeySpecMlDsa44, "ML_DSA_SHAKE_256"},
	} {
		id := e.asCreate(t, c.spec, asSignVerify)
		out = append(out, asSigner{c.spec, c.alg, id, asParsePublic(t, c.spec, e.asPublicKey(t, id, c.spec, asSignVerify))})
	}
	return out
}

// verify checks a RAW signature of s locally.
func (s asSigner) verify(msg, sig []byte) error {
	switch p := s.pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(p, msg, sig) {
			return errors.New("crypto/ed25519: signature does not verify")
		}
		return nil
	case sign.PublicKey:
		if !asMLDSAScheme[s.spec].Verify(p, msg, sig, nil) {
			return errors.New("circl: ML-DSA signature does not verify")
		}
		return nil
	}
	return asVerifyLocal(s.pub, s.alg, msg, sig)
}

// Many requests at once on the same keys: every signature and MAC is
// right, and the race detector sees no race in the server's use of a
// key's private half.
func TestE2EAsymConcurrentUse(t *testing.T) {
	t.Parallel()
	e := asNewEnv(t)
	ctx := context.Background()
	signers := e.asSigners(t)
	macKey := e.asCreate(t, types.KeySpecHmac256, asMAC)
	agree := e.asCreate(t, types.KeySpecEccNistP256, asAgreement)
	agreePub, _ := asParsePublic(t, types.KeySpecEccNistP256, e.asPublicKey(t, agree, types.KeySpecEccNistP256, asAgreement)).(*ecdsa.PublicKey).ECDH()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				msg := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				for _, s := range signers {
					out, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(s.id), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpec(s.alg)})
					if err != nil {
						t.Errorf("%s Sign: %v", s.spec, err)
						continue
					}
					if err := s.verify(msg, out.Signature); err != nil {
						t.Errorf("%s: %v", s.spec, err)
					}
					if v, err := e.asVerify(s.id, s.alg, types.MessageTypeRaw, msg, out.Signature); err != nil || !v.SignatureValid {
						t.Errorf("%s Verify: %v", s.spec, err)
					}
				}
				if out, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(macKey), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg}); err != nil {
					t.Errorf("GenerateMac: %v", err)
				} else if _, err := e.hmVerify(macKey, types.MacAlgorithmSpecHmacSha256, msg, out.Mac); err != nil {
					t.Errorf("VerifyMac: %v", err)
				}
				peer, _ := ecdh.P256().GenerateKey(rand.Reader)
				peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
				out, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(agree), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
				if want, _ := peer.ECDH(agreePub); err != nil || !bytes.Equal(out.SharedSecret, want) {
					t.Errorf("DeriveSharedSecret: %v", err)
				}
			}
		}()
	}
	wg.Wait()
}

// Keys keep their private half across a restart: the same public keys,
// old signatures still verify, the same MACs.
func TestE2EAsymSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t) // its store closes at the restart: the new environment's check covers its responses
	signers := e.asSigners(t)
	msg := []byte("signed before the restart")
	var publics, sigs [][]byte
	for _, s := range signers {
		publics = append(publics, e.asPublicKey(t, s.id, s.spec, asSignVerify))
		sigs = append(sigs, e.asSign(t, s.id, s.alg, types.MessageTypeRaw, msg))
	}
	macKey := e.asCreate(t, types.KeySpecHmac512, asMAC)
	mac := e.hmMac(t, macKey, types.MacAlgorithmSpecHmacSha512, msg)

	e2 := e.reopen(t)
	asWatchLeaks(t, e2)
	for i, s := range signers {
		if got := e2.asPublicKey(t, s.id, s.spec, asSignVerify); !bytes.Equal(got, publics[i]) {
			t.Errorf("%s: the public key changed across the restart", s.spec)
		}
		e2.asVerifyOK(t, s.id, s.alg, types.MessageTypeRaw, msg, sigs[i])
		if err := s.verify(msg, e2.asSign(t, s.id, s.alg, types.MessageTypeRaw, msg)); err != nil {
			t.Errorf("%s after the restart: %v", s.spec, err)
		}
	}
	if got := e2.hmMac(t, macKey, types.MacAlgorithmSpecHmacSha512, msg); !bytes.Equal(got, mac) {
		t.Errorf("the HMAC key's MAC changed across the restart")
	}
}
