package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// globRef is a plain recursive matcher to check the automaton against:
// * is any run, or with seg, any run without ':' unless the * ends the
// pattern or is followed by ':'.
func globRef(pat, s string, seg bool) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		bounded := seg && len(pat) > 1 && pat[1] != ':'
		for i := 0; i <= len(s); i++ {
			if globRef(pat[1:], s[i:], seg) {
				return true
			}
			if i < len(s) && bounded && s[i] == ':' {
				return false
			}
		}
		return false
	case '?':
		return s != "" && globRef(pat[1:], s[1:], seg)
	}
	return s != "" && s[0] == pat[0] && globRef(pat[1:], s[1:], seg)
}

func TestPatternAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab:*?"
	gen := func(n int, chars string) string {
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteByte(chars[rng.IntN(len(chars))])
		}
		return b.String()
	}
	for range 20000 {
		pat, s := gen(8, alphabet), gen(10, "ab:")
		for _, seg := range []bool{false, true} {
			p := compilePattern(pat, syntax{wild: true, resource: seg})
			if got, want := p.match(s, &Request{}), globRef(pat, s, seg); got != want {
				t.Fatalf("pattern %q (resource %v) on %q: %v, want %v", pat, seg, s, got, want)
			}
		}
	}
}

func TestPatternShapes(t *testing.T) {
	tests := []struct {
		raw   string
		sx    syntax
		shape patternShape
	}{
		{"*", syntax{wild: true}, shapeAll},
		{"kms:Encrypt", syntax{wild: true}, shapeExact},
		{"kms:Get*", syntax{wild: true}, shapePrefix},
		{"kms:*Key", syntax{wild: true}, shapeGeneral},
		{"a*", syntax{}, shapeExact},
		{"${aws:username}", syntax{vars: true}, shapeGeneral},
		{"${*}", syntax{wild: true, vars: true}, shapeExact},
		{"arn:aws:kms:*", syntax{wild: true, resource: true}, shapePrefix},
		{"arn:aws:kms:*x", syntax{wild: true, resource: true}, shapeGeneral},
		{"", syntax{wild: true}, shapeExact},
	}
	for _, tt := range tests {
		if got := compilePattern(tt.raw, tt.sx).shape; got != tt.shape {
			t.Errorf("%q: shape %d, want %d", tt.raw, got, tt.shape)
		}
	}
}

// Long values take the heap path of the automaton.
func TestPatternLongValues(t *testing.T) {
	long := strings.Repeat("a", 5000) + "b"
	p := compilePattern("*a?b", syntax{wild: true})
	if !p.match(long, &Request{}) || p.match(long+"c", &Request{}) {
		t.Error("long value")
	}
	q := compilePattern(strings.Repeat("*a", 300), syntax{wild: true})
	if !q.match(long[:5000], &Request{}) || q.match(long, &Request{}) || q.match(strings.Repeat("a", 299), &Request{}) {
		t.Error("many stars")
	}
}

func TestARNPattern(t *testing.T) {
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{"arn:aws:kms:*:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:us-east-?:111122223333:key/*", keyARN, true},
		{"arn:*:*:*:*:*", keyARN, true},
		{"arn:aws:kms:*:*", keyARN, false}, // five parts match nothing
		{"arn:aws:kms", "arn:aws:kms", false},
		{"*", "anything", true},
		{"arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-east-1:111122223333", false},
	}
	for _, tt := range tests {
		a := compileARN(tt.pattern, false)
		if got := a.match(tt.value, &Request{}); got != tt.want {
			t.Errorf("ArnLike %q on %q: %v, want %v", tt.pattern, tt.value, got, tt.want)
		}
	}
}

func TestPrincipalValidation(t *testing.T) {
	valid := []string{"*", "111122223333", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/path/alice",
		"arn:aws:iam::111122223333:role/r", "arn:aws:sts::111122223333:assumed-role/r/s", "arn:aws-cn:iam::111122223333:root"}
	invalid := []string{"", "alice", "11112222333", "1111222233334", "arn:aws:iam::111122223333:user/*", "arn:aws:iam::*:root",
		"arn:aws:s3:::bucket", "arn:aws:iam::acct:root", "arn:aws:iam::111122223333:", "arn::iam::111122223333:root", "AIDAJQABLZS4A3QDU576Q"}
	for _, v := range valid {
		if !validAWSPrincipal(v) {
			t.Errorf("%q rejected", v)
		}
	}
	for _, v := range invalid {
		if validAWSPrincipal(v) {
			t.Errorf("%q accepted", v)
		}
	}
}
