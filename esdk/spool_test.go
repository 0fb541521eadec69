package esdk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// TestSpoolChunks: a spool takes whole chunks but for the last, and
// refuses one after a short chunk, since it reads every chunk back at
// spoolChunk bytes but the last.
func TestSpoolChunks(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	full, short := testPlaintext(spoolChunk), testPlaintext(7)
	for _, p := range [][]byte{full, full, short} {
		if err := sp.write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.write(short); !errors.Is(err, errSpoolChunk) {
		t.Fatalf("a chunk after a short one: %v", err)
	}
	if err := sp.write(testPlaintext(spoolChunk + 1)); !errors.Is(err, errSpoolChunk) {
		t.Fatalf("a chunk longer than spoolChunk: %v", err)
	}
	if err := sp.rewind(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		p, err := sp.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p...)
	}
	if want := append(append(bytes.Clone(full), full...), short...); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(want))
	}
}

// TestSpoolRearranged moves whole sealed chunks of a spool's file, as a
// process that could write the file might: two chunks swapped, one
// replayed in another's place (the last, short one too), the last one
// cut short or dropped. Each
// chunk's nonce is its place, so reading back fails at the first chunk
// out of place, and every chunk returned before is the one written there.
func TestSpoolRearranged(t *testing.T) {
	const sealed = spoolChunk + tagSize
	const chunks = spoolMemory/spoolChunk + 4 // the last one short
	want := make([][]byte, chunks)
	for i := range want {
		want[i] = testPlaintext(spoolChunk)
		want[i][0] = byte(i) // no two chunks alike
	}
	want[chunks-1] = want[chunks-1][:100]
	swap := func(f *os.File, i, j int) error {
		a, b := make([]byte, sealed), make([]byte, sealed)
		if _, err := f.ReadAt(a, int64(i*sealed)); err != nil {
			return err
		}
		if _, err := f.ReadAt(b, int64(j*sealed)); err != nil {
			return err
		}
		if _, err := f.WriteAt(b, int64(i*sealed)); err != nil {
			return err
		}
		_, err := f.WriteAt(a, int64(j*sealed))
		return err
	}
	replay := func(f *os.File, from, to int) error {
		a := make([]byte, sealed)
		if _, err := f.ReadAt(a, int64(from*sealed)); err != nil {
			return err
		}
		_, err := f.WriteAt(a, int64(to*sealed))
		return err
	}
	for _, tc := range []struct {
		name   string
		change func(f *os.File) error
		bad    int // the first chunk that must fail
	}{
		{"swapped", func(f *os.File) error { return swap(f, 3, 4) }, 3},
		{"replayed", func(f *os.File) error { return replay(f, 2, 5) }, 5},
		{"replayed last", func(f *os.File) error { return replay(f, 0, chunks-1) }, chunks - 1},
		{"last cut", func(f *os.File) error { return f.Truncate((chunks-1)*sealed + 50) }, chunks - 1},
		{"last dropped", func(f *os.File) error { return f.Truncate((chunks - 1) * sealed) }, chunks - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := newSpool(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer sp.close()
			for _, p := range want {
				if err := sp.write(p); err != nil {
					t.Fatal(err)
				}
			}
			if sp.f == nil {
				t.Fatal("the spool did not move to a file")
			}
			if err := sp.w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := tc.change(sp.f); err != nil {
				t.Fatal(err)
			}
			if err := sp.rewind(); err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				got, err := sp.next()
				if err != nil {
					if err == io.EOF || i != tc.bad {
						t.Fatalf("chunk %d: %v, want chunk %d to fail", i, err, tc.bad)
					}
					return
				}
				if i >= tc.bad || !bytes.Equal(got, want[i]) {
					t.Fatalf("chunk %d read back (%d bytes, right %v), want chunk %d to fail", i, len(got), bytes.Equal(got, want[i]), tc.bad)
				}
			}
		})
	}
}
