package backup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func sample() *Snapshot {
	return &Snapshot{
		Records: []Record{
			{Key: []byte("key/1"), Value: []byte(`{"v":1}`)},
			{Key: []byte("meta/rootkey-check"), Value: []byte{1, 2, 3}},
			{Key: []byte("rotation/1"), Value: nil},
		},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("line\n")}, {Name: "audit.pub", Data: nil}},
		AuditRows:  []Row{{Table: "kms_audit_chains", JSON: []byte(`{"chain":"c"}`)}},
	}
}

func TestRoundTrip(t *testing.T) {
	data := Marshal(sample())
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 3 || len(s.AuditFiles) != 2 || len(s.AuditRows) != 1 || string(s.Records[1].Key) != "meta/rootkey-check" {
		t.Fatalf("parsed %+v", s)
	}
	if !bytes.Equal(Marshal(s), data) {
		t.Error("Parse then Marshal changed the bytes")
	}
}

// Version 3 records when the snapshot was taken, under the checksum;
// versions 1 and 2 do not, and still parse. Each marshals back to the
// same bytes.
func TestVersions(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	dated := sample()
	dated.Created = created
	for _, c := range []struct {
		data    []byte
		version byte
		created time.Time
	}{
		{Marshal(sample()), VersionUnauthenticated, time.Time{}},
		{MarshalAuthenticated(sample(), key), VersionUndated, time.Time{}},
		{MarshalAuthenticated(dated, key), Version, created},
	} {
		if v := c.data[len(Magic)]; v != c.version {
			t.Fatalf("written as version %d, want %d", v, c.version)
		}
		s, err := Parse(c.data)
		if err != nil {
			t.Fatalf("version %d: %v", c.version, err)
		}
		if !s.Created.Equal(c.created) || (s.Tag == nil) != (c.version == VersionUnauthenticated) {
			t.Fatalf("version %d: parsed the time %v and the tag %x", c.version, s.Created, s.Tag)
		}
		if !bytes.Equal(Marshal(s), c.data) {
			t.Fatalf("version %d: Parse then Marshal changed the bytes", c.version)
		}
		if got, err := Check(bytes.NewReader(c.data)); err != nil || !got.Created.Equal(c.created) {
			t.Fatalf("version %d: Check = %+v, %v", c.version, got, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := Marshal(sample())
	flipped := bytes.Clone(good)
	flipped[len(Magic)+10] ^= 0x40
	version := bytes.Clone(good)
	version[len(Magic)] = 2
	unknown := bytes.Clone(good)
	unknown[len(Magic)] = Version + 1
	unordered := Marshal(&Snapshot{Records: []Record{{Key: []byte("b")}, {Key: []byte("a")}}})
	badName := Marshal(&Snapshot{AuditFiles: []File{{Name: "../etc/passwd"}}})
	// Plain names, but not the trail's: restore would plant them in the
	// data directory.
	rootKey := Marshal(&Snapshot{AuditFiles: []File{{Name: "root.key"}}})
	credentials := Marshal(&Snapshot{AuditFiles: []File{{Name: "credentials"}}})
	badTable := Marshal(&Snapshot{AuditRows: []Row{{Table: "kms_records", JSON: []byte("{}")}}})
	for name, data := range map[string][]byte{
		"empty":       nil,
		"no magic":    []byte("hello"),
		"version":     version,
		"unknown":     unknown,
		"bit flipped": flipped,
		"truncated":   good[:len(good)-1],
		"unordered":   unordered,
		"bad name":    badName,
		"root.key":    rootKey,
		"credentials": credentials,
		"bad table":   badTable,
		"appended":    append(bytes.Clone(good), 0),
	} {
		if s, err := Parse(data); !errors.Is(err, ErrFormat) || s != nil {
			t.Errorf("%s: Parse = %v, %v; want nil, ErrFormat", name, s, err)
		}
	}
}

func TestCheck(t *testing.T) {
	data := Marshal(sample())
	c, err := Check(bytes.NewReader(data))
	if err != nil || c != (Counts{Records: 3, AuditFiles: 2, AuditRows: 1, Bytes: int64(len(data))}) {
		t.Fatalf("Check = %+v, %v", c, err)
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		if _, err := Check(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
			t.Fatalf("Check accepts the file with byte %d flipped", i)
		}
	}
	if _, err := Check(bytes.NewReader(append(bytes.Clone(data), 0))); !errors.Is(err, ErrFormat) {
		t.Fatal("Check accepts data after the checksum")
	}
}

// FuzzParse feeds Parse arbitrary files: it must never panic, and whatever
// it accepts must marshal back to the same bytes. The checksum would make
// random inputs fail early, so the fuzzer's input is also tried as a body
// with a valid checksum appended.
func FuzzParse(f *testing.F) {
	good := Marshal(sample())
	f.Add(good)
	f.Add(MarshalAuthenticated(sample(), bytes.Repeat([]byte{7}, 32)))
	dated := sample()
	dated.Created = time.Unix(1767225600, 0)
	f.Add(MarshalAuthenticated(dated, bytes.Repeat([]byte{7}, 32)))
	f.Add(good[:len(good)-32])
	f.Add([]byte(Magic + "\x01\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withChecksum(data)} {
			s, err := Parse(in)
			c, cerr := Check(bytes.NewReader(in))
			heads, serr := scanHeads(in)
			if (serr == nil) != (err == nil) {
				t.Fatalf("Parse says %v, Scan reading files in part says %v, for %x", err, serr, in)
			}
			if err != nil {
				if s != nil {
					t.Fatal("Parse returned a value with an error")
				}
				continue
			}
			if !bytes.Equal(Marshal(s), in) {
				t.Fatalf("Parse then Marshal differs for %x", in)
			}
			for i, f := range s.AuditFiles {
				if !bytes.HasPrefix(f.Data, heads[i]) {
					t.Fatalf("Scan read %q of audit file %s, which holds %q", heads[i], f.Name, f.Data)
				}
			}
			// Check reads as a stream what Parse reads whole, less strictly.
			if cerr != nil || c.Records != len(s.Records) || c.AuditFiles != len(s.AuditFiles) || c.AuditRows != len(s.AuditRows) || c.Bytes != int64(len(in)) {
				t.Fatalf("Parse accepts %x, Check says %+v, %v", in, c, cerr)
			}
		}
	})
}

func withChecksum(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(bytes.Clone(body), sum[:]...)
}

// scanHeads scans a backup, reading no more than the first 3 bytes of
// each audit file, and returns what it read of each.
func scanHeads(data []byte) ([][]byte, error) {
	var heads [][]byte
	err := Scan(bytes.NewReader(data), int64(len(data)), func(e *Entry) error {
		if e.Kind != kindAuditFile {
			return nil
		}
		head := make([]byte, min(e.Size, 3))
		if _, err := io.ReadFull(e.File, head); err != nil {
			return err
		}
		heads = append(heads, head)
		return nil
	})
	return heads, err
}

// An audit file cut short reads as io.ErrUnexpectedEOF through Entry.File,
// so that a restore copying it never takes a part for the whole: the
// backup file may have shrunk since its size was taken.
func TestScanCutFile(t *testing.T) {
	data := Marshal(&Snapshot{AuditFiles: []File{{Name: "audit.log", Data: bytes.Repeat([]byte("x"), 100<<10)}}})
	cut := data[:len(data)/2]
	err := Scan(bytes.NewReader(cut), int64(len(data)), func(e *Entry) error {
		_, err := io.Copy(io.Discard, e.File)
		return err
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("copying a cut audit file: %v, want io.ErrUnexpectedEOF", err)
	}
	// Left unread, the same file is still found cut.
	err = Scan(bytes.NewReader(cut), int64(len(data)), func(*Entry) error { return nil })
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("skipping a cut audit file: %v, want ErrFormat", err)
	}
}

// zeros reads as a sparse file does: zero bytes, without end.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A record or audit row that claims more bytes than any holds is refused
// as soon as its length is read, before its value is read or room made
// for it: the tag that tells a forged file comes only at the end, and a
// sparse file claims gigabytes for nothing.
func TestScanRefusesAHugeValue(t *testing.T) {
	const claimed = 256 << 20
	for _, kind := range []byte{kindRecord, kindAuditRow} {
		var head bytes.Buffer
		e := NewEncoder(&head, nil, time.Time{})
		name := "key/1"
		if kind == kindAuditRow {
			name = AuditTables[0]
		}
		if err := e.head(kind, []byte(name), claimed); err != nil {
			t.Fatal(err)
		}
		body := &countingReader{r: io.MultiReader(bytes.NewReader(head.Bytes()), zeros{})}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := Scan(body, 4<<30, func(*Entry) error { return errors.New("called back with the entry") })
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "too long") {
			t.Errorf("kind %d: Scan = %v, want ErrFormat saying the entry is too long", kind, err)
		}
		if body.n > 1<<20 {
			t.Errorf("kind %d: Scan read %d bytes of a file whose first entry claims %d", kind, body.n, claimed)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20 {
			t.Errorf("kind %d: Scan allocated %d bytes before refusing the file", kind, a)
		}
		if _, err := Check(io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(zeros{}, claimed))); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "too long") {
			t.Errorf("kind %d: Check = %v, want ErrFormat saying the entry is too long", kind, err)
		}
	}
}
