package policy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type family uint8

const (
	famString family = iota
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famARN
	famNull
)

type comparison uint8

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// operator is a base condition operator, without prefix or IfExists.
type operator struct {
	family  family
	negated bool // the operator holds when its positive form does not
	cmp     comparison
	fold    bool // String*IgnoreCase
	like    bool // StringLike, StringNotLike: wildcards
}

func baseOperator(name string) (operator, bool) {
	switch strings.ToLower(name) {
	case "stringequals":
		return operator{family: famString}, true
	case "stringnotequals":
		return operator{family: famString, negated: true}, true
	case "stringequalsignorecase":
		return operator{family: famString, fold: true}, true
	case "stringnotequalsignorecase":
		return operator{family: famString, fold: true, negated: true}, true
	case "stringlike":
		return operator{family: famString, like: true}, true
	case "stringnotlike":
		return operator{family: famString, like: true, negated: true}, true
	case "numericequals":
		return operator{family: famNumeric}, true
	case "numericnotequals":
		return operator{family: famNumeric, negated: true}, true
	case "numericlessthan":
		return operator{family: famNumeric, cmp: cmpLt}, true
	case "numericlessthanequals":
		return operator{family: famNumeric, cmp: cmpLe}, true
	case "numericgreaterthan":
		return operator{family: famNumeric, cmp: cmpGt}, true
	case "numericgreaterthanequals":
		return operator{family: famNumeric, cmp: cmpGe}, true
	case "dateequals":
		return operator{family: famDate}, true
	case "datenotequals":
		return operator{family: famDate, negated: true}, true
	case "datelessthan":
		return operator{family: famDate, cmp: cmpLt}, true
	case "datelessthanequals":
		return operator{family: famDate, cmp: cmpLe}, true
	case "dategreaterthan":
		return operator{family: famDate, cmp: cmpGt}, true
	case "dategreaterthanequals":
		return operator{family: famDate, cmp: cmpGe}, true
	case "bool":
		return operator{family: famBool}, true
	case "binaryequals":
		return operator{family: famBinary}, true
	case "ipaddress":
		return operator{family: famIP}, true
	case "notipaddress":
		return operator{family: famIP, negated: true}, true
	case "arnequals", "arnlike":
		return operator{family: famARN}, true
	case "arnnotequals", "arnnotlike":
		return operator{family: famARN, negated: true}, true
	case "null":
		return operator{family: famNull}, true
	}
	return operator{}, false
}

type setOperator uint8

const (
	setNone setOperator = iota
	setAnyValue
	setAllValues
)

// condition is one key under one operator, compiled.
type condition struct {
	op       operator
	set      setOperator
	ifExists bool
	key      string // lower-cased

	strs  []pattern // famString, famBool
	arns  []arnPattern
	nums  []float64
	dates []time.Time
	bins  [][]byte
	nets  []netip.Prefix
	nulls []bool // Null: true means "must be absent"
}

// parseOperator splits e.g. "ForAnyValue:StringEqualsIfExists".
func parseOperator(name string) (op operator, set setOperator, ifExists bool, ok bool) {
	base := name
	if prefix, rest, found := strings.Cut(name, ":"); found {
		switch strings.ToLower(prefix) {
		case "foranyvalue":
			set = setAnyValue
		case "forallvalues":
			set = setAllValues
		default:
			return op, set, false, false
		}
		base = rest
	}
	op, ok = baseOperator(base)
	if !ok && len(base) > len("IfExists") && strings.EqualFold(base[len(base)-len("IfExists"):], "IfExists") {
		op, ok = baseOperator(base[:len(base)-len("IfExists")])
		ifExists = ok && op.family != famNull
		ok = ifExists
	}
	return op, set, ifExists, ok
}

const (
	overlyPermissiveEC = "OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or with an unspecified encryption context. To fix, remove ForAllValues."
	// The tag variant's exact wording is not published; this follows the
	// general form in the KMS Developer Guide.
	overlyPermissiveTag = "OverlyPermissiveCondition:RequestTag: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues."
)

