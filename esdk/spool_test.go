package esdk

import (
	"bytes"
	"errors"
	"io"
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
