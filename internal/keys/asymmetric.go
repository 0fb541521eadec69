package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"

	"filippo.io/mldsa"
	"filippo.io/mldsa/mldsacrypto"
	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Asymmetric key specs and algorithms, named as in the AWS KMS API.
//
// Private material is kept as PKCS#8 DER (RSA, NIST curves, Ed25519,
// secp256k1 with its curve OID) or, for ML-DSA, as the 32-byte seed of
// FIPS 204 key generation. Public keys are DER SubjectPublicKeyInfo.

// Errors of asymmetric operations; the service turns each into AWS's
// exception and message.
var (
	ErrInvalidSignature = errors.New("keys: signature does not verify")
	ErrDigestLength     = errors.New("keys: digest is not the algorithm's hash length")
	ErrMessageType      = errors.New("keys: message type not valid for the algorithm")
	ErrAlgorithm        = errors.New("keys: algorithm not valid for the key spec")
	ErrPublicKey        = errors.New("keys: peer public key is not valid for the key")
	ErrUnsupported      = errors.New("keys: not supported")
	ErrMaterial         = errors.New("keys: key material does not match the key spec")
)

// Message types of Sign and Verify.
const (
	MessageRaw        = "RAW"
	MessageDigest     = "DIGEST"
	MessageExternalMu = "EXTERNAL_MU"
)

// SigningAlgorithms lists the signing algorithms of a key spec, in the
// order AWS lists them in KeyMetadata.
func SigningAlgorithms(spec string) []string {
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		return []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
			"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	case "ECC_NIST_P256", "ECC_SECG_P256K1":
		return []string{"ECDSA_SHA_256"}
	case "ECC_NIST_P384":
		return []string{"ECDSA_SHA_384"}
	case "ECC_NIST_P521":
		return []string{"ECDSA_SHA_512"}
	case "ECC_NIST_EDWARDS25519":
		return []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}
	case "ML_DSA_44", "ML_DSA_65", "ML_DSA_87":
		return []string{"ML_DSA_SHAKE_256"}
	}
	return nil
}

// EncryptionAlgorithms lists the encryption algorithms of an asymmetric
// key spec.
func EncryptionAlgorithms(spec string) []string {
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		return []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	}
	return nil
}

// Asymmetric is the private half of an asymmetric KMS key. It is safe for
// concurrent use.
type Asymmetric struct {
	Spec      string
	PublicDER []byte // DER SubjectPublicKeyInfo

	rsa       *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	k1        *secp256k1.PrivateKey
	mldsa     sign.PrivateKey
	mldsaPub  sign.PublicKey // kept: circl recomputes it on every Public()
	mldsaSeed []byte         // for EXTERNAL_MU, which circl cannot sign
	kem       *kemKey        // ML-KEM (mlkem.go)
}

// GenerateAsymmetric returns fresh private material of a key spec.
func GenerateAsymmetric(spec string) ([]byte, error) {
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		bits := map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}[spec]
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521":
		k, err := ecdsa.GenerateKey(nistCurve(spec), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case "ECC_NIST_EDWARDS25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case "ECC_SECG_P256K1":
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		return marshalK1PKCS8(k)
	case "ML_DSA_44", "ML_DSA_65", "ML_DSA_87":
		seed := make([]byte, 32)
		rand.Read(seed)
		return seed, nil
	case "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024":
		return generateMLKEM(spec)
	}
	return nil, fmt.Errorf("%w: key spec %s", ErrUnsupported, spec)
}

// nistCurve is the curve of an ECC_NIST_P* spec, nil for any other.
func nistCurve(spec string) elliptic.Curve {
	switch spec {
	case "ECC_NIST_P256":
		return elliptic.P256()
	case "ECC_NIST_P384":
		return elliptic.P384()
	case "ECC_NIST_P521":
		return elliptic.P521()
	}
	return nil
}

// mldsaScheme is circl's implementation of an ML-DSA key spec: it signs
// and verifies messages, two to four times as fast as filippo.io/mldsa
// on amd64.
func mldsaScheme(spec string) sign.Scheme {
	switch spec {
	case "ML_DSA_44":
		return mldsa44.Scheme()
	case "ML_DSA_65":
		return mldsa65.Scheme()
	}
	return mldsa87.Scheme()
}

