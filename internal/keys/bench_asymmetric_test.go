package keys_test

import (
	"sync"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// benchSigning is, per key spec benchmarked, the signing algorithm used:
// the same as internal/api/bench_asymmetric_test.go, which benchmarks Sign
// and Verify through the handler, so that the two can be compared.
var benchSigning = []struct{ spec, alg string }{
	{"RSA_2048", "RSASSA_PSS_SHA_256"},
	{"RSA_4096", "RSASSA_PSS_SHA_256"},
	{"ECC_NIST_P256", "ECDSA_SHA_256"},
	{"ECC_NIST_P384", "ECDSA_SHA_384"},
	{"ECC_SECG_P256K1", "ECDSA_SHA_256"},
	{"ECC_NIST_EDWARDS25519", "ED25519_SHA_512"},
	{"ML_DSA_65", "ML_DSA_SHAKE_256"},
}

// benchMessages are the RAW messages signed, the same as in the api
// package's benchmarks: 256 bytes each, told apart by their first two. Sign
// goes round them because an ML-DSA signature's cost depends on the key and
// the message (rejection sampling, deterministic here), so that one message
// could be a lucky or unlucky one; Verify, of constant cost, uses the first.
var benchMessages = func() [][]byte {
	ms := make([][]byte, 256)
	for i := range ms {
		m := make([]byte, 256)
		for j := range m {
			m[j] = byte(j)
		}
		m[0], m[1] = byte(i), byte(i>>8)
		ms[i] = m
	}
	return ms
}()

var (
	benchKeysMu sync.Mutex
	benchKeys   = map[string]*keys.Asymmetric{}
)

// benchAsymmetric returns a key of spec, generated once for all the
// benchmarks of the package (an RSA_4096 key takes a while).
func benchAsymmetric(b *testing.B, spec string) *keys.Asymmetric {
	b.Helper()
	benchKeysMu.Lock()
	defer benchKeysMu.Unlock()
	if a := benchKeys[spec]; a != nil {
		return a
	}
	m, err := keys.GenerateAsymmetric(spec)
	if err != nil {
		b.Fatal(err)
	}
	a, err := keys.ParseAsymmetric(spec, m)
	if err != nil {
		b.Fatal(err)
	}
	benchKeys[spec] = a
	return a
}

func BenchmarkAsymmetricSign(b *testing.B) {
	for _, s := range benchSigning {
		b.Run(s.spec, func(b *testing.B) {
			a := benchAsymmetric(b, s.spec)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := a.Sign(s.alg, keys.MessageRaw, benchMessages[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(benchMessages) {
					i = 0
				}
			}
		})
	}
}

func BenchmarkAsymmetricVerify(b *testing.B) {
	for _, s := range benchSigning {
		b.Run(s.spec, func(b *testing.B) {
			a := benchAsymmetric(b, s.spec)
			sig, err := a.Sign(s.alg, keys.MessageRaw, benchMessages[0])
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Verify(s.alg, keys.MessageRaw, benchMessages[0], sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMac is the direct counterpart of the handler's
// BenchmarkGenerateMac.
func BenchmarkMac(b *testing.B) {
	h, err := keys.NewHMAC("HMAC_256", keys.GenerateHMAC("HMAC_256"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("HMAC_256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Mac("HMAC_SHA_256", benchMessages[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMLKEM measures Encapsulate and Decapsulate of each ML-KEM spec,
// and ParseAsymmetric (the expansion of a stored seed, which a key's first
// use after loading pays).
func BenchmarkMLKEM(b *testing.B) {
	for _, spec := range []string{"ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"} {
		m, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			b.Fatal(err)
		}
		a, err := keys.ParseAsymmetric(spec, m)
		if err != nil {
			b.Fatal(err)
		}
		_, ct, _ := a.Encapsulate()
		b.Run(spec+"/Encapsulate", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := a.Encapsulate(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec+"/Decapsulate", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Decapsulate(ct); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec+"/Parse", func(b *testing.B) {
			for b.Loop() {
				if _, err := keys.ParseAsymmetric(spec, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
