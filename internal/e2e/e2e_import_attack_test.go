package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/testsupport"
)

// What a caller allowed the import operations can try against them: costly
// requests, and key material that is not what it claims to be.

// GetParametersForImport makes an RSA key pair, up to a second of a CPU
// for RSA_4096: such calls wait for the same few places as RSA data key
// pairs, so that a caller asking for many cannot take every CPU. Here
// the one place is held by a GenerateDataKeyPair; a GetParametersForImport,
// and a CreateKey of an RSA key, meanwhile make no key and give up with
// their clients, and get their turn once the place is free.
func TestE2EGetParametersForImportWaitsForRSAKeyPairs(t *testing.T) {
	t.Parallel()
	rsaKey, err := keys.GenerateAsymmetric("RSA_2048")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var made atomic.Int32
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), func(c *service.Config) {
		c.RSAKeyPairs = 1
		c.GenerateKeyPair = func(spec string) ([]byte, error) {
			if made.Add(1) == 1 {
				close(entered)
				<-release
			}
			return slices.Clone(rsaKey), nil
		}
	})
	ctx := context.Background()
	sym := aws.ToString(e.createKey(t, &kms.CreateKeyInput{}).KeyId)
	ext := e.newExternalKey(t)

	first := make(chan error, 1)
	go func() {
		_, err := e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{
			KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecRsa2048,
		})
		first <- err
	}()
	<-entered
	// giveUp makes call with a context its client cancels once the call
	// waits for the place, and then waits until it no longer does.
	giveUp := func(call func(context.Context) error) error {
		short, cancel := context.WithCancel(ctx)
		defer cancel()
		answered := make(chan error, 1)
		go func() { answered <- call(short) }()
		guard := time.After(10 * time.Second) // a guard, not a wait
		for e.svc.RSAKeyPairsWaiting() != 1 {
			select {
			case err := <-answered:
				return fmt.Errorf("answered without waiting: %v", err)
			case <-guard:
				return errors.New("never waited for the place")
			default:
				runtime.Gosched()
			}
		}
		cancel()
		err := <-answered
		for e.svc.RSAKeyPairsWaiting() != 0 {
			select {
			case <-guard:
				return fmt.Errorf("still waits for the place after its client gave up (%v)", err)
			default:
				runtime.Gosched()
			}
		}
		return err
	}
	err = giveUp(func(ctx context.Context) error {
		_, err := e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
			KeyId: aws.String(ext), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
		})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("GetParametersForImport while the one place is held: %v; want it to wait until its client gives up", err)
	}
	err = giveUp(func(ctx context.Context) error {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CreateKey of an RSA key while the one place is held: %v; want it to wait until its client gives up", err)
	}
	if n := made.Load(); n != 1 {
		t.Errorf("%d RSA key pairs made at once; want 1", n)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("GenerateDataKeyPairWithoutPlaintext: %v", err)
	}
	if _, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify}); err != nil {
		t.Fatalf("CreateKey of an RSA key once the place is free: %v", err)
	}
	// Its turn come, the wrapping key is the one the generator made.
	wrapping, err := keys.ParseAsymmetric("RSA_2048", rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	material := mustRandom(t, 32)
	p := e.importParams(t, ext, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	if !bytes.Equal(p.PublicKey, wrapping.PublicDER) {
		t.Error("the wrapping public key is not the one the key pair generator made")
	}
	if _, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(ext), ImportToken: p.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material),
	}); err != nil {
		t.Fatalf("ImportKeyMaterial: %v", err)
	}
}

// importWrapped imports private key material into keyID under a fresh
// RSA_AES_KEY_WRAP_SHA_256 token, the wrapping that fits keys of any size.
func (e *kmsEnv) importWrapped(t testing.TB, keyID string, material []byte) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.importParams(t, keyID, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa3072)
	return e.client.ImportKeyMaterial(context.Background(), &kms.ImportKeyMaterialInput{
		KeyId: aws.String(keyID), ImportToken: p.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaAesKeyWrapSha256, p.PublicKey, material),
	})
}

