package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// chainLine is the line of a record numbered seq after prev, as the log
// writes it.
func chainLine(r *Record, seq uint64, prev string) []byte {
	r.Sequence, r.PrevHash = seq, prev
	ev := appendRecord(nil, r)
	return appendLine(nil, chainHash(prev, ev), ev)
}

// FuzzCheckLine holds checkLine's shortcut for the lines the log writes
// to the full JSON decoding: for any bytes, the same hash, sequence
// number and error; and parseLine's, the same hash, record and event.
func FuzzCheckLine(f *testing.F) {
	r := &Record{EventVersion: "1.11", EventName: "Encrypt", RequestParameters: []byte(`{"keyId":"k"}`), ResponseElements: []byte("null")}
	first := chainLine(r, 1, genesis)
	f.Add(bytes.TrimSuffix(first, []byte("\n")), uint64(1), false)
	second := bytes.TrimSuffix(chainLine(r, 2, chainHash(genesis, []byte("x"))), []byte("\n"))
	f.Add(second, uint64(2), true)
	for _, edit := range [][2]string{
		{`"event":{`, `"event": {`},                     // space before the event
		{`}}`, `} }`},                                   // and after it
		{`{"hash":"`, `{"hash" :"`},                     // another framing
		{`"hash":"`, `"hash":"A`},                       // upper-case hash
		{`"sequence":1,`, `"sequence":1,"sequence":2,`}, // a second sequence number
		{`"sequence":1,`, `"SEQUENCE":"x","sequence":1,`},
		{`"previousHash":"`, `"previousHash":"\u0030`},
		{`}}`, `},"hash":"00"}`},
		{`"eventName":"Encrypt"`, `"eventName":"Encrypt}`},
	} {
		f.Add(bytes.Replace(bytes.TrimSuffix(first, []byte("\n")), []byte(edit[0]), []byte(edit[1]), 1), uint64(1), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, seq uint64, afterX bool) {
		prev := genesis
		if afterX {
			prev = chainHash(genesis, []byte("x"))
		}
		hash, n, err := checkLine(b, prev, seq)
		wantHash, wantN, wantErr := checkLineJSON(b, prev, seq)
		if hash != wantHash || n != wantN || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("%q:\ncheckLine     %q %d %v\ncheckLineJSON %q %d %v", b, hash, n, err, wantHash, wantN, wantErr)
		}
		// And parseLine's shortcut to parseLineJSON, with the newline or
		// without.
		for _, ln := range [][]byte{b, append(bytes.Clone(b), '\n')} {
			h, rec, ev, err := parseLine(ln)
			wh, wrec, wev, werr := parseLineJSON(ln)
			if h != wh || !reflect.DeepEqual(rec, wrec) || !bytes.Equal(ev, wev) || (err == nil) != (werr == nil) {
				t.Fatalf("%q:\nparseLine     %q %+v %q %v\nparseLineJSON %q %+v %q %v", ln, h, rec, ev, err, wh, wrec, wev, werr)
			}
		}
	})
}

// FuzzEventFields holds eventFields to json.Unmarshal: for any bytes it
// takes, the same sequence number and previous hash.
func FuzzEventFields(f *testing.F) {
	r := &Record{EventVersion: "1.11", EventName: "Encrypt", RequestParameters: []byte(`{"keyId":"k","a":[1,{"b":"}"}]}`), ResponseElements: []byte("null")}
	ev := appendRecord(nil, r)
	f.Add(ev)
	for _, edit := range [][2]string{
		{`"sequence":`, `"sequence":7,"Sequence":`},
		{`"sequence":`, `"SEQUENCE":null,"sequence":`},
		{`"previousHash":"`, `"previousHash":"\u0030`},
		{`"previousHash":`, `"previoushash":1,"previousHash":`},
		{`"previousHash":`, `"PreviousHash" : "x" , "previousHash":`},
		{`"eventName"`, `"eventNam\u0065"`},
		{`"eventName"`, `"ſequence"`},
	} {
		f.Add(bytes.Replace(ev, []byte(edit[0]), []byte(edit[1]), 1))
	}
	f.Add([]byte(`{"sequence":18446744073709551616}`))
	f.Add([]byte(`{"sequence":-1}`))
	f.Add([]byte(`{"sequence":1e2,"previousHash":"a"}`))
	f.Add([]byte(` {"sequence":1} `))
	f.Fuzz(func(t *testing.T, event []byte) {
		got, ok := eventFields(event)
		if !ok {
			return
		}
		var want chainFields
		if err := json.Unmarshal(event, &want); err != nil || got != want {
			t.Fatalf("%q: eventFields %+v, json.Unmarshal %+v, %v", event, got, want, err)
		}
	})
}

// eventFields takes the events the log writes.
func TestEventFields(t *testing.T) {
	r := &Record{EventVersion: "1.11", EventName: "Encrypt", RequestParameters: []byte(`{"keyId":"k"}`), ResponseElements: []byte("null")}
	r.Sequence, r.PrevHash = 42, chainHash(genesis, []byte("x"))
	got, ok := eventFields(appendRecord(nil, r))
	if !ok || got.Sequence != 42 || got.PrevHash != r.PrevHash {
		t.Fatalf("eventFields of a written event: %+v, %v", got, ok)
	}
}

// The shortcut takes the lines the log writes, and verifies them.
func TestCheckLineShortcut(t *testing.T) {
	r := &Record{EventVersion: "1.11", EventName: "Encrypt", RequestParameters: []byte(`{"keyId":"k"}`), ResponseElements: []byte("null")}
	b := bytes.TrimSuffix(chainLine(r, 7, genesis), []byte("\n"))
	hash, event, ok := splitLine(b)
	if !ok || string(event) != string(appendRecord(nil, r)) || string(hash) != chainHash(genesis, event) {
		t.Fatalf("splitLine(%s) = %s, %s, %v", b, hash, event, ok)
	}
	if h, n, err := checkLine(b, genesis, 7); err != nil || n != 7 || h != string(hash) {
		t.Fatalf("checkLine: %s %d %v", h, n, err)
	}
	if _, _, err := checkLine(b, genesis, 8); err == nil {
		t.Fatal("a record out of place verifies")
	}
}
