package main

import "testing"

// An error message is printed as one line that a terminal cannot act on:
// a key ARN read from a hostile file must not set the window title, clear
// the screen or print a fake line of its own.
func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain message: it's fine", "plain message: it's fine"},
		{"first\nsecond", "first; second"},
		{"Invalid keyId 'arn:\x1b]0;OWNED\a\x1b[2J'", `Invalid keyId 'arn:\x1b]0;OWNED\a\x1b[2J'`},
		{"tab\there, del\x7f", `tab\there, del\x7f`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"C1 \u009b31m", `C1 \u009b31m`},
		{"not UTF-8 \xff\xfe", `not UTF-8 \xff\xfe`},
		{"a real \uFFFD and é", "a real \uFFFD and é"},
	} {
		if got := oneLine(c.in); got != c.want {
			t.Errorf("oneLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