// reencodeEC is the PKCS#8 encoding of an EC private key der with its
// inner ECPrivateKey (RFC 5915) changed by edit, and trailing after it.
func reencodeEC(t testing.TB, der []byte, edit func(*ecPrivateKeyDER), trailing []byte) []byte {
	t.Helper()
	var p pkcs8DER
	var ec ecPrivateKeyDER
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil {
		t.Fatal(err)
	}
	edit(&ec)
	inner, err := asn1.Marshal(ec)
	if err != nil {
		t.Fatal(err)
	}
	p.PrivateKey = inner
	out, err := asn1.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, trailing...)
}

type pkcs8DER struct {
	Version    int
	Algorithm  asn1.RawValue
	PrivateKey []byte
}

type ecPrivateKeyDER struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
	Extra         asn1.RawValue         `asn1:"optional"` // a member RFC 5915 does not have
}

// withPKCS8PublicKey is the PKCS#8 key der made a v2 one (RFC 5958)
// carrying pub as its publicKey.
func withPKCS8PublicKey(t testing.TB, der, pub []byte) []byte {
	t.Helper()
	return withPKCS8Member(t, der, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: append([]byte{0}, pub...)})
}

// withPKCS8Member is the PKCS#8 key der, version 1, with member added at
// its end.
func withPKCS8Member(t testing.TB, der []byte, member asn1.RawValue) []byte {
	t.Helper()
	var p struct {
		Version    int
		Algorithm  asn1.RawValue
		PrivateKey []byte
		Member     asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		t.Fatal(err)
	}
	p.Version, p.Member = 1, member
	out, err := asn1.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bitString(b []byte) asn1.BitString { return asn1.BitString{Bytes: b, BitLength: 8 * len(b)} }

// Imported private key material must be one key in one encoding. Before,
// an EC key's encoded public point was ignored (the server makes it again
// from the private scalar): a key pair whose public half was another
// key's, or a point off the curve, imported without a word, and so did an
// RSA key of three primes and a key followed by other bytes. Each is
// IncorrectKeyMaterialException now and leaves the key pending import;
// the same keys encoded as they should be import.
func TestE2EImportRefusesSelfContradictoryPrivateKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	refused := func(t *testing.T, id string, material []byte) {
		t.Helper()
		_, err := e.importWrapped(t, id, material)
		expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
		expectTyped[*types.IncorrectKeyMaterialException](t, err)
		e.expectPendingImport(t, id)
	}
	imports := func(t *testing.T, id string, material []byte) {
		t.Helper()
		if _, err := e.importWrapped(t, id, material); err != nil {
			t.Fatalf("ImportKeyMaterial of a well-formed key: %v", err)
		}
	}

	t.Run("ECC_NIST_P256", func(t *testing.T) {
		t.Parallel()
		id := e.asCreateExternal(t, types.KeySpecEccNistP256, asSignVerify)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		otherPub, _ := other.PublicKey.Bytes()
		offCurve := slices.Clone(otherPub)
		offCurve[len(offCurve)-1] ^= 1
		p384 := asn1.ObjectIdentifier{1, 3, 132, 0, 34}
		refused(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.PublicKey = bitString(otherPub) }, nil))
		refused(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.PublicKey = bitString(offCurve) }, nil))
		refused(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.NamedCurveOID = p384 }, nil))
		refused(t, id, append(slices.Clone(der), 0x05, 0x00))
		refused(t, id, withPKCS8PublicKey(t, der, otherPub))
		refused(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) {
			ec.Extra = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte{0}}
		}, nil))
		// The public point may be absent, or compressed.
		pub, _ := key.PublicKey.Bytes()
		compressed := append([]byte{2 | pub[len(pub)-1]&1}, pub[1:33]...)
		imports(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.PublicKey = bitString(compressed) }, nil))
		want, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if got, err := e.client.GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: aws.String(id)}); err != nil || !bytes.Equal(got.PublicKey, want) {
			t.Errorf("GetPublicKey after the import: %v; want the imported key's public key", err)
		}
		bare := e.asCreateExternal(t, types.KeySpecEccNistP256, asSignVerify)
		imports(t, bare, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.PublicKey = asn1.BitString{} }, nil))
	})

	t.Run("ECC_NIST_EDWARDS25519", func(t *testing.T) {
		t.Parallel()
		id := e.asCreateExternal(t, types.KeySpecEccNistEdwards25519, asSignVerify)
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		// A PKCS#8 v2 (RFC 5958) key may carry its public key: it must be
		// the key's own, and nothing else may follow.
		refused(t, id, withPKCS8PublicKey(t, der, otherPub))
		refused(t, id, withPKCS8Member(t, der, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{}}))
		imports(t, id, withPKCS8PublicKey(t, der, key.Public().(ed25519.PublicKey)))
	})

	t.Run("ECC_SECG_P256K1", func(t *testing.T) {
		t.Parallel()
		id := e.asCreateExternal(t, types.KeySpecEccSecgP256k1, asSignVerify)
		der, err := keys.GenerateAsymmetric("ECC_SECG_P256K1")
		if err != nil {
			t.Fatal(err)
		}
		other, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		refused(t, id, reencodeEC(t, der, func(ec *ecPrivateKeyDER) { ec.PublicKey = bitString(other.PubKey().SerializeUncompressed()) }, nil))
		imports(t, id, der)
	})

	t.Run("RSA_2048", func(t *testing.T) {
		t.Parallel()
		id := e.asCreateExternal(t, types.KeySpecRsa2048, asSignVerify)
		three, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(three)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, id, der)
		two, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err = x509.MarshalPKCS8PrivateKey(two)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, id, append(slices.Clone(der), 0x00))
		imports(t, id, der)
	})
}

