package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// A chain is a sequence of lines, one per record:
//
//	{"hash":"<hex SHA-256>","event":<the record's JSON>}
//
// where hash = SHA-256(previous record's hash as hex ‖ the event's bytes
// exactly as written), and the event carries its sequence number (from 1)
// and previousHash. The first record's previousHash is 64 zeros. A log
// file holds one chain, a line per record; in PostgreSQL each server
// process writes a chain of its own, a row per line (without the newline).

// genesis is the previous hash of the first record.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

type line struct {
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

// checkLine verifies one line against the chain so far. A line framed as
// appendLine frames it is checked without decoding the line itself, which
// gives the same result as checkLineJSON at half the cost; any other line
// goes to checkLineJSON.
func checkLine(b []byte, prev string, wantSeq uint64) (string, uint64, error) {
	hash, event, ok := splitLine(b)
	if !ok {
		return checkLineJSON(b, prev, wantSeq)
	}
	ev, ok := eventFields(event)
	if !ok && json.Unmarshal(event, &ev) != nil {
		return checkLineJSON(b, prev, wantSeq) // for its error
	}
	return checkEvent(hash, event, ev, prev, wantSeq)
}

// eventFields returns the chain fields of an event as json.Unmarshal into
// chainFields returns them, without decoding the rest of the event: the
// event must be a valid JSON object whose member names are plain ASCII
// (no escape), whose last sequence (names match without regard to case,
// and the last wins) is an integer written as digits alone, and whose
// last previousHash is a string of plain ASCII. ok is false for any other
// event, which is left to json.Unmarshal.
func eventFields(event []byte) (ev chainFields, ok bool) {
	if len(event) == 0 || event[0] != '{' || !json.Valid(event) {
		return ev, false
	}
	i := 1
	for {
		i = skipSpace(event, i)
		if event[i] == '}' {
			return ev, true
		}
		// A name: a string, then a colon.
		end := i + 1
		for event[end] != '"' {
			if event[end] == '\\' || event[end] >= 0x80 {
				return ev, false
			}
			end++
		}
		name := event[i+1 : end]
		i = skipSpace(event, end+1) + 1 // past the colon
		i = skipSpace(event, i)
		j := skipValue(event, i)
		value := event[i:j]
		switch {
		case asciiEqualFold(name, "sequence"):
			n, err := strconv.ParseUint(string(value), 10, 64)
			if err != nil || value[0] < '0' || value[0] > '9' {
				return ev, false // not digits alone (null, a string, a sign) or too large
			}
			ev.Sequence = n
		case asciiEqualFold(name, "previousHash"):
			if value[0] != '"' {
				return ev, false
			}
			for _, c := range value {
				if c == '\\' || c >= 0x80 {
					return ev, false
				}
			}
			ev.PrevHash = string(value[1 : len(value)-1])
		}
		i = skipSpace(event, j)
		if event[i] == ',' {
			i++
		}
	}
}

// skipSpace returns the index of the first byte of b from i on that is
// not JSON white space.
func skipSpace(b []byte, i int) int {
	for b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value that starts at
// b[i], in b that json.Valid accepted.
func skipValue(b []byte, i int) int {
	depth, inString := 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return i + 1
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return i // the end of a number, true, false or null
		}
	}
	return i
}

