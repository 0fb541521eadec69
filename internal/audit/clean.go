package audit

import (
	"encoding/json"
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
