package keys_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// testdata/fuzz_seeds_v1.json holds blobs and root-key sealed values that
// were produced once by Seal under fixed keys. The seeds must be fixed, not
// sealed afresh on each run: fuzz workers run in other processes, and a
// cached corpus entry from an earlier run must not count as a forgery.
type fuzzSeeds struct {
	Material string `json:"material"`
	KeyID    string `json:"key_id"`
	Version  uint32 `json:"version"`
	Blobs    []struct {
		Context   map[string]string `json:"context"`
		Plaintext string            `json:"plaintext"`
		Blob      string            `json:"blob"`
	} `json:"blobs"`
	RootKey string `json:"root_key"`
	Sealed  []struct {
		AAD       string `json:"aad"`
		Plaintext string `json:"plaintext"`
		Sealed    string `json:"sealed"`
	} `json:"sealed"`
}

type seedBlob struct {
	blob, plaintext, context []byte // context is the fuzz encoding
	ec                       map[string]string
}

type seedSealed struct {
	aad, plaintext, sealed []byte
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func loadFuzzSeeds(t testing.TB) (*keys.Symmetric, []seedBlob, *keys.RootKey, []seedSealed) {
	t.Helper()
	raw, err := os.ReadFile("testdata/fuzz_seeds_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var fs fuzzSeeds
	if err := json.Unmarshal(raw, &fs); err != nil {
		t.Fatal(err)
	}
	var id keys.ID
	if n := copy(id[:], mustHex(t, fs.KeyID)); n != 16 {
		t.Fatalf("key_id %q", fs.KeyID)
	}
	s := mustSymmetric(t, id, fs.Version, mustHex(t, fs.Material))
	var blobs []seedBlob
	for _, b := range fs.Blobs {
		blobs = append(blobs, seedBlob{
			blob:      mustHex(t, b.Blob),
			plaintext: mustHex(t, b.Plaintext),
			context:   encodeFuzzContext(b.Context),
			ec:        b.Context,
		})
	}
	rk := mustRootKey(t, mustHex(t, fs.RootKey))
	var sealed []seedSealed
	for _, x := range fs.Sealed {
		sealed = append(sealed, seedSealed{mustHex(t, x.AAD), mustHex(t, x.Plaintext), mustHex(t, x.Sealed)})
	}
	return s, blobs, rk, sealed
}

// decodeFuzzContext turns fuzz bytes into an encryption context: NUL-separated
// key, value, key, value...; a missing last value is "". No bytes is nil.
func decodeFuzzContext(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	ec := make(map[string]string)
	for i := 0; i < len(parts); i += 2 {
		v := ""
		if i+1 < len(parts) {
			v = string(parts[i+1])
		}
		ec[string(parts[i])] = v
	}
	return ec
}

func encodeFuzzContext(ec map[string]string) []byte {
	names := make([]string, 0, len(ec))
	for k := range ec {
		names = append(names, k)
	}
	slices.Sort(names)
	var b []byte
	for i, k := range names {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(append(append(b, k...), 0), ec[k]...)
	}
	return b
}

func TestFuzzSeedsOpen(t *testing.T) {
	s, blobs, rk, sealed := loadFuzzSeeds(t)
	if len(blobs) == 0 || len(sealed) == 0 {
		t.Fatal("no fuzz seeds")
	}
	for i, b := range blobs {
		if ec := decodeFuzzContext(b.context); !bytes.Equal(keys.AppendContext(nil, ec), keys.AppendContext(nil, b.ec)) {
			t.Fatalf("seed %d: context %#v does not survive the fuzz encoding (%#v)", i, b.ec, ec)
		}
		pt, err := s.Open(b.blob, b.ec)
		if err != nil || !bytes.Equal(pt, b.plaintext) {
			t.Fatalf("seed blob %d: Open = %x, %v; want %x", i, pt, err, b.plaintext)
		}
	}
	for i, x := range sealed {
		pt, err := rk.Open(x.aad, x.sealed)
		if err != nil || !bytes.Equal(pt, x.plaintext) {
			t.Fatalf("seed sealed value %d: Open = %x, %v; want %x", i, pt, err, x.plaintext)
		}
	}
}

func FuzzOpen(f *testing.F) {
	s, blobs, _, _ := loadFuzzSeeds(f)
	for _, b := range blobs {
		f.Add(b.blob, b.context)
	}
	// A few near misses to start from.
	f.Add(blobs[1].blob, encodeFuzzContext(blobs[2].ec))
	f.Add(blobs[0].blob[:keys.BlobOverhead-1], []byte(nil))
	f.Add([]byte{keys.FormatV1}, []byte("a\x00b"))

	other := mustSymmetric(f, s.KeyID, s.Version, testMaterial)

	f.Fuzz(func(t *testing.T, blob, ctx []byte) {
		ec := decodeFuzzContext(ctx)
		blobCopy := bytes.Clone(blob)

		h, herr := keys.ParseHeader(blob)
		wellFormed := len(blob) >= keys.BlobOverhead && blob[0] == keys.FormatV1
		switch {
		case wellFormed && herr != nil:
			t.Fatalf("ParseHeader rejected a well-formed header: %v", herr)
		case !wellFormed && !errors.Is(herr, keys.ErrInvalidCiphertext):
			t.Fatalf("ParseHeader(%x) = %v, %v; want ErrInvalidCiphertext", blob, h, herr)
		case wellFormed && (!bytes.Equal(h.KeyID[:], blob[1:17]) || h.Version != binary.BigEndian.Uint32(blob[17:21])):
			t.Fatalf("ParseHeader(%x) = %v, does not match the header bytes", blob, h)
		}

		// The seed this input is, if any: same bytes, same context.
		var match *seedBlob
		encoded := keys.AppendContext(nil, ec)
		for i := range blobs {
			if bytes.Equal(blob, blobs[i].blob) && bytes.Equal(encoded, keys.AppendContext(nil, blobs[i].ec)) {
				match = &blobs[i]
			}
		}

		pt, err := s.Open(blob, ec)
		if err == nil {
			if match == nil {
				t.Fatalf("Open accepted a blob this key never sealed: blob %x, context %#v, plaintext %x", blob, ec, pt)
			}
			if !bytes.Equal(pt, match.plaintext) {
				t.Fatalf("Open of a seed blob = %x, want %x", pt, match.plaintext)
			}
			if herr != nil {
				t.Fatalf("Open succeeded where ParseHeader failed: %v", herr)
			}
		} else {
			if !errors.Is(err, keys.ErrInvalidCiphertext) || pt != nil {
				t.Fatalf("Open = %x, %v; want nil, ErrInvalidCiphertext", pt, err)
			}
			if match != nil {
				t.Fatalf("Open rejected a seed blob with its own context: %v", err)
			}
		}
		if !bytes.Equal(blob, blobCopy) {
			t.Fatal("ParseHeader or Open modified the blob")
		}

		// The same bytes never open under other material with the same
		// key id and version.
		if pt, err := other.Open(blob, ec); !errors.Is(err, keys.ErrInvalidCiphertext) || pt != nil {
			t.Fatalf("Open under other material = %x, %v; want ErrInvalidCiphertext", pt, err)
		}
	})
}

func FuzzRootKeyOpen(f *testing.F) {
	_, _, rk, sealed := loadFuzzSeeds(f)
	for _, x := range sealed {
		f.Add(x.aad, x.sealed)
	}
	f.Add(sealed[1].aad, sealed[2].sealed)
	f.Add([]byte(nil), sealed[0].sealed[:27])

	f.Fuzz(func(t *testing.T, aad, in []byte) {
		inCopy := bytes.Clone(in)
		var match *seedSealed
		for i := range sealed {
			if bytes.Equal(in, sealed[i].sealed) && bytes.Equal(aad, sealed[i].aad) {
				match = &sealed[i]
			}
		}
		pt, err := rk.Open(aad, in)
		if err == nil {
			if match == nil {
				t.Fatalf("RootKey.Open accepted a value it never sealed: aad %x, sealed %x, plaintext %x", aad, in, pt)
			}
			if !bytes.Equal(pt, match.plaintext) {
				t.Fatalf("RootKey.Open of a seed = %x, want %x", pt, match.plaintext)
			}
		} else {
			if !errors.Is(err, keys.ErrInvalidCiphertext) || pt != nil {
				t.Fatalf("RootKey.Open = %x, %v; want nil, ErrInvalidCiphertext", pt, err)
			}
			if match != nil {
				t.Fatalf("RootKey.Open rejected a seed with its own aad: %v", err)
			}
		}
		if !bytes.Equal(in, inCopy) {
			t.Fatal("RootKey.Open modified its input")
		}
	})
}
