package policy

import (
	"math/bits"
	"strings"
)

// A pattern is one Action, Resource or condition value compiled at parse
// time. Its text is a sequence of elements: literal text, the wildcards *
// and ?, and policy variables, whose values are always literal.

type elemKind uint8

const (
	elemText    elemKind = iota // literal text
	elemOne                     // ?: any one byte
	elemStar                    // *: any run of bytes
	elemStarSeg                 // * inside a Resource ARN segment: any run without ':'
	elemVar                     // ${key} or ${key, 'default'}
)

type elem struct {
	kind    elemKind
	text    string // literal text, or the variable's lower-cased key
	def     string // the variable's default
	hasDef  bool
	lowered bool // text is lower-case ASCII, for comparison ignoring case
}

type patternShape uint8

const (
	shapeAll     patternShape = iota // "*"
	shapeExact                       // literal text only
	shapePrefix                      // literal text then "*"
	shapeGeneral                     // anything else
)

type pattern struct {
	shape   patternShape
	text    string // for shapeExact and shapePrefix
	elems   []elem // for shapeGeneral
	fold    bool   // compare ignoring case
	lowered bool   // text is lower-case ASCII
}

// syntax says how a pattern's text is read.
type syntax struct {
	wild     bool // * and ? are wildcards
	vars     bool // ${...} are policy variables (Version 2012-10-17)
	resource bool // IAM Resource rules: a * not ending an ARN segment stays inside it
	fold     bool
}

func compilePattern(raw string, sx syntax) pattern {
	return shapeOf(tokenize(raw, sx), sx.fold)
}

func shapeOf(elems []elem, fold bool) pattern {
	if fold {
		// Lower-case ASCII text once here, so that matching compares bytes.
		for i := range elems {
			if e := &elems[i]; e.kind == elemText && isASCII(e.text) {
				e.text, e.lowered = strings.ToLower(e.text), true
			}
		}
	}
	p := pattern{shape: shapeGeneral, elems: elems, fold: fold}
	switch {
	case len(elems) == 0:
		p.shape, p.lowered = shapeExact, true
	case len(elems) == 1 && elems[0].kind == elemStar:
		p.shape = shapeAll
	case len(elems) == 1 && elems[0].kind == elemText:
		p.shape, p.text, p.lowered = shapeExact, elems[0].text, elems[0].lowered
	case len(elems) == 2 && elems[0].kind == elemText && elems[1].kind == elemStar:
		p.shape, p.text, p.lowered = shapePrefix, elems[0].text, elems[0].lowered
	default:
		return p
	}
	p.elems = nil
	return p
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// tokenize splits raw into elements, merging adjacent literal text.
func tokenize(raw string, sx syntax) []elem {
	var out []elem
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, elem{kind: elemText, text: text.String()})
			text.Reset()
		}
	}
	unclosed := false // no '}' follows: every later "${" is literal too
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case sx.vars && !unclosed && c == '$' && i+1 < len(raw) && raw[i+1] == '{':
			end := strings.IndexByte(raw[i+2:], '}')
			if end < 0 {
				unclosed = true
				text.WriteByte(c)
				continue
			}
			body := raw[i+2 : i+2+end]
			i += 2 + end
			switch body {
			case "*", "?", "$":
				text.WriteString(body)
				continue
			}
			flush()
			out = append(out, variable(body))
		case sx.wild && c == '*':
			flush()
			kind := elemStar
			if sx.resource && i+1 < len(raw) && raw[i+1] != ':' {
				kind = elemStarSeg
			}
			out = append(out, elem{kind: kind})
		case sx.wild && c == '?':
			flush()
			out = append(out, elem{kind: elemOne})
		default:
			text.WriteByte(c)
		}
	}
	flush()
	return out
}

// variable parses the inside of ${...}: a key, optionally followed by a
// comma and a default in single quotes, in which a doubled quote stands
// for one.
func variable(body string) elem {
	key, rest, found := strings.Cut(body, ",")
	v := elem{kind: elemVar, text: strings.ToLower(strings.TrimSpace(key))}
	if !found {
		return v
	}
	rest = strings.TrimSpace(rest)
	if len(rest) >= 2 && rest[0] == '\'' && rest[len(rest)-1] == '\'' {
		v.def = strings.ReplaceAll(rest[1:len(rest)-1], "''", "'")
		v.hasDef = true
	}
	return v
}

func (p *pattern) hasVars() bool {
	for _, e := range p.elems {
		if e.kind == elemVar {
			return true
		}
	}
	return false
}