// asciiEqualFold reports whether the ASCII name equals want, ignoring the
// case of letters, as encoding/json matches an ASCII member name to a
// field.
func asciiEqualFold(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range name {
		a, b := name[i], want[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// checkLineJSON is checkLine for a line of any JSON form.
func checkLineJSON(b []byte, prev string, wantSeq uint64) (string, uint64, error) {
	var ln line
	if err := json.Unmarshal(b, &ln); err != nil {
		return "", 0, fmt.Errorf("not a record line: %v", err)
	}
	var ev chainFields
	if err := json.Unmarshal(ln.Event, &ev); err != nil {
		return "", 0, fmt.Errorf("event is not JSON: %v", err)
	}
	return checkEvent([]byte(ln.Hash), ln.Event, ev, prev, wantSeq)
}

// chainFields are the fields of an event that place it in its chain.
type chainFields struct {
	Sequence uint64 `json:"sequence"`
	PrevHash string `json:"previousHash"`
}

func checkEvent(hash, event []byte, ev chainFields, prev string, wantSeq uint64) (string, uint64, error) {
	if ev.Sequence != wantSeq {
		return "", 0, fmt.Errorf("sequence %d where %d was expected (a record was removed or moved)", ev.Sequence, wantSeq)
	}
	if ev.PrevHash != prev {
		return "", 0, errors.New("previousHash does not match the record before (a record was removed, moved or edited)")
	}
	h := chainHash(prev, event)
	if h != string(hash) {
		return "", 0, errors.New("hash does not match the record (it was edited)")
	}
	return h, ev.Sequence, nil
}

// splitLine returns the hash and the event of a line framed exactly as
// appendLine frames it, with a hash of 64 lower-case hex digits. For such
// a line whose event is valid JSON, decoding the line as JSON gives the
// same hash and the same event bytes. ok is false for any other line.
func splitLine(b []byte) (hash, event []byte, ok bool) {
	const head, mid = `{"hash":"`, `","event":`
	const n = len(head) + 2*sha256.Size + len(mid)
	if len(b) <= n || string(b[:len(head)]) != head || string(b[n-len(mid):n]) != mid || b[len(b)-1] != '}' {
		return nil, nil, false
	}
	hash = b[len(head) : n-len(mid)]
	for _, c := range hash {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, nil, false
		}
	}
	event = b[n : len(b)-1]
	if len(event) < 2 || event[0] != '{' || event[len(event)-1] != '}' {
		return nil, nil, false // JSON would not count the space around it
	}
	return hash, event, true
}

// chainHash is a record's hash: hex SHA-256 of the previous record's hash
// (hex) followed by the record's event bytes.
func chainHash(prev string, event []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(event)
	return hex.EncodeToString(h.Sum(nil))
}

// hashLinked is chainHash(prev, event) for a buffer that holds prev
// followed by event, hashed in one sum with nothing allocated but the
// result.
func hashLinked(prevAndEvent []byte) string {
	sum := sha256.Sum256(prevAndEvent)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// appendLine appends the line of the record whose event bytes are ev and
// whose hash is hash, with its newline.
func appendLine(b []byte, hash string, ev []byte) []byte {
	b = append(b, `{"hash":"`...)
	b = append(b, hash...)
	b = append(b, `","event":`...)
	b = append(b, ev...)
	return append(b, "}\n"...)
}

// ParseLine parses a line of a chain, with or without its newline, into
// its record and the record's event bytes, without verifying them. The
// event does not share b's memory.
func ParseLine(b []byte) (*Record, json.RawMessage, error) {
	_, rec, event, err := parseLine(b)
	return rec, event, err
}

// parseLine parses a line into its hash and record, without verifying. A
// line framed as appendLine frames it is split without decoding the frame
// (splitLine), which gives what decoding it would.
func parseLine(b []byte) (hash string, rec *Record, event json.RawMessage, err error) {
	if h, ev, ok := splitLine(bytes.TrimSuffix(b, []byte("\n"))); ok {
		rec = new(Record)
		if json.Unmarshal(ev, rec) == nil {
			return string(h), rec, bytes.Clone(ev), nil
		}
	}
	return parseLineJSON(b)
}

// parseLineJSON is parseLine for a line of any JSON form.
func parseLineJSON(b []byte) (hash string, rec *Record, event json.RawMessage, err error) {
	var ln line
	if err := json.Unmarshal(b, &ln); err != nil {
		return "", nil, nil, err
	}
	rec = new(Record)
	if err := json.Unmarshal(ln.Event, rec); err != nil {
		return "", nil, nil, err
	}
	return ln.Hash, rec, ln.Event, nil
}