// Imported material that passes its ValidTo is deleted by the background
// work, and the trail says so as CloudTrail does: a DeleteExpiredKeyMaterial
// service event of the key's account, naming the key. Before, the key
// went back to PendingImport with no record at all: its owner's trail
// could not tell an expiry from a DeleteImportedKeyMaterial someone made
// without leaving a record.
func TestE2EImportedMaterialExpiryIsAudited(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	id := e.newExternalKey(t)
	validTo := e.clock.Now().Add(time.Hour)
	e.importMaterial(t, id, mustRandom(t, 32), &validTo)
	kept := e.newExternalKey(t)
	e.importMaterial(t, kept, mustRandom(t, 32), nil)

	e.clock.Advance(time.Hour)
	e.maintain(t)
	e.expectPendingImport(t, id)
	e.maintain(t) // nothing more expires, and nothing more is recorded

	recs, _ := auditRecords(t, logPath)
	var expiries []*audit.Record
	for _, r := range recs {
		if r.EventName == "DeleteExpiredKeyMaterial" {
			expiries = append(expiries, r)
		}
	}
	if len(expiries) != 1 {
		t.Fatalf("%d DeleteExpiredKeyMaterial records, want 1", len(expiries))
	}
	r := expiries[0]
	want := audit.UserIdentity{Type: "AWSService", AccountID: e2eAccount, InvokedBy: audit.Internal}
	if r.UserIdentity.Type != want.Type || r.UserIdentity.AccountID != want.AccountID || r.UserIdentity.InvokedBy != want.InvokedBy ||
		r.UserIdentity.ARN != "" || r.UserIdentity.AccessKeyID != "" {
		t.Errorf("userIdentity %+v, want %+v", r.UserIdentity, want)
	}
	if r.EventType != "AwsServiceEvent" || r.EventSource != "kms.amazonaws.com" || r.AWSRegion != e2eRegion ||
		r.RecipientAccountID != e2eAccount || r.ReadOnly || r.ErrorCode != "" || r.SourceIPAddress != audit.Internal || r.UserAgent != audit.Internal {
		t.Errorf("record %+v: want an AwsServiceEvent of kms.amazonaws.com in %s for account %s", r, e2eRegion, e2eAccount)
	}
	if len(r.Resources) != 1 || r.Resources[0].ARN != e.keyARN(id) || r.Resources[0].AccountID != e2eAccount {
		t.Errorf("resources %+v, want the expired key %s alone", r.Resources, e.keyARN(id))
	}
	if r.EventTime != audit.FormatTime(validTo) {
		t.Errorf("eventTime %s, want %s (when the work ran)", r.EventTime, audit.FormatTime(validTo))
	}
	m := e.materialIDs(t, id)
	checkDetails(t, r, `{"keyId":"`+id+`","keyMaterialId":"`+m[0]+`"}`)
}
