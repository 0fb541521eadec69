package keys_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// rootKeyBytes is a fixed 32-byte root key used where a deterministic key
// helps; it is not a secret.
var rootKeyBytes = func() []byte {
	b := make([]byte, keys.RootKeySize)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}()

func mustRootKey(t testing.TB, key []byte) *keys.RootKey {
	t.Helper()
	rk, err := keys.NewRootKey(key)
	if err != nil {
		t.Fatalf("NewRootKey: %v", err)
	}
	return rk
}

func TestNewRootKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := keys.NewRootKey(make([]byte, n)); err == nil {
			t.Errorf("NewRootKey(%d bytes) succeeded; want error", n)
		}
	}
	if _, err := keys.NewRootKey(make([]byte, keys.RootKeySize)); err != nil {
		t.Errorf("NewRootKey(32 bytes): %v", err)
	}
}

// sameRootKey reports whether a and b are the same key by sealing with one
// and opening with the other.
func sameRootKey(t *testing.T, a, b *keys.RootKey) bool {
	t.Helper()
	aad := []byte("record")
	pt := []byte("probe")
	got, err := b.Open(aad, a.Seal(aad, pt))
	return err == nil && bytes.Equal(got, pt)
}

func TestParseRootKeyAccepts(t *testing.T) {
	want := mustRootKey(t, rootKeyBytes)
	b64 := base64.StdEncoding.EncodeToString(rootKeyBytes)
	hx := hex.EncodeToString(rootKeyBytes)
	if len(b64) != 44 || len(hx) != 64 {
		t.Fatalf("test setup: base64 %d chars, hex %d chars", len(b64), len(hx))
	}
	tests := []struct {
		name string
		in   string
	}{
		{"base64", b64},
		{"base64 newline", b64 + "\n"},
		{"base64 crlf", b64 + "\r\n"},
		{"base64 surrounded", " \t\n" + b64 + " \n\n"},
		{"hex", hx},
		{"hex upper", strings.ToUpper(hx)},
		{"hex newline", hx + "\n"},
		{"hex surrounded", "\n\t " + hx + "\t \r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rk, err := keys.ParseRootKey([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseRootKey(%q): %v", tc.in, err)
			}
			if !sameRootKey(t, want, rk) || !sameRootKey(t, rk, want) {
				t.Fatalf("ParseRootKey(%q) decoded a different key", tc.in)
			}
		})
	}
}

func TestParseRootKeyRejects(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(rootKeyBytes)
	hx := hex.EncodeToString(rootKeyBytes)
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"only space", "  \n\t"},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(rootKeyBytes)},
		{"base64 one char long", b64 + "A"},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(rootKeyBytes[:31])},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(append([]byte(nil), rootKeyBytes...), 0))},
		{"base64 of 16 bytes", base64.StdEncoding.EncodeToString(rootKeyBytes[:16])},
		{"base64 invalid char", "!" + b64[1:]},
		{"base64 url alphabet", strings.Repeat("_", 43) + "="},
		{"base64 inner space", b64[:20] + " " + b64[21:]},
		{"base64 44 chars with embedded newline", b64[:20] + "\n" + b64[21:]},
		{"hex one char short", hx[:63]},
		{"hex one char long", hx + "0"},
		{"hex of 16 bytes", hex.EncodeToString(rootKeyBytes[:16])},
		{"hex of 64 bytes", hx + hx},
		{"hex invalid char", "g" + hx[1:]},
		{"hex inner space", hx[:30] + " " + hx[31:]},
		{"hex with 0x prefix", "0x" + hx[2:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := keys.ParseRootKey([]byte(tc.in)); err == nil {
				t.Fatalf("ParseRootKey(%q) succeeded; want error", tc.in)
			}
		})
	}
}

