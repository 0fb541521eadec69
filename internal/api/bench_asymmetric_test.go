package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// benchSigning is, per key spec benchmarked, the signing algorithm used.
// internal/keys/bench_asymmetric_test.go benchmarks the same specs and
// algorithms called directly, so that the two can be compared: the
// difference is the cost of HTTP, JSON, SigV4 and the authorization.
var benchSigning = []struct{ spec, alg string }{
	{"RSA_2048", "RSASSA_PSS_SHA_256"},
	{"RSA_4096", "RSASSA_PSS_SHA_256"},
	{"ECC_NIST_P256", "ECDSA_SHA_256"},
	{"ECC_NIST_P384", "ECDSA_SHA_384"},
	{"ECC_SECG_P256K1", "ECDSA_SHA_256"},
	{"ECC_NIST_EDWARDS25519", "ED25519_SHA_512"},
	{"ML_DSA_65", "ML_DSA_SHAKE_256"},
}

// benchMessages are the RAW messages signed, the same as in the keys
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

// benchCreateKey creates a key of spec and usage through the handler and
// returns its id.
func benchCreateKey(b *testing.B, h http.Handler, spec, usage string) string {
	b.Helper()
	out := serve(b, h, "CreateKey", []byte(`{"KeySpec":"`+spec+`","KeyUsage":"`+usage+`"}`), nil)
	var created struct {
		KeyMetadata struct{ KeyId, KeySpec string }
	}
	if err := json.Unmarshal(out, &created); err != nil {
		b.Fatal(err)
	}
	if created.KeyMetadata.KeyId == "" || created.KeyMetadata.KeySpec != spec {
		b.Fatalf("CreateKey %s %s: %s", spec, usage, out)
	}
	return created.KeyMetadata.KeyId
}

// benchSigningKeys creates one SIGN_VERIFY key per spec of benchSigning on
// one handler; the RSA_4096 key, whose generation takes a while, is made
// once per benchmark rather than per sub-benchmark run.
func benchSigningKeys(b *testing.B) (http.Handler, map[string]string) {
	b.Helper()
	h, _ := benchHandler(b)
	ids := map[string]string{}
	for _, s := range benchSigning {
		ids[s.spec] = benchCreateKey(b, h, s.spec, "SIGN_VERIFY")
	}
	return h, ids
}

func signBody(keyID, alg string, msg []byte) []byte {
	return []byte(`{"KeyId":"` + keyID + `","Message":"` + base64.StdEncoding.EncodeToString(msg) +
		`","MessageType":"RAW","SigningAlgorithm":"` + alg + `"}`)
}

// benchServe measures pre-signed requests, sent in turn from one goroutine,
// as the direct benchmarks call the math from one goroutine. check sees the
// answer to the first before the timer starts.
func benchServe(b *testing.B, h http.Handler, op string, bodies [][]byte, check func(out []byte)) {
	hdrs := make([]http.Header, len(bodies))
	for i, body := range bodies {
		hdrs[i] = signedHeaders(b, op, body)
	}
	check(serve(b, h, op, bodies[0], hdrs[0])) // warms the key cache too
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		serve(b, h, op, bodies[i], hdrs[i])
		if i++; i == len(bodies) {
			i = 0
		}
	}
}

func BenchmarkSign(b *testing.B) {
	h, ids := benchSigningKeys(b)
	for _, s := range benchSigning {
		b.Run(s.spec, func(b *testing.B) {
			bodies := make([][]byte, len(benchMessages))
			for i, m := range benchMessages {
				bodies[i] = signBody(ids[s.spec], s.alg, m)
			}
			benchServe(b, h, "Sign", bodies, func(out []byte) {
				var r struct{ Signature []byte }
				if err := json.Unmarshal(out, &r); err != nil || len(r.Signature) == 0 {
					b.Fatalf("Sign %s: %v %s", s.spec, err, out)
				}
			})
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	h, ids := benchSigningKeys(b)
	for _, s := range benchSigning {
		b.Run(s.spec, func(b *testing.B) {
			var signed struct{ Signature string }
			if err := json.Unmarshal(serve(b, h, "Sign", signBody(ids[s.spec], s.alg, benchMessages[0]), nil), &signed); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"KeyId":"` + ids[s.spec] + `","Message":"` + base64.StdEncoding.EncodeToString(benchMessages[0]) +
				`","MessageType":"RAW","SigningAlgorithm":"` + s.alg + `","Signature":"` + signed.Signature + `"}`)
			benchServe(b, h, "Verify", [][]byte{body}, func(out []byte) {
				var r struct{ SignatureValid bool }
				if err := json.Unmarshal(out, &r); err != nil || !r.SignatureValid {
					b.Fatalf("Verify %s: %v %s", s.spec, err, out)
				}
			})
		})
	}
}

func BenchmarkGenerateMac(b *testing.B) {
	h, _ := benchHandler(b)
	id := benchCreateKey(b, h, "HMAC_256", "GENERATE_VERIFY_MAC")
	b.Run("HMAC_256", func(b *testing.B) {
		body := []byte(`{"KeyId":"` + id + `","Message":"` + base64.StdEncoding.EncodeToString(benchMessages[0]) +
			`","MacAlgorithm":"HMAC_SHA_256"}`)
		benchServe(b, h, "GenerateMac", [][]byte{body}, func(out []byte) {
			var r struct{ Mac []byte }
			if err := json.Unmarshal(out, &r); err != nil || len(r.Mac) != 32 {
				b.Fatalf("GenerateMac: %v %s", err, out)
			}
		})
	})
}