// signExternalMu signs a precomputed μ (FIPS 204 section 6.2) with the
// ML-DSA key of a seed through filippo.io/mldsa (the standard library's
// crypto/mldsa), which circl cannot: the key is derived again at each
// call rather than kept twice in memory. Both derive one key from a seed
// and sign deterministically alike, so the signature of a μ is the
// signature of the message it stands for.
func signExternalMu(spec string, seed, mu []byte) ([]byte, error) {
	params := mldsa.MLDSA87()
	switch spec {
	case "ML_DSA_44":
		params = mldsa.MLDSA44()
	case "ML_DSA_65":
		params = mldsa.MLDSA65()
	}
	k, err := mldsa.NewPrivateKey(params, seed)
	if err != nil {
		return nil, err
	}
	return k.SignDeterministic(mu, mldsacrypto.MLDSAMu)
}

// ParseAsymmetric reads private material of a key spec. Material of another
// type or size is ErrMaterial.
func ParseAsymmetric(spec string, material []byte) (*Asymmetric, error) {
	a := &Asymmetric{Spec: spec}
	var pub any
	switch spec {
	case "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024":
		return parseMLKEM(spec, material)
	case "ML_DSA_44", "ML_DSA_65", "ML_DSA_87":
		if len(material) != 32 {
			return nil, ErrMaterial
		}
		p, s := mldsaScheme(spec).DeriveKey(material)
		a.mldsa, a.mldsaPub, a.mldsaSeed = s, p, bytes.Clone(material)
		raw, err := p.MarshalBinary()
		if err != nil {
			return nil, err
		}
		a.PublicDER, err = marshalSPKI(mldsaScheme(spec).(interface{ Oid() asn1OID }).Oid(), nil, raw)
		return a, err
	case "ECC_SECG_P256K1":
		k, err := parseK1PKCS8(material)
		if err != nil {
			return nil, ErrMaterial
		}
		a.k1 = k
		a.PublicDER, err = marshalSPKI(oidECPublicKey, oidSecp256k1, k.PubKey().SerializeUncompressed())
		return a, err
	}
	if len(material) > maxPKCS8Size(spec) {
		// Refused before it is parsed: checking an RSA key costs time
		// that grows with the square of its size, whatever bounds the
		// caller put on the material.
		return nil, ErrMaterial
	}
	parsed, err := x509.ParsePKCS8PrivateKey(material)
	if err != nil {
		return nil, ErrMaterial
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if fmt.Sprintf("RSA_%d", k.N.BitLen()) != spec {
			return nil, ErrMaterial
		}
		a.rsa, pub = k, &k.PublicKey
	case *ecdsa.PrivateKey:
		if c := nistCurve(spec); c == nil || k.Curve != c {
			return nil, ErrMaterial
		}
		a.ec, pub = k, &k.PublicKey
	case ed25519.PrivateKey:
		if spec != "ECC_NIST_EDWARDS25519" {
			return nil, ErrMaterial
		}
		a.ed, pub = k, k.Public()
	default:
		return nil, ErrMaterial
	}
	a.PublicDER, err = x509.MarshalPKIXPublicKey(pub)
	return a, err
}

// maxPKCS8Size bounds the PKCS#8 encoding of a private key of spec: for
// RSA_N, six numbers of N bits at most (the modulus, both exponents, and
// the primes and CRT values at half size each) with room for the
// encoding's headers; 1 KiB for an elliptic-curve key.
func maxPKCS8Size(spec string) int {
	var bits int
	if _, err := fmt.Sscanf(spec, "RSA_%d", &bits); err == nil && bits > 0 && bits <= 4096 {
		return bits/8*6 + 256
	}
	return 1024
}

// hashOf is the hash of an RSA or ECDSA signing algorithm.
func hashOf(alg string) (crypto.Hash, error) {
	switch alg[len(alg)-3:] {
	case "256":
		return crypto.SHA256, nil
	case "384":
		return crypto.SHA384, nil
	case "512":
		return crypto.SHA512, nil
	}
	return 0, ErrAlgorithm
}

// digestOf hashes a RAW message, or checks a DIGEST's length, for alg.
func digestOf(alg, msgType string, msg []byte) (crypto.Hash, []byte, error) {
	h, err := hashOf(alg)
	if err != nil {
		return 0, nil, err
	}
	switch msgType {
	case MessageRaw:
		hh := h.New()
		hh.Write(msg)
		return h, hh.Sum(nil), nil
	case MessageDigest:
		if len(msg) != h.Size() {
			return 0, nil, ErrDigestLength
		}
		return h, msg, nil
	}
	return 0, nil, ErrMessageType
}

// externalMuSize is the size of μ, the message representative of FIPS 204
// section 6.2 that an EXTERNAL_MU message is.
const externalMuSize = 64