func TestGenerateRootKey(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 50; i++ {
		text := keys.GenerateRootKey()
		if len(text) != 45 || text[44] != '\n' {
			t.Fatalf("GenerateRootKey() = %q; want 44 base64 characters and a newline", text)
		}
		raw, err := base64.StdEncoding.DecodeString(string(text[:44]))
		if err != nil || len(raw) != keys.RootKeySize {
			t.Fatalf("GenerateRootKey() = %q: decodes to %d bytes, %v", text, len(raw), err)
		}
		if seen[string(text)] {
			t.Fatalf("GenerateRootKey repeated %q", text)
		}
		seen[string(text)] = true
		rk, err := keys.ParseRootKey(text)
		if err != nil {
			t.Fatalf("ParseRootKey(GenerateRootKey()): %v", err)
		}
		if !sameRootKey(t, mustRootKey(t, raw), rk) {
			t.Fatalf("ParseRootKey(GenerateRootKey()) is not the generated key")
		}
	}
}

func TestRootKeySealOpen(t *testing.T) {
	rk := mustRootKey(t, rootKeyBytes)
	for _, n := range []int{0, 1, 32, 4096} {
		pt := bytes.Repeat([]byte{0xa5}, n)
		for _, aad := range [][]byte{nil, []byte("key/1234abcd-ef01-4a2b-9c3d-abcdef012345")} {
			sealed := rk.Seal(aad, pt)
			if got, want := len(sealed), 12+n+16; got != want {
				t.Errorf("len(Seal(%d bytes)) = %d, want %d", n, got, want)
			}
			got, err := rk.Open(aad, sealed)
			if err != nil {
				t.Fatalf("Open(Seal(%d bytes, aad %q)): %v", n, aad, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("Open(Seal(%d bytes)) returned different plaintext", n)
			}
		}
	}
	// nil and empty aad authenticate the same.
	sealed := rk.Seal(nil, []byte("x"))
	if _, err := rk.Open([]byte{}, sealed); err != nil {
		t.Errorf("Open with empty aad of a value sealed with nil aad: %v", err)
	}
}

func TestRootKeySealRandomized(t *testing.T) {
	rk := mustRootKey(t, rootKeyBytes)
	aad, pt := []byte("record"), []byte("the same plaintext")
	a, b := rk.Seal(aad, pt), rk.Seal(aad, pt)
	if bytes.Equal(a, b) {
		t.Fatal("two Seals of the same plaintext are identical")
	}
	if bytes.Equal(a[:12], b[:12]) {
		t.Fatal("two Seals used the same nonce")
	}
}

func TestRootKeySealDoesNotAliasInput(t *testing.T) {
	rk := mustRootKey(t, rootKeyBytes)
	aad, pt := []byte("record"), []byte("plaintext")
	sealed := rk.Seal(aad, pt)
	if !bytes.Equal(pt, []byte("plaintext")) || !bytes.Equal(aad, []byte("record")) {
		t.Fatal("Seal modified its inputs")
	}
	before := append([]byte(nil), sealed...)
	got, err := rk.Open(aad, sealed)
	if err != nil {
		t.Fatal(err)
	}
	got[0] ^= 0xff
	if !bytes.Equal(sealed, before) {
		t.Fatal("Open returned a slice aliasing its input")
	}
}

func TestRootKeyOpenRejects(t *testing.T) {
	rk := mustRootKey(t, rootKeyBytes)
	other := make([]byte, keys.RootKeySize)
	copy(other, rootKeyBytes)
	other[31] ^= 1
	otherKey := mustRootKey(t, other)

	aad, pt := []byte("key/a"), []byte("key material 32 bytes long......")
	sealed := rk.Seal(aad, pt)

	expectInvalid := func(t *testing.T, what string, r *keys.RootKey, aad, sealed []byte) {
		t.Helper()
		got, err := r.Open(aad, sealed)
		if !errors.Is(err, keys.ErrInvalidCiphertext) {
			t.Fatalf("%s: Open = %q, %v; want ErrInvalidCiphertext", what, got, err)
		}
		if got != nil {
			t.Fatalf("%s: Open returned plaintext %q with the error", what, got)
		}
	}

	t.Run("other aad", func(t *testing.T) {
		for _, a := range [][]byte{nil, []byte("key/b"), []byte("key/a\x00"), []byte("Key/a"), []byte("key/")} {
			expectInvalid(t, "aad "+string(a), rk, a, sealed)
		}
	})
	t.Run("other root key", func(t *testing.T) {
		expectInvalid(t, "other key", otherKey, aad, sealed)
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(sealed); n++ {
			expectInvalid(t, "truncated", rk, aad, sealed[:n])
		}
	})
	t.Run("extended", func(t *testing.T) {
		expectInvalid(t, "extended", rk, aad, append(append([]byte(nil), sealed...), 0))
	})
	t.Run("bit flips", func(t *testing.T) {
		small := rk.Seal(aad, []byte("abc"))
		for i := 0; i < len(small)*8; i++ {
			c := append([]byte(nil), small...)
			c[i/8] ^= 1 << (i % 8)
			got, err := rk.Open(aad, c)
			if !errors.Is(err, keys.ErrInvalidCiphertext) || got != nil {
				t.Fatalf("bit %d flipped: Open = %q, %v; want ErrInvalidCiphertext", i, got, err)
			}
		}
	})
}

// FuzzParseRootKey reads arbitrary root key files: it never panics, and a
// key it accepts is one whose base64 or hex spelling reads back as the
// same key (it seals what the first opens).
func FuzzParseRootKey(f *testing.F) {
	k := bytes.Repeat([]byte{0x42}, 32)
	f.Add([]byte(hex.EncodeToString(k)))
	f.Add([]byte(base64.StdEncoding.EncodeToString(k) + "\n"))
	f.Add([]byte(" " + strings.ToUpper(hex.EncodeToString(k)) + "\r\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(k[:31]) + "=="))
	f.Add([]byte(strings.Repeat("z", 64)))
	f.Fuzz(func(t *testing.T, text []byte) {
		rk, err := keys.ParseRootKey(text)
		if err != nil {
			if rk != nil {
				t.Fatal("a key with an error")
			}
			return
		}
		s := strings.TrimSpace(string(text))
		raw, derr := hex.DecodeString(s)
		if len(s) == 44 {
			raw, derr = base64.StdEncoding.DecodeString(s)
		}
		if derr != nil || len(raw) != 32 {
			t.Fatalf("accepted %q, which is not 32 bytes in base64 or hex", text)
		}
		again, err := keys.NewRootKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		sealed := rk.Seal([]byte("aad"), []byte("x"))
		if pt, err := again.Open([]byte("aad"), sealed); err != nil || string(pt) != "x" {
			t.Fatalf("%q reads as another key than its bytes", text)
		}
	})
}

// A root key given where the path of its file goes (--root-key-file KEY,
// KMS_ROOT_KEY_FILE=KEY) is no file: the error says so without quoting
// it, as the error about a missing file would, into the server's log (and
// so does the text of the new key of a rotation).
func TestReadRootKeyFileDoesNotQuoteAKeyGivenAsItsPath(t *testing.T) {
	key := keys.GenerateRootKey()
	text := strings.TrimSpace(string(key))
	hexText := hex.EncodeToString(rootKeyBytes)
	for _, path := range []string{text, hexText, " " + text} {
		_, err := keys.ReadRootKeyFile(path)
		if err == nil {
			t.Fatalf("a root key as the path of its file was read")
		}
		if strings.Contains(err.Error(), strings.TrimSpace(path)) || !strings.Contains(err.Error(), "KMS_ROOT_KEY") {
			t.Errorf("error %q: quotes the key, or does not say where it goes", err)
		}
	}
	for _, path := range []string{text, hexText} {
		_, err := keys.ReadRootKeyText(path)
		if err == nil || strings.Contains(err.Error(), path) {
			t.Errorf("ReadRootKeyText of a key as its path: %v", err)
		}
	}
	// A missing file that is not a key is named.
	if _, err := keys.ReadRootKeyFile("/nonexistent/root.key"); err == nil || !strings.Contains(err.Error(), "/nonexistent/root.key") {
		t.Errorf("a missing file: %v", err)
	}
}
