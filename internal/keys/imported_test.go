package keys_test

import (
	"bytes"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// Every key this package generates is one key in one encoding, so that
// its PKCS#8, imported elsewhere and back, passes ParseImported with the
// same public key as ParseAsymmetric gives it.
func TestParseImportedTakesGeneratedKeys(t *testing.T) {
	for _, spec := range asymmetricSpecs {
		t.Run(spec, func(t *testing.T) {
			m, err := keys.GenerateAsymmetric(spec)
			if err != nil {
				t.Fatal(err)
			}
			a, err := keys.ParseAsymmetric(spec, m)
			if err != nil {
				t.Fatal(err)
			}
			b, err := keys.ParseImported(spec, m)
			if err != nil {
				t.Fatalf("ParseImported: %v", err)
			}
			if !bytes.Equal(a.PublicDER, b.PublicDER) {
				t.Error("ParseImported gives another public key")
			}
			if _, err := keys.ParseImported(spec, append(m, 0)); err == nil {
				t.Error("ParseImported took the key with a byte after it")
			}
		})
	}
}

// ParseImported takes no more than ParseAsymmetric does, whatever the
// bytes, and never panics.
func FuzzParseImported(f *testing.F) {
	for _, spec := range asymmetricSpecs {
		if m, err := keys.GenerateAsymmetric(spec); err == nil {
			f.Add(spec, m)
		}
	}
	f.Fuzz(func(t *testing.T, spec string, material []byte) {
		a, err := keys.ParseImported(spec, material)
		if err != nil {
			return
		}
		b, err := keys.ParseAsymmetric(spec, material)
		if err != nil {
			t.Fatalf("ParseImported took what ParseAsymmetric refuses: %v", err)
		}
		if !bytes.Equal(a.PublicDER, b.PublicDER) {
			t.Fatal("another public key")
		}
	})
}