// checkExternalMu is the check of an ML-DSA message that is not RAW: it
// must be an EXTERNAL_MU of 64 bytes.
func checkExternalMu(msgType string, msg []byte) error {
	switch {
	case msgType != MessageExternalMu:
		return ErrMessageType
	case len(msg) != externalMuSize:
		return ErrDigestLength
	}
	return nil
}

// CheckVerifyMessage is CheckMessage for Verify, which also refuses an
// ML-DSA EXTERNAL_MU with ErrUnsupported: neither ML-DSA implementation
// used verifies a given μ (circl computes μ itself, filippo.io/mldsa
// signs a μ but verifies only messages).
func (a *Asymmetric) CheckVerifyMessage(alg, msgType string, msg []byte) error {
	if err := a.CheckMessage(alg, msgType, msg); err != nil {
		return err
	}
	if a.mldsa != nil && msgType == MessageExternalMu {
		return ErrUnsupported
	}
	return nil
}

func (a *Asymmetric) allows(alg string) bool {
	for _, s := range SigningAlgorithms(a.Spec) {
		if s == alg {
			return true
		}
	}
	return false
}

// CheckMessage returns the error Sign gives alg, msgType and msg before
// it uses the key: ErrAlgorithm for an algorithm of another key spec,
// ErrMessageType or ErrDigestLength. It is how a dry run learns whether
// Sign would fail.
func (a *Asymmetric) CheckMessage(alg, msgType string, msg []byte) error {
	if !a.allows(alg) {
		return ErrAlgorithm
	}
	switch {
	case a.mldsa != nil:
		if msgType != MessageRaw {
			return checkExternalMu(msgType, msg)
		}
		return nil
	case a.ed != nil:
		if alg == "ED25519_SHA_512" {
			if msgType != MessageRaw {
				return ErrMessageType
			}
			return nil
		}
		if msgType != MessageDigest {
			return ErrMessageType
		}
		if len(msg) != sha512.Size {
			return ErrDigestLength
		}
		return nil
	}
	h, err := hashOf(alg)
	if err != nil {
		return err
	}
	switch msgType {
	case MessageRaw:
		return nil
	case MessageDigest:
		if len(msg) != h.Size() {
			return ErrDigestLength
		}
		return nil
	}
	return ErrMessageType
}

// ed25519PreHash is PH(M) of Ed25519ph (RFC 8032 §5.1) for
// ED25519_PH_SHA_512, whose Message is always a DIGEST: AWS KMS applies
// the SHA-512 prehash to the digest it is given, so the signature is
// Ed25519ph of the digest, SHA-512 taken twice over the original message.
// A verifier outside KMS checks it as Ed25519ph with the digest as the
// message.
func ed25519PreHash(digest []byte) [sha512.Size]byte {
	return sha512.Sum512(digest)
}

