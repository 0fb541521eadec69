package auditcli

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodePage reads an answer of GetAuditRecords or GetAuditDigests: its
// lines, whether more follow (Truncated), and the position to ask for the
// next page after (LastSequence: the last line the server read, shown or
// not; from a server that does not send it, the last line's).
//
// A page is megabytes of escaped text, which encoding/json reads at about
// 60 MB/s: it checks the whole answer, then scans it again to decode it,
// and that was most of verify --endpoint's time. decodePage reads the
// exact form the server writes (encoding/json's, with no space, records or
// digests then Truncated) in one pass, and hands anything else, including
// text it would have to repair, to json.Unmarshal. So its answer is always
// json.Unmarshal's; FuzzDecodePage holds it to that.
func decodePage(b []byte) ([]trailLine, bool, int64, error) {
	if lines, more, last, ok := fastPage(b); ok {
		return lines, more, last, nil
	}
	var out struct {
		Records, Digests []trailLine
		Truncated        bool
		LastSequence     *int64
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false, 0, err
	}
	lines := append(out.Records, out.Digests...)
	if out.LastSequence != nil {
		return lines, out.Truncated, *out.LastSequence, nil
	}
	return lines, out.Truncated, lastSequence(lines), nil
}

// lastSequence is the position of the last of lines, or 0.
func lastSequence(lines []trailLine) int64 {
	if len(lines) == 0 {
		return 0
	}
	return lines[len(lines)-1].Sequence
}

// fastPage decodes b if it has the server's form, and reports whether it
// had.
func fastPage(b []byte) (lines []trailLine, more bool, last int64, ok bool) {
	p := pageParser{b: b}
	if !p.lit(`{"Records":`) && !p.lit(`{"Digests":`) {
		return nil, false, 0, false
	}
	if !p.lit("null") {
		if !p.lit("[") {
			return nil, false, 0, false
		}
		for !p.lit("]") {
			if len(lines) > 0 && !p.lit(",") {
				return nil, false, 0, false
			}
			var ln trailLine
			if !p.lit(`{"Sequence":`) || !p.int(&ln.Sequence) || !p.lit(`,"Line":`) || !p.str(&ln.Line) || !p.lit("}") {
				return nil, false, 0, false
			}
			lines = append(lines, ln)
		}
	}
	switch {
	case p.lit(`,"Truncated":true`):
		more = true
	case p.lit(`,"Truncated":false`):
	default:
		return nil, false, 0, false
	}
	last = lastSequence(lines)
	if p.lit(`,"LastSequence":`) && !p.int(&last) {
		return nil, false, 0, false
	}
	if !p.lit("}") {
		return nil, false, 0, false
	}
	for len(p.b) > 0 && (p.b[0] == ' ' || p.b[0] == '\t' || p.b[0] == '\n' || p.b[0] == '\r') {
		p.b = p.b[1:] // json.Encoder ends with a newline
	}
	return lines, more, last, len(p.b) == 0
}

// pageParser consumes b from the front.
type pageParser struct {
	b   []byte
	buf []byte // a string's unescaped bytes
}

// lit consumes s if b starts with it.
func (p *pageParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// int consumes a JSON integer that fits an int64, written as
// encoding/json writes one: digits, a minus sign before them if negative,
// and no leading zero.
func (p *pageParser) int(v *int64) bool {
	n := 0
	if n < len(p.b) && p.b[n] == '-' {
		n++
	}
	digits := n
	for n < len(p.b) && p.b[n] >= '0' && p.b[n] <= '9' {
		n++
	}
	if n == digits || (p.b[digits] == '0' && n > digits+1) {
		return false
	}
	x, err := strconv.ParseInt(string(p.b[:n]), 10, 64)
	if err != nil {
		return false
	}
	*v, p.b = x, p.b[n:]
	return true
}

// str consumes a JSON string. It declines a string whose reading
// encoding/json would repair (bytes that are not UTF-8, escapes of lone
// surrogates), and one with a control character, which JSON forbids.
func (p *pageParser) str(v *string) bool {
	if len(p.b) == 0 || p.b[0] != '"' {
		return false
	}
	p.buf = p.buf[:0]
	plain := true // p.buf holds only bytes below 0x80
	i := 1
	for {
		// Copy the run up to the next quote, backslash or control.
		j := i
		for j < len(p.b) && p.b[j] != '"' && p.b[j] != '\\' && p.b[j] >= 0x20 {
			if p.b[j] >= utf8.RuneSelf {
				plain = false
			}
			j++
		}
		p.buf = append(p.buf, p.b[i:j]...)
		if j == len(p.b) || p.b[j] < 0x20 {
			return false
		}
		if p.b[j] == '"' {
			i = j + 1
			break
		}
		// An escape.
		if j+1 == len(p.b) {
			return false
		}
		switch c := p.b[j+1]; c {
		case '"', '\\', '/':
			p.buf = append(p.buf, c)
		case 'b':
			p.buf = append(p.buf, '\b')
		case 'f':
			p.buf = append(p.buf, '\f')
		case 'n':
			p.buf = append(p.buf, '\n')
		case 'r':
			p.buf = append(p.buf, '\r')
		case 't':
			p.buf = append(p.buf, '\t')
		case 'u':
			if j+6 > len(p.b) {
				return false
			}
			r, ok := hex4(p.b[j+2 : j+6])
			if !ok || (r >= 0xD800 && r <= 0xDFFF) {
				return false // a surrogate: encoding/json pairs or replaces it
			}
			p.buf = utf8.AppendRune(p.buf, r)
			i = j + 6
			continue
		default:
			return false
		}
		i = j + 2
	}
	if !plain && !utf8.Valid(p.buf) {
		return false
	}
	*v, p.b = string(p.buf), p.b[i:]
	return true
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
