package auditcli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// unmarshalPage is the reading decodePage must always agree with.
func unmarshalPage(b []byte) ([]trailLine, bool, int64, error) {
	var out struct {
		Records, Digests []trailLine
		Truncated        bool
		LastSequence     *int64
	}
	err := json.Unmarshal(b, &out)
	lines := append(out.Records, out.Digests...)
	last := lastSequence(lines)
	if out.LastSequence != nil {
		last = *out.LastSequence
	}
	return lines, out.Truncated, last, err
}

// pageLines are lines whose escaping a page must carry exactly.
var pageLines = []string{
	`{"eventVersion":"1.08","requestParameters":{"keyId":"alias/a\"b"},"x":"<tag>&amp;"}`,
	"",
	`back\slash and \"quoted\" and /slash/`,
	"controls \x00\x01\x1f\t\r\b\f and DEL \x7f",
	"non-ASCII é ü 日本 😀 and separators \u2028 \u2029",
	"bytes that are not UTF-8: \xff\xfe \xc3 end",
	"the replacement character \ufffd itself",
}

// TestDecodePageReadsTheServersForm checks that the pages the server
// writes (json.Marshal of its answer, api/trail.go) take the one-pass
// reading, and that it reads them as json.Unmarshal does.
func TestDecodePageReadsTheServersForm(t *testing.T) {
	var lines []trailLine
	for i, l := range pageLines {
		lines = append(lines, trailLine{Sequence: int64(i*1000 + 1), Line: l})
	}
	lines = append(lines, trailLine{Sequence: 1<<63 - 1, Line: "last"})
	type records struct {
		Records      []trailLine
		Truncated    bool
		LastSequence int64
	}
	type digests struct {
		Digests      []trailLine
		Truncated    bool
		LastSequence int64
	}
	type older struct { // a server's before LastSequence
		Records   []trailLine
		Truncated bool
	}
	for name, v := range map[string]any{
		"records, more":        records{lines, true, 1<<63 - 1},
		"records, the last":    records{lines[:2], false, 2000},
		"digests":              digests{lines, true, 1<<63 - 1},
		"empty":                records{[]trailLine{}, false, 0},
		"none":                 records{nil, false, 0},
		"none, more":           records{[]trailLine{}, true, 12345},
		"no LastSequence":      older{lines[:3], true},
		"no LastSequence, end": older{nil, false},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, more, last, ok := fastPage(b)
		if !ok {
			t.Errorf("%s: %s is not read in one pass", name, b)
			continue
		}
		want, wantMore, wantLast, err := unmarshalPage(b)
		if err != nil || more != wantMore || last != wantLast || !slices.Equal(got, want) {
			t.Errorf("%s: read %v, %v, %d; json.Unmarshal %v, %v, %d, %v", name, got, more, last, want, wantMore, wantLast, err)
		}
	}
}

// TestDecodePageHandsOnTheRest checks that what the one-pass reading
// declines, valid JSON among it, is read by json.Unmarshal, and that what
// is not JSON fails.
func TestDecodePageHandsOnTheRest(t *testing.T) {
	for _, tc := range []struct {
		page      string
		lines     []trailLine
		more, bad bool
	}{
		{page: `{ "Records": [{"Sequence": 1, "Line": "a"}], "Truncated": true }`, lines: []trailLine{{1, "a"}}, more: true},
		{page: `{"records":[{"sequence":2,"line":"b"}],"truncated":false}`, lines: []trailLine{{2, "b"}}},
		{page: `{"Truncated":true,"Records":[{"Line":"c","Sequence":3}]}`, lines: []trailLine{{3, "c"}}, more: true},
		{page: `{"Records":[{"Sequence":4,"Line":"\ud83d\ude00 \ud800"}],"Truncated":false}`, lines: []trailLine{{4, "😀 \ufffd"}}},
		{page: "{\"Records\":[{\"Sequence\":5,\"Line\":\"\xff\"}],\"Truncated\":false}", lines: []trailLine{{5, "\ufffd"}}},
		{page: `{"Records":[{"Sequence":6,"Line":"d","Extra":1}],"Truncated":false}`, lines: []trailLine{{6, "d"}}},
		{page: `{"Records":[{"Sequence":7,"Line":null}],"Truncated":false}`, lines: []trailLine{{7, ""}}},
		{page: `{"Records":[{"Sequence":07,"Line":"e"}],"Truncated":false}`, bad: true},
		{page: `{"Records":[{"Sequence":1e3,"Line":"e"}],"Truncated":false}`, bad: true},
		{page: `{"Records":[{"Sequence":9223372036854775808,"Line":"e"}],"Truncated":false}`, bad: true},
		{page: "{\"Records\":[{\"Sequence\":8,\"Line\":\"a\nb\"}],\"Truncated\":false}", bad: true},
		{page: `{"Records":[{"Sequence":9,"Line":"\x"}],"Truncated":false}`, bad: true},
		{page: `{"Records":[{"Sequence":10,"Line":"\u12"}],"Truncated":false}`, bad: true},
		{page: `{"Records":[{"Sequence":11,"Line":"f"}],"Truncated":false}x`, bad: true},
		{page: `{"Records":[{"Sequence":12,"Line":"f"}],"Truncated":false`, bad: true},
		{page: `{"Records":[{"Sequence":13,"Line":"f"}`, bad: true},
	} {
		if _, _, _, ok := fastPage([]byte(tc.page)); ok {
			t.Errorf("%s: read in one pass; json.Unmarshal should have read it", tc.page)
		}
		lines, more, _, err := decodePage([]byte(tc.page))
		switch {
		case tc.bad:
			if err == nil {
				t.Errorf("%s: read as %v, want an error", tc.page, lines)
			}
		case err != nil || more != tc.more || !slices.Equal(lines, tc.lines):
			t.Errorf("%s: read %v, %v, %v; want %v, %v", tc.page, lines, more, err, tc.lines, tc.more)
		}
	}
}

// FuzzDecodePage holds decodePage to json.Unmarshal's reading of any
// answer.
func FuzzDecodePage(f *testing.F) {
	for _, l := range pageLines {
		b, _ := json.Marshal(struct {
			Records   []trailLine
			Truncated bool
		}{[]trailLine{{1, l}, {2, strings.ToUpper(l)}}, true})
		f.Add(b)
	}
	f.Add([]byte(`{"Digests":[{"Sequence":-3,"Line":"\u00e9\ud83d\ude00"}],"Truncated":false}` + "\n"))
	f.Add([]byte(`{"Records":null,"Truncated":true}`))
	f.Add([]byte(`{"Records":[],"Truncated":true,"LastSequence":10000}`))
	f.Add([]byte(`{"Records":[{"Sequence":3,"Line":"x"}],"Truncated":false,"LastSequence":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, more, last, err := decodePage(b)
		want, wantMore, wantLast, wantErr := unmarshalPage(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v; json.Unmarshal's %v", b, err, wantErr)
		}
		if err == nil && (more != wantMore || last != wantLast || !slices.Equal(got, want)) {
			t.Fatalf("%q: read %+v, %v, %d; json.Unmarshal %+v, %v, %d", b, got, more, last, want, wantMore, wantLast)
		}
	})
}
