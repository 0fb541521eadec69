package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// badText reports whether a JSON body holds text that is not Unicode: bytes
// that are not UTF-8, or a \u escape of a surrogate that is not half of a
// pair. encoding/json would turn either into U+FFFD, so that different
// strings on the wire (an encryption context of "\ud800", of "\udfff" or of
// a raw 0xff byte) would bind as the same one.
func badText(body []byte) bool {
	if !utf8.Valid(body) {
		return true
	}
	for i := bytes.IndexByte(body, '\\'); i >= 0; {
		if i+1 >= len(body) {
			return false // not JSON; the decoder says so
		}
		if body[i+1] != 'u' {
			i = next(body, i+2)
			continue
		}
		r, ok := hex4(body, i+2)
		if !ok {
			return false
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate alone
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := -1, i+11 < len(body) && body[i+6] == '\\' && body[i+7] == 'u'
			if ok {
				lo, ok = hex4(body, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true // a high surrogate without its low half
			}
			i = next(body, i+12)
		default:
			i = next(body, i+6)
		}
	}
	return false
}

// next is the index of the first backslash in body at or after from, or -1.
func next(body []byte, from int) int {
	if from >= len(body) {
		return -1
	}
	j := bytes.IndexByte(body[from:], '\\')
	if j < 0 {
		return -1
	}
	return from + j
}

func hex4(b []byte, at int) (int, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n := 0
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// badTextMember names, as AWS's validation messages do (lower camel case),
// the first top-level member of body whose value holds text that is not
// Unicode; "" if none can be named.
func badTextMember(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return ""
		}
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			return ""
		}
		if badText(raw) && name != "" {
			return strings.ToLower(name[:1]) + name[1:]
		}
	}
	return ""
}
