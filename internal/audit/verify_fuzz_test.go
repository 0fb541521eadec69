package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/openkms/kms/internal/audit"
)

// FuzzVerify feeds the log readers what a disk, a database or an attacker
// could hold: they must not panic, whatever the bytes. The hash a log
// check keeps for a named sequence number must be the one the first
// record carrying that number claims, as json.Unmarshal reads them, up to
// the first zero byte, where a segment's records end (SegmentData); no
// line after it is read.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"hash":"00","event":{"sequence":1,"previousHash":"0000000000000000000000000000000000000000000000000000000000000000"}}` + "\n"))
	f.Add([]byte("{\"hash\":\"\",\"event\":{}}\n{\n"))
	f.Add([]byte(`{"hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","event":{"sequence":2}}` + "\n" +
		`{"hash":"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef","event":{"sequence":1}}` + "\n"))
	f.Add([]byte("{\"hash\":\"1\",\"event\":{\"sequence\":1}}\n\x00\n{\"hash\":\"0\",\"event\":{\"sequence\":2}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		audit.Verify(bytes.NewReader(b))
		audit.Read(bytes.NewReader(b), func(*audit.Record, json.RawMessage) error { return nil })
		named, _ := lineHashes(t, b)
		data := b
		if z := bytes.IndexByte(b, 0); z >= 0 {
			data = b[:z]
		}
		lines := bytes.Split(data, []byte("\n"))
		first := map[uint64]string{}
		for _, ln := range lines[:len(lines)-1] { // the last is not a complete line
			var rec struct {
				Hash  string          `json:"hash"`
				Event json.RawMessage `json:"event"`
			}
			var ev struct {
				Sequence     uint64 `json:"sequence"`
				PreviousHash string `json:"previousHash"`
			}
			if json.Unmarshal(ln, &rec) != nil || json.Unmarshal(rec.Event, &ev) != nil || rec.Hash == "" || ev.Sequence == 0 {
				continue
			}
			if _, ok := first[ev.Sequence]; !ok {
				first[ev.Sequence] = rec.Hash
			}
		}
		for seq := uint64(1); seq <= uint64(bytes.Count(b, []byte("\n"))); seq++ {
			if got := named.Hash(seq); got != first[seq] {
				t.Fatalf("the first record numbered %d claims %q, the check kept %q", seq, first[seq], got)
			}
		}
	})
}

// TestFlipEveryByte changes each byte of a valid log in turn: the change
// must fail to verify, or leave every record exactly as it was (a change
// to the JSON framing alone, such as the case of a member name, which the
// records do not depend on).
func TestFlipEveryByte(t *testing.T) {
	valid, err := os.ReadFile(writeLog(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := records(t, valid)
	for at := range valid {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			changed := bytes.Clone(valid)
			changed[at] ^= mask
			if _, p, err := audit.Verify(bytes.NewReader(changed)); err != nil || p != nil {
				continue // detected
			}
			if got := records(t, changed); !reflect.DeepEqual(got, want) {
				t.Fatalf("byte %d ^ %#x changed a record and still verifies:\n%s", at, mask, changed)
			}
		}
	}
}

func records(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	err := audit.Read(bytes.NewReader(b), func(_ *audit.Record, ev json.RawMessage) error {
		out = append(out, string(ev))
		return nil
	})
	if err != nil {
		t.Fatalf("a log that verifies does not read: %v", err)
	}
	return out
}
