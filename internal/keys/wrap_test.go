package keys_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// RFC 5649 §6 test vectors.
func TestKWPVectors(t *testing.T) {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, tc := range []struct{ pt, ct string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		pt, _ := hex.DecodeString(tc.pt)
		ct, err := keys.WrapKWP(kek, pt)
		if err != nil || hex.EncodeToString(ct) != tc.ct {
			t.Fatalf("WrapKWP(%s) = %x, %v; want %s", tc.pt, ct, err, tc.ct)
		}
		got, err := keys.UnwrapKWP(kek, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("UnwrapKWP = %x, %v", got, err)
		}
	}
}

func TestKWPRejectsTampering(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	for _, size := range []int{1, 8, 9, 32, 33} {
		pt := make([]byte, size)
		rand.Read(pt)
		ct, err := keys.WrapKWP(kek, pt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(ct) * 8 {
			bad := bytes.Clone(ct)
			bad[i/8] ^= 1 << (i % 8)
			if _, err := keys.UnwrapKWP(kek, bad); !errors.Is(err, keys.ErrInvalidCiphertext) {
				t.Fatalf("size %d: bit %d flipped unwrapped (%v)", size, i, err)
			}
		}
		for _, bad := range [][]byte{ct[:len(ct)-8], append(bytes.Clone(ct), make([]byte, 8)...), ct[:7], nil} {
			if _, err := keys.UnwrapKWP(kek, bad); !errors.Is(err, keys.ErrInvalidCiphertext) {
				t.Fatalf("size %d: malformed length %d unwrapped", size, len(bad))
			}
		}
	}
}

func TestUnwrapImportedAllAlgorithms(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	oaep := func(h hash.Hash, m []byte) []byte {
		c, err := rsa.EncryptOAEP(h, rand.Reader, &priv.PublicKey, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	kwp := func(h hash.Hash) []byte {
		kek := make([]byte, 32)
		rand.Read(kek)
		w, err := keys.WrapKWP(kek, material)
		if err != nil {
			t.Fatal(err)
		}
		return append(oaep(h, kek), w...)
	}
	cases := map[string][]byte{
		keys.WrapRSAOAEPSHA1:         oaep(sha1.New(), material),
		keys.WrapRSAOAEPSHA256:       oaep(sha256.New(), material),
		keys.WrapRSAAESKeyWrapSHA1:   kwp(sha1.New()),
		keys.WrapRSAAESKeyWrapSHA256: kwp(sha256.New()),
	}
	for alg, wrapped := range cases {
		got, err := keys.UnwrapImported(alg, priv, wrapped)
		if err != nil || !bytes.Equal(got, material) {
			t.Errorf("%s: %x, %v", alg, got, err)
		}
		wrong := keys.WrapRSAOAEPSHA256
		if alg == wrong {
			wrong = keys.WrapRSAOAEPSHA1
		}
		if _, err := keys.UnwrapImported(wrong, priv, wrapped); !errors.Is(err, keys.ErrInvalidCiphertext) {
			t.Errorf("%s blob unwrapped as %s", alg, wrong)
		}
		bad := bytes.Clone(wrapped)
		bad[len(bad)-1] ^= 1
		if _, err := keys.UnwrapImported(alg, priv, bad); !errors.Is(err, keys.ErrInvalidCiphertext) {
			t.Errorf("%s: tampered blob unwrapped", alg)
		}
	}
	if _, err := keys.UnwrapImported("RSAES_PKCS1_V1_5", priv, cases[keys.WrapRSAOAEPSHA1]); err == nil {
		t.Error("RSAES_PKCS1_V1_5 accepted")
	}
}

// What openssl wraps, we unwrap: the commands AWS documents for importing
// key material.
func TestUnwrapOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is needed for this test")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	os.WriteFile(filepath.Join(dir, "pub.der"), pub, 0o600)
	material := make([]byte, 32)
	rand.Read(material)
	os.WriteFile(filepath.Join(dir, "material.bin"), material, 0o600)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("pkeyutl", "-encrypt", "-in", "material.bin", "-out", "oaep256.bin", "-inkey", "pub.der", "-keyform", "DER", "-pubin",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	wrapped, _ := os.ReadFile(filepath.Join(dir, "oaep256.bin"))
	if got, err := keys.UnwrapImported(keys.WrapRSAOAEPSHA256, priv, wrapped); err != nil || !bytes.Equal(got, material) {
		t.Fatalf("RSAES_OAEP_SHA_256 from openssl: %v", err)
	}

	kek := make([]byte, 32)
	rand.Read(kek)
	os.WriteFile(filepath.Join(dir, "kek.bin"), kek, 0o600)
	run("enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", "material.bin", "-out", "kwp.bin")
	run("pkeyutl", "-encrypt", "-in", "kek.bin", "-out", "kek.enc", "-inkey", "pub.der", "-keyform", "DER", "-pubin",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	a, _ := os.ReadFile(filepath.Join(dir, "kek.enc"))
	b, _ := os.ReadFile(filepath.Join(dir, "kwp.bin"))
	if got, err := keys.UnwrapImported(keys.WrapRSAAESKeyWrapSHA256, priv, append(a, b...)); err != nil || !bytes.Equal(got, material) {
		t.Fatalf("RSA_AES_KEY_WRAP_SHA_256 from openssl: %v", err)
	}
}

func TestImportedMaterialID(t *testing.T) {
	id := keys.NewID()
	m := make([]byte, 32)
	rand.Read(m)
	a := keys.ImportedMaterialID(id, m)
	if len(a) != 64 || a != keys.ImportedMaterialID(id, bytes.Clone(m)) {
		t.Fatalf("id %q is not a stable 64-hex-digit value", a)
	}
	if a == keys.ImportedMaterialID(keys.NewID(), m) {
		t.Fatal("same id for another key")
	}
	m[0] ^= 1
	if a == keys.ImportedMaterialID(id, m) {
		t.Fatal("same id for other material")
	}
}