// equal compares s with the pattern text t, ignoring case if fold; lowered
// says t is lower-case ASCII, so that s's bytes need only be lower-cased.
func equal(s, t string, fold, lowered bool) bool {
	switch {
	case !fold:
		return s == t
	case !lowered:
		return strings.EqualFold(s, t)
	case len(s) != len(t):
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// match reports whether s matches p; r resolves policy variables.
func (p *pattern) match(s string, r *Request) bool {
	switch p.shape {
	case shapeAll:
		return true
	case shapeExact:
		return equal(s, p.text, p.fold, p.lowered)
	case shapePrefix:
		return len(s) >= len(p.text) && equal(s[:len(p.text)], p.text, p.fold, p.lowered)
	}
	return matchElems(p.elems, s, p.fold, r)
}

// matchElems runs the pattern as an automaton over the positions of s: cur
// holds every position reachable after the elements so far. Time is
// O(len(elems) × len(s)) at worst, with no backtracking blow-up.
func matchElems(elems []elem, s string, fold bool, r *Request) bool {
	n := len(s)
	words := n/64 + 1
	var bufA, bufB [8]uint64
	cur, next := bufA[:], bufB[:]
	if words > len(bufA) {
		cur, next = make([]uint64, words), make([]uint64, words)
	} else {
		cur, next = cur[:words], next[:words]
	}
	cur[0] = 1
	for i := range elems {
		e := &elems[i]
		clear(next)
		switch e.kind {
		case elemText, elemVar:
			t := e.text
			if e.kind == elemVar {
				var ok bool
				if t, ok = resolve(r, e); !ok {
					return false
				}
			}
			forEach(cur, func(p int) {
				if p+len(t) <= n && equal(s[p:p+len(t)], t, fold, e.lowered) {
					set(next, p+len(t))
				}
			})
		case elemOne:
			forEach(cur, func(p int) {
				if p < n {
					set(next, p+1)
				}
			})
		case elemStar:
			first := lowest(cur)
			if first < 0 {
				return false
			}
			for q := first; q <= n; q++ {
				set(next, q)
			}
		case elemStarSeg:
			active := false
			for q := 0; q <= n; q++ {
				if q > 0 && s[q-1] == ':' {
					active = false
				}
				if get(cur, q) {
					active = true
				}
				if active {
					set(next, q)
				}
			}
		}
		cur, next = next, cur
		if lowest(cur) < 0 {
			return false
		}
	}
	return get(cur, n)
}

func set(b []uint64, i int)      { b[i/64] |= 1 << (i % 64) }
func get(b []uint64, i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

func lowest(b []uint64) int {
	for w, x := range b {
		if x != 0 {
			return w*64 + bits.TrailingZeros64(x)
		}
	}
	return -1
}

func forEach(b []uint64, f func(int)) {
	for w, x := range b {
		for x != 0 {
			f(w*64 + bits.TrailingZeros64(x))
			x &= x - 1
		}
	}
}

// matchAny reports whether s matches any of ps.
func matchAny(ps []pattern, s string, r *Request) bool {
	for i := range ps {
		if ps[i].match(s, r) {
			return true
		}
	}
	return false
}

// An arnPattern is an ArnEquals/ArnLike value: each of the six
// colon-separated parts of an ARN is matched on its own, the sixth keeping
// any further colons. A value without a colon (such as "*") is matched
// against the whole ARN; one with two to five parts matches nothing.
type arnPattern struct {
	parts []pattern // six; one for a value without a colon; none
}

func compileARN(raw string, vars bool) arnPattern {
	elems := tokenize(raw, syntax{wild: true, vars: vars})
	var parts [][]elem
	var cur []elem
	for _, e := range elems {
		if e.kind != elemText || len(parts) == 5 {
			cur = append(cur, e)
			continue
		}
		t := e.text
		for len(parts) < 5 {
			before, after, found := strings.Cut(t, ":")
			if !found {
				break
			}
			if before != "" {
				cur = append(cur, elem{kind: elemText, text: before})
			}
			parts = append(parts, cur)
			cur = nil
			t = after
		}
		if t != "" {
			cur = append(cur, elem{kind: elemText, text: t})
		}
	}
	parts = append(parts, cur)
	switch len(parts) {
	case 1:
		return arnPattern{parts: []pattern{shapeOf(elems, false)}}
	case 6:
	default:
		return arnPattern{}
	}
	a := arnPattern{parts: make([]pattern, 6)}
	for i, p := range parts {
		a.parts[i] = shapeOf(p, false)
	}
	return a
}

func (a *arnPattern) match(s string, r *Request) bool {
	switch len(a.parts) {
	case 0:
		return false
	case 1:
		return a.parts[0].match(s, r)
	}
	for i := 0; i < 5; i++ {
		part, rest, found := strings.Cut(s, ":")
		if !found || !a.parts[i].match(part, r) {
			return false
		}
		s = rest
	}
	return a.parts[5].match(s, r)
}
