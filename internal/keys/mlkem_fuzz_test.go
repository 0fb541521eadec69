package keys_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// fuzzMLKEMSpecs are the ML-KEM key specs a fuzz input picks from by index.
var fuzzMLKEMSpecs = []string{"ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}

// FuzzMLKEMDecapsulate decapsulates arbitrary ciphertexts, as Decapsulate
// does with what a caller sent: it never panics; a ciphertext is refused,
// with ErrCiphertextLength, exactly when its length is not the spec's;
// any other gives 32 bytes, the same each time (FIPS 203's implicit
// rejection is a function of the key and the ciphertext).
func FuzzMLKEMDecapsulate(f *testing.F) {
	ks := make([]*keys.Asymmetric, len(fuzzMLKEMSpecs))
	for i, spec := range fuzzMLKEMSpecs {
		m, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			f.Fatal(err)
		}
		if ks[i], err = keys.ParseAsymmetric(spec, m); err != nil {
			f.Fatal(err)
		}
		_, ct, err := ks[i].Encapsulate()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), ct)
		f.Add(uint8(i), ct[1:])
		f.Add(uint8(i), append(bytes.Clone(ct), 0))
		f.Add(uint8(i), make([]byte, keys.MLKEMCiphertextSize(spec)))
	}
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, i uint8, ct []byte) {
		spec := fuzzMLKEMSpecs[int(i)%len(fuzzMLKEMSpecs)]
		k := ks[int(i)%len(ks)]
		in := bytes.Clone(ct)
		ss, err := k.Decapsulate(ct)
		if !bytes.Equal(ct, in) {
			t.Fatalf("%s: Decapsulate changed its ciphertext", spec)
		}
		if len(ct) != keys.MLKEMCiphertextSize(spec) {
			if !errors.Is(err, keys.ErrCiphertextLength) || ss != nil {
				t.Fatalf("%s: %d-byte ciphertext gave %x, %v; want ErrCiphertextLength", spec, len(ct), ss, err)
			}
			return
		}
		if err != nil || len(ss) != 32 {
			t.Fatalf("%s: ciphertext of the right length gave %d bytes, %v", spec, len(ss), err)
		}
		again, err := k.Decapsulate(ct)
		if err != nil || !bytes.Equal(again, ss) {
			t.Fatalf("%s: the same ciphertext decapsulated to %x then %x (%v)", spec, ss, again, err)
		}
	})
}
