package policy

import (
	"encoding/json"
	"errors"
	"strings"
)

// Pretty returns doc in the layout AWS KMS gives every key policy it
// returns (GetKeyPolicy, ReplicateKey's ReplicaPolicy), whatever the
// layout it was put in: that of Jackson's DefaultPrettyPrinter. An object
// opens with "{", has each member on a line of its own as `"name" : value`,
// indented two spaces per object it is in, and closes on a line of its
// own; an empty one is "{ }". An array stays on its line: "[ a, b ]", an
// object in it opening there ("[ {" ... "}, {" ... "} ]"); an empty one is
// "[ ]". Members keep their order (a repeated name included), numbers
// are as written, and strings are escaped as Jackson escapes them: only
// the quote, the backslash and control characters (\b \t \n \f \r short,
// the others as \u00XX). A doc that is not one JSON value is returned as
// it is.
func Pretty(doc string) string {
	if !json.Valid([]byte(doc)) {
		return doc // this also bounds how deep writePretty recurses
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var b strings.Builder
	b.Grow(len(doc) + len(doc)/4)
	if err := writePretty(&b, dec, 0); err != nil {
		return doc
	}
	return b.String()
}

var errNotJSON = errors.New("policy: not one JSON value")

// writePretty writes the next value of dec, inside depth objects.
func writePretty(b *strings.Builder, dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return writeObject(b, dec, depth)
		}
		if t == '[' {
			return writeArray(b, dec, depth)
		}
		return errNotJSON
	case string:
		writeJacksonString(b, t)
	case json.Number:
		b.WriteString(string(t))
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	}
	return nil
}

// writeObject writes an object whose "{" dec has just read.
func writeObject(b *strings.Builder, dec *json.Decoder, depth int) error {
	b.WriteByte('{')
	n := 0
	for ; dec.More(); n++ {
		if n > 0 {
			b.WriteByte(',')
		}
		newline(b, depth+1)
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return errNotJSON
		}
		writeJacksonString(b, name)
		b.WriteString(" : ")
		if err := writePretty(b, dec, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // "}"
		return err
	}
	if n == 0 {
		b.WriteString(" }")
		return nil
	}
	newline(b, depth)
	b.WriteByte('}')
	return nil
}

// writeArray writes an array whose "[" dec has just read. An array does
// not indent what is in it.
func writeArray(b *strings.Builder, dec *json.Decoder, depth int) error {
	b.WriteByte('[')
	for n := 0; dec.More(); n++ {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		if err := writePretty(b, dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // "]"
		return err
	}
	b.WriteString(" ]")
	return nil
}

func newline(b *strings.Builder, depth int) {
	b.WriteByte('\n')
	for range depth {
		b.WriteString("  ")
	}
}

// writeJacksonString writes s quoted as Jackson writes a string: "/" and
// every character from 0x7f up as they are.
func writeJacksonString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c == '"':
			esc = `\"`
		case c == '\\':
			esc = `\\`
		case c == '\b':
			esc = `\b`
		case c == '\t':
			esc = `\t`
		case c == '\n':
			esc = `\n`
		case c == '\f':
			esc = `\f`
		case c == '\r':
			esc = `\r`
		case c < 0x20:
			esc = `\u00` + string(hex[c>>4]) + string(hex[c&0xf])
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
	b.WriteByte('"')
}
