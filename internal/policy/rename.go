package policy

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
)

// RenamePrincipals returns doc with each AWS principal named in a
// statement's Principal or NotPrincipal that is a key of names replaced by
// its value, and every other byte as it was. AWS shows a key policy this
// way once a user or role it names is deleted: in place of the ARN, the
// unique id of the principal that was meant (AIDA..., AROA...), which no
// new user or role of the same name can ever be. The same ARN elsewhere
// (in a Condition, say) is left alone. A doc that is not one JSON value is
// returned as it is.
func RenamePrincipals(doc string, names map[string]string) string {
	if len(names) == 0 {
		return doc
	}
	type frame struct {
		object  bool
		key     string // the member being read, in an object
		wantKey bool
	}
	var (
		stack []frame
		spans [][2]int // byte ranges of the strings to replace
		repl  []string
		done  bool // the top-level value is complete
	)
	// path is the member names from the top down, arrays skipped.
	inPrincipal := func() bool {
		var path []string
		for _, f := range stack {
			if f.object {
				path = append(path, f.key)
			}
		}
		return len(path) == 3 && path[0] == "Statement" && (path[1] == "Principal" || path[1] == "NotPrincipal") && path[2] == "AWS"
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			break
		}
		if err != nil || done {
			return doc // not one JSON value
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].wantKey = true // the value is read: a key comes next
				}
				stack = append(stack, frame{object: t == '{', wantKey: t == '{'})
			default:
				stack = stack[:top]
				done = len(stack) == 0
			}
			continue
		case string:
			if top >= 0 && stack[top].object && stack[top].wantKey {
				stack[top].key, stack[top].wantKey = t, false
				continue
			}
			if id, ok := names[t]; ok && inPrincipal() {
				start := int(before) + strings.IndexByte(doc[before:], '"')
				spans = append(spans, [2]int{start, int(dec.InputOffset())})
				repl = append(repl, strconv.Quote(id))
			}
		}
		if top >= 0 && stack[top].object {
			stack[top].wantKey = true
		}
	}
	if len(spans) == 0 {
		return doc
	}
	var b strings.Builder
	last := 0
	for i, sp := range spans {
		b.WriteString(doc[last:sp[0]])
		b.WriteString(repl[i])
		last = sp[1]
	}
	b.WriteString(doc[last:])
	return b.String()
}