// Sign signs msg (RAW: the message itself; DIGEST: its hash; EXTERNAL_MU:
// the μ of FIPS 204 section 6.2 of an ML-DSA message) with alg. ML-DSA
// signs deterministically, so a RAW message and its μ get one signature.
func (a *Asymmetric) Sign(alg, msgType string, msg []byte) ([]byte, error) {
	if err := a.CheckMessage(alg, msgType, msg); err != nil {
		return nil, err
	}
	switch {
	case a.mldsa != nil:
		if msgType == MessageExternalMu {
			return signExternalMu(a.Spec, a.mldsaSeed, msg)
		}
		return mldsaScheme(a.Spec).Sign(a.mldsa, msg, nil), nil
	case a.ed != nil && alg == "ED25519_SHA_512":
		return ed25519.Sign(a.ed, msg), nil
	case a.ed != nil:
		ph := ed25519PreHash(msg)
		return a.ed.Sign(nil, ph[:], &ed25519.Options{Hash: crypto.SHA512})
	}
	h, digest, err := digestOf(alg, msgType, msg)
	if err != nil {
		return nil, err
	}
	switch {
	case a.rsa != nil && alg[:10] == "RSASSA_PSS":
		return rsa.SignPSS(rand.Reader, a.rsa, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case a.rsa != nil:
		return rsa.SignPKCS1v15(rand.Reader, a.rsa, h, digest)
	case a.ec != nil:
		return ecdsa.SignASN1(rand.Reader, a.ec, digest)
	case a.k1 != nil:
		return k1ecdsa.Sign(a.k1, digest).Serialize(), nil
	}
	return nil, ErrUnsupported
}

// Verify checks a signature made with alg over msg; a signature that does
// not verify is ErrInvalidSignature.
func (a *Asymmetric) Verify(alg, msgType string, msg, sig []byte) error {
	if err := a.CheckVerifyMessage(alg, msgType, msg); err != nil {
		return err
	}
	ok := false
	switch {
	case a.mldsa != nil:
		ok = mldsaScheme(a.Spec).Verify(a.mldsaPub, msg, sig, nil)
	case a.ed != nil && alg == "ED25519_SHA_512":
		ok = ed25519.Verify(a.ed.Public().(ed25519.PublicKey), msg, sig)
	case a.ed != nil:
		ph := ed25519PreHash(msg)
		ok = ed25519.VerifyWithOptions(a.ed.Public().(ed25519.PublicKey), ph[:], sig, &ed25519.Options{Hash: crypto.SHA512}) == nil
	default:
		h, digest, err := digestOf(alg, msgType, msg)
		if err != nil {
			return err
		}
		switch {
		case a.rsa != nil && alg[:10] == "RSASSA_PSS":
			ok = rsa.VerifyPSS(&a.rsa.PublicKey, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		case a.rsa != nil:
			ok = rsa.VerifyPKCS1v15(&a.rsa.PublicKey, h, digest, sig) == nil
		case a.ec != nil:
			ok = ecdsa.VerifyASN1(&a.ec.PublicKey, digest, sig)
		case a.k1 != nil:
			if s, err := k1ecdsa.ParseDERSignature(sig); err == nil {
				ok = s.Verify(digest, a.k1.PubKey())
			}
		}
	}
	if !ok {
		return ErrInvalidSignature
	}
	return nil
}

func oaepHash(alg string) (hash.Hash, error) {
	switch alg {
	case "RSAES_OAEP_SHA_1":
		return sha1.New(), nil
	case "RSAES_OAEP_SHA_256":
		return sha256.New(), nil
	}
	return nil, ErrAlgorithm
}

// MaxPlaintext is the largest plaintext alg can encrypt under an RSA key:
// k - 2*hLen - 2 bytes (RFC 8017).
func (a *Asymmetric) MaxPlaintext(alg string) int {
	h, err := oaepHash(alg)
	if err != nil || a.rsa == nil {
		return 0
	}
	return a.rsa.Size() - 2*h.Size() - 2
}

// Encrypt encrypts with RSAES-OAEP (the same hash for OAEP and MGF1, an
// empty label), as AWS KMS does.
func (a *Asymmetric) Encrypt(alg string, plaintext []byte) ([]byte, error) {
	h, err := oaepHash(alg)
	if err != nil || a.rsa == nil {
		return nil, ErrAlgorithm
	}
	return rsa.EncryptOAEP(h, rand.Reader, &a.rsa.PublicKey, plaintext, nil)
}

// Decrypt reverses Encrypt; every failure is ErrInvalidCiphertext.
func (a *Asymmetric) Decrypt(alg string, ciphertext []byte) ([]byte, error) {
	h, err := oaepHash(alg)
	if err != nil || a.rsa == nil {
		return nil, ErrAlgorithm
	}
	pt, err := rsa.DecryptOAEP(h, nil, a.rsa, ciphertext, nil)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

// peerKey reads the peer's DER SubjectPublicKeyInfo of a
// DeriveSharedSecret, which must be on the key's curve.
func (a *Asymmetric) peerKey(peerDER []byte) (*ecdh.PublicKey, error) {
	if a.ec == nil {
		return nil, ErrAlgorithm
	}
	p, err := x509.ParsePKIXPublicKey(peerDER)
	if err != nil {
		return nil, ErrPublicKey
	}
	peer, ok := p.(*ecdsa.PublicKey)
	if !ok || peer.Curve != a.ec.Curve {
		return nil, ErrPublicKey
	}
	pe, err := peer.ECDH()
	if err != nil {
		return nil, ErrPublicKey
	}
	return pe, nil
}

// CheckPeerKey returns the error DeriveSharedSecret gives peerDER before it
// uses the private key: how a dry run learns whether it would fail.
func (a *Asymmetric) CheckPeerKey(peerDER []byte) error {
	_, err := a.peerKey(peerDER)
	return err
}

// DeriveSharedSecret computes raw ECDH (the X coordinate) with the peer's
// DER SubjectPublicKeyInfo, which must be on the key's curve.
func (a *Asymmetric) DeriveSharedSecret(peerDER []byte) ([]byte, error) {
	pe, err := a.peerKey(peerDER)
	if err != nil {
		return nil, err
	}
	me, err := a.ec.ECDH()
	if err != nil {
		return nil, err
	}
	return me.ECDH(pe)
}
