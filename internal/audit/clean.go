package audit

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Truncated ends a string value cut short by CleanJSON or a field cut
// short by the caller.
const Truncated = "...(truncated)"

// CleanJSON returns raw, a JSON value taken from a client, as JSON that
// every reader decodes to the same text: invalid UTF-8 and \u escapes of
// lone surrogates inside strings are replaced by U+FFFD, control
// characters escaped, and, when maxString > 0, every string longer than
// maxString bytes (as written) cut and ended with Truncated. If raw is not
// valid JSON even so, the result is null.
func CleanJSON(raw []byte, maxString int) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	b := appendClean(make([]byte, 0, len(raw)), raw, maxString)
	if !json.Valid(b) {
		return json.RawMessage("null")
	}
	return b
}

// appendClean appends raw to b with its strings cleaned as CleanJSON
// describes; outside strings it copies bytes unchanged.
func appendClean(b, raw []byte, maxString int) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '"' {
			b = append(b, c)
			i++
			continue
		}
		b, i = appendCleanString(b, raw, i, maxString)
	}
	return b
}

// appendCleanString cleans the string starting at raw[i] == '"' and
// returns where it ends.
func appendCleanString(b, raw []byte, i, maxString int) ([]byte, int) {
	b = append(b, '"')
	i++
	n := 0 // bytes of the string's content written
	for i < len(raw) {
		c := raw[i]
		var unit []byte // what to write for the next character
		size := 1
		switch {
		case c == '"':
			return append(b, '"'), i + 1
		case c == '\\':
			size = 2
			if i+1 < len(raw) && raw[i+1] == 'u' {
				unit, size = cleanEscape(raw[i:])
			} else if i+1 >= len(raw) {
				unit, size = []byte(`\ufffd`), 1
			} else {
				unit = raw[i : i+2]
			}
		case c < 0x20:
			unit = []byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]}
		case c < utf8.RuneSelf:
			unit = raw[i : i+1]
		default:
			r, sz := utf8.DecodeRune(raw[i:])
			size = sz
			if r == utf8.RuneError && sz == 1 {
				unit = []byte(`\ufffd`)
			} else {
				unit = raw[i : i+sz]
			}
		}
		if maxString > 0 && n+len(unit) > maxString {
			b = append(b, Truncated...)
			// Skip the rest of the string.
			for i < len(raw) && raw[i] != '"' {
				if raw[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(raw) {
				return append(b, '"'), len(raw)
			}
			return append(b, '"'), i + 1
		}
		b = append(b, unit...)
		n += len(unit)
		i += size
	}
	return append(b, '"'), i // cut short: closed here, the caller's check decides
}

// cleanEscape reads the \u escape at the start of s: a surrogate pair or a
// character other than a surrogate as written, a lone surrogate as U+FFFD.
// A malformed escape is returned as \ufffd over its first two bytes.
func cleanEscape(s []byte) (unit []byte, size int) {
	r, ok := hex4(s)
	switch {
	case !ok:
		return []byte(`\ufffd`), 2
	case r >= 0xd800 && r < 0xdc00: // high surrogate: a low one must follow
		if r2, ok := hex4(s[6:]); ok && r2 >= 0xdc00 && r2 < 0xe000 {
			return s[:12], 12
		}
		return []byte(`\ufffd`), 6
	case r >= 0xdc00 && r < 0xe000:
		return []byte(`\ufffd`), 6
	}
	return s[:6], 6
}

// hex4 decodes the escape \uXXXX at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// MoreItems is the string that ends an array cut short by AppendBounded:
// "...(N more)", N the elements left out.
func MoreItems(n int) string { return "...(" + strconv.Itoa(n) + " more)" }

// AppendBounded appends raw, a JSON value taken from a client, to b
// cleaned as CleanJSON cleans it with maxString, and bounded as a whole:
// without space outside strings; each array, when maxItems > 0, cut to
// its first maxItems elements followed by one string, MoreItems, naming
// how many were left out; and, when maxBytes > 0, at most maxBytes bytes
// of it. A value that would pass maxBytes is not appended (b is returned
// as it was) and ok is false. If raw is not valid JSON, null is appended.
// The work done is bounded by raw's length, whatever maxBytes.
func AppendBounded(b, raw []byte, maxString, maxItems, maxBytes int) (_ []byte, ok bool) {
	start := len(b)
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	// For each array or object open at i: the elements of an array
	// begun so far, or -1 for an object. Kept only when arrays are cut.
	var opened [16]int
	open := opened[:0]
	for i := 0; i < len(raw); {
		if len(b)-start > maxBytes {
			return b[:start], false
		}
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		case '"':
			b, i = appendCleanString(b, raw, i, maxString)
			continue
		case '[', '{':
			if maxItems > 0 {
				n := -1
				if c == '[' {
					n = 0
					j := i + 1
					for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
						j++
					}
					if j < len(raw) && raw[j] != ']' {
						n = 1
					}
				}
				open = append(open, n)
			}
		case ']', '}':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		case ',':
			if n := len(open); n > 0 && open[n-1] >= 0 {
				if open[n-1] >= maxItems {
					left, end := countElements(raw, i+1)
					b = append(b, ',')
					b = appendString(b, MoreItems(left))
					b = append(b, ']')
					open = open[:n-1]
					i = end
					continue
				}
				open[n-1]++
			}
		}
		b = append(b, c)
		i++
	}
	if !json.Valid(b[start:]) {
		b = append(b[:start], "null"...)
	}
	if len(b)-start > maxBytes {
		return b[:start], false
	}
	return b, true
}

// countElements counts the elements of an array from raw[i], the start
// of one of them, to the array's end, and returns the count and where the
// array ends (after its ']'), or len(raw) if it does not.
func countElements(raw []byte, i int) (n, end int) {
	n = 1
	depth := 0
	for i < len(raw) {
		switch raw[i] {
		case '"':
			i++
			for i < len(raw) && raw[i] != '"' {
				if raw[i] == '\\' {
					i++
				}
				i++
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return n, i + 1
			}
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		}
		i++
	}
	return n, len(raw)
}