// compileCondition compiles one key's values. An *Error is the final
// message (OverlyPermissiveCondition); other errors describe the operator or
// a value, and the caller adds where they are.
func compileCondition(opName, key string, vals []string, vars bool) (condition, error) {
	op, set, ifExists, ok := parseOperator(opName)
	if !ok {
		return condition{}, errors.New("unknown condition operator " + quote(opName))
	}
	c := condition{op: op, set: set, ifExists: ifExists, key: strings.ToLower(key)}
	if c.key == "" {
		return condition{}, errors.New("empty condition key")
	}
	if set == setAllValues {
		if strings.HasPrefix(c.key, "kms:encryptioncontext:") {
			return condition{}, &Error{Message: overlyPermissiveEC}
		}
		if strings.HasPrefix(c.key, "aws:requesttag/") {
			return condition{}, &Error{Message: overlyPermissiveTag}
		}
	}
	for _, v := range vals {
		if err := c.addValue(v, vars); err != nil {
			return condition{}, err
		}
	}
	return c, nil
}

func (c *condition) addValue(v string, vars bool) error {
	bad := func(what string) error { return errors.New(quote(v) + " is not " + what) }
	switch c.op.family {
	case famString:
		c.strs = append(c.strs, compilePattern(v, syntax{wild: c.op.like, vars: vars, fold: c.op.fold}))
	case famBool:
		p := compilePattern(v, syntax{vars: vars, fold: true})
		if !p.hasVars() && !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return bad("a boolean")
		}
		c.strs = append(c.strs, p)
	case famARN:
		c.arns = append(c.arns, compileARN(v, vars))
	case famNumeric:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad("a number")
		}
		c.nums = append(c.nums, f)
	case famDate:
		t, ok := parseDate(v)
		if !ok {
			return bad("an ISO 8601 date or epoch time")
		}
		c.dates = append(c.dates, t)
	case famBinary:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return bad("base64")
		}
		c.bins = append(c.bins, b)
	case famIP:
		p, ok := parseCIDR(v)
		if !ok {
			return bad("an IP address or CIDR block")
		}
		c.nets = append(c.nets, p)
	case famNull:
		switch strings.ToLower(v) {
		case "true":
			c.nulls = append(c.nulls, true)
		case "false":
			c.nulls = append(c.nulls, false)
		default:
			return bad(`"true" or "false"`)
		}
	}
	return nil
}

// parseDate reads the W3C profile of ISO 8601 (a date, or a date and time
// with a zone) or epoch seconds; a bare number is always epoch seconds.
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-T:") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f > 1e15 {
			return time.Time{}, false
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02", "2006-01"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseCIDR(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			bitsLeft := p.Bits() - 96
			if bitsLeft < 0 {
				return netip.Prefix{}, false
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bitsLeft)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// eval reports whether the condition holds for r.
func (c *condition) eval(r *Request) bool {
	vals := lookup(r, c.key)
	n := vals.len()
	if c.op.family == famNull {
		for _, wantAbsent := range c.nulls {
			if wantAbsent == (n == 0) {
				return true
			}
		}
		return false
	}
	if n == 0 {
		switch {
		case c.ifExists:
			return true
		case c.set == setAllValues:
			return true
		case c.set == setAnyValue:
			return false
		}
		return c.op.negated
	}
	neg := c.op.negated
	switch c.set {
	case setAllValues:
		for i := 0; i < n; i++ {
			if c.matches(vals.at(i), r) == neg {
				return false
			}
		}
		return true
	case setAnyValue:
		for i := 0; i < n; i++ {
			if c.matches(vals.at(i), r) != neg {
				return true
			}
		}
		return false
	}
	for i := 0; i < n; i++ {
		if c.matches(vals.at(i), r) {
			return !neg
		}
	}
	return neg
}

// matches reports whether one request value matches any of the policy's
// values under the operator's positive form.
func (c *condition) matches(v string, r *Request) bool {
	switch c.op.family {
	case famString, famBool:
		return matchAny(c.strs, v, r)
	case famARN:
		for i := range c.arns {
			if c.arns[i].match(v, r) {
				return true
			}
		}
	case famNumeric:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, want := range c.nums {
			if compare(f, want, c.op.cmp) {
				return true
			}
		}
	case famDate:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, want := range c.dates {
			if compare(t.Compare(want), 0, c.op.cmp) {
				return true
			}
		}
	case famBinary:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return false
		}
		for _, want := range c.bins {
			if bytes.Equal(b, want) {
				return true
			}
		}
	case famIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range c.nets {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func compare[T int | float64](got, want T, cmp comparison) bool {
	switch cmp {
	case cmpLt:
		return got < want
	case cmpLe:
		return got <= want
	case cmpGt:
		return got > want
	case cmpGe:
		return got >= want
	}
	return got == want
}
