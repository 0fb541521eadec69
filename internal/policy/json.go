package policy

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// The document is first read into a small tree that keeps member order and
// exact member names; encoding/json's struct decoding would match names
// case-insensitively and drop duplicates silently, both of which would let a
// document mean something other than what it says.

type jsonKind uint8

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonBool
	jsonNull
	jsonArray
	jsonObject
)

type jsonValue struct {
	kind jsonKind
	str  string // string contents, number literal, or "true"/"false"
	arr  []jsonValue
	obj  []jsonMember
}

type jsonMember struct {
	name string
	val  jsonValue
}

// maxDepth is far beyond what a valid policy needs (document, Statement
// array, statement, Condition, operator, key, value array: 7).
const maxDepth = 10

func decodeJSON(doc string) (jsonValue, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return jsonValue{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonValue{}, errors.New("unexpected data after the document")
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return jsonValue{}, err
	}
	switch t := tok.(type) {
	case string:
		return jsonValue{kind: jsonString, str: t}, nil
	case json.Number:
		return jsonValue{kind: jsonNumber, str: t.String()}, nil
	case bool:
		if t {
			return jsonValue{kind: jsonBool, str: "true"}, nil
		}
		return jsonValue{kind: jsonBool, str: "false"}, nil
	case nil:
		return jsonValue{kind: jsonNull}, nil
	case json.Delim:
		if depth >= maxDepth {
			return jsonValue{}, errors.New("nested too deeply")
		}
		if t == '[' {
			v := jsonValue{kind: jsonArray}
			for dec.More() {
				e, err := readJSON(dec, depth+1)
				if err != nil {
					return jsonValue{}, err
				}
				v.arr = append(v.arr, e)
			}
			_, err := dec.Token() // ']'
			return v, err
		}
		v := jsonValue{kind: jsonObject}
		var seen map[string]bool
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return jsonValue{}, err
			}
			name, _ := k.(string)
			if seen == nil {
				seen = make(map[string]bool)
			}
			if seen[name] {
				return jsonValue{}, errors.New("duplicate member " + quote(name))
			}
			seen[name] = true
			e, err := readJSON(dec, depth+1)
			if err != nil {
				return jsonValue{}, err
			}
			v.obj = append(v.obj, jsonMember{name, e})
		}
		_, err := dec.Token() // '}'
		return v, err
	}
	return jsonValue{}, errors.New("unexpected token")
}

// quote quotes s for an error message, shortened so that a hostile document
// cannot make the message long.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}
