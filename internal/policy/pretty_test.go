package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestPretty(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"the default key policy, as AWS returns it",
			`{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
				`"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`,
			"{\n" +
				"  \"Version\" : \"2012-10-17\",\n" +
				"  \"Id\" : \"key-default-1\",\n" +
				"  \"Statement\" : [ {\n" +
				"    \"Sid\" : \"Enable IAM User Permissions\",\n" +
				"    \"Effect\" : \"Allow\",\n" +
				"    \"Principal\" : {\n" +
				"      \"AWS\" : \"arn:aws:iam::111122223333:root\"\n" +
				"    },\n" +
				"    \"Action\" : \"kms:*\",\n" +
				"    \"Resource\" : \"*\"\n" +
				"  } ]\n" +
				"}"},
		{"a policy in another layout, members in their order",
			"{\n    \"Statement\": [\n        {\n            \"Effect\": \"Deny\",\n            \"Action\": [\"kms:Decrypt\", \"kms:Encrypt\"]\n        },\n" +
				"        {\"Effect\": \"Allow\", \"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}}}\n    ],\n    \"Version\": \"2012-10-17\"\n}\n",
			"{\n" +
				"  \"Statement\" : [ {\n" +
				"    \"Effect\" : \"Deny\",\n" +
				"    \"Action\" : [ \"kms:Decrypt\", \"kms:Encrypt\" ]\n" +
				"  }, {\n" +
				"    \"Effect\" : \"Allow\",\n" +
				"    \"Condition\" : {\n" +
				"      \"Bool\" : {\n" +
				"        \"aws:SecureTransport\" : \"true\"\n" +
				"      }\n" +
				"    }\n" +
				"  } ],\n" +
				"  \"Version\" : \"2012-10-17\"\n" +
				"}"},
		{"empty containers", `{"o":{},"a":[],"ao":[{}],"aa":[[],[1,[2]]]}`,
			"{\n  \"o\" : { },\n  \"a\" : [ ],\n  \"ao\" : [ { } ],\n  \"aa\" : [ [ ], [ 1, [ 2 ] ] ]\n}"},
		{"an array of objects in an array", `[[{"a":[{"b":{}}]}]]`,
			"[ [ {\n  \"a\" : [ {\n    \"b\" : { }\n  } ]\n} ] ]"},
		{"the empty object", ` { } `, `{ }`},
		{"the empty array", "\t[\r\n]\n", `[ ]`},
		{"a repeated name is kept", `{"a":1,"a":2}`, "{\n  \"a\" : 1,\n  \"a\" : 2\n}"},
		{"numbers as written", `[0,-0,1.50,1E+2,-2.5e-3,12345678901234567890123,1e400]`,
			`[ 0, -0, 1.50, 1E+2, -2.5e-3, 12345678901234567890123, 1e400 ]`},
		{"literals", `{"t":true,"f":false,"n":null}`, "{\n  \"t\" : true,\n  \"f\" : false,\n  \"n\" : null\n}"},
		{"a scalar", ` "x" `, `"x"`},
		{"escapes", `["q\"b\\s\/ \b\f\n\r\t\u0000\u0001\u001f\u0020"]`,
			`[ "q\"b\\s/ \b\f\n\r\t\u0000\u0001\u001F " ]`},
		{"an escaped tab and newline in a name", "{\"a\\tb\\u000ac\":1}", "{\n  \"a\\tb\\nc\" : 1\n}"},
		{"non-ASCII as it is", `["\u00e9é\u00ff\u007f\u2028\ud83d\ude00😀"]`,
			"[ \"ééÿ\x7f\u2028😀😀\" ]"},
		{"an escaped quote in a name", `{"say \"hi\"":"ok"}`, "{\n  \"say \\\"hi\\\"\" : \"ok\"\n}"},
	} {
		if got := Pretty(tc.doc); got != tc.want {
			t.Errorf("%s: Pretty(%q)\ngot\n%s\nwant\n%s", tc.name, tc.doc, got, tc.want)
		}
		if got := Pretty(tc.want); got != tc.want {
			t.Errorf("%s: the layout is not kept as it is:\n%s", tc.name, got)
		}
	}
	for _, doc := range []string{"", " ", "not json", `{"a":1} {}`, `{"a":1}x`, `{"a":1`, `{"a":1,}`, `[1,]`, `{a:1}`, "\"\x01\"", `1 2`} {
		if got := Pretty(doc); got != doc {
			t.Errorf("Pretty(%q) = %q, want it as it is (not one JSON value)", doc, got)
		}
	}
}

// FuzzPretty checks that what Pretty returns is the same JSON value as
// what it was given, in a layout it keeps as it is, and that a document
// that is not one JSON value comes back unchanged.
func FuzzPretty(f *testing.F) {
	for _, doc := range []string{
		defaultKeyPolicy,
		consoleKeyPolicy,
		`{"o":{},"a":[],"aa":[[],[{"x":[1.50,-0,1E+2]}]],"t":true,"f":false,"n":null}`,
		`["q\"b\\s\/\b\f\n\r\t\u0001\u001f\u00e9\ud83d\ude00é"]`,
		`{"a":1,"a":2}`,
		`{"a":1} {}`,
		"\"\xff\"",
	} {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got := Pretty(doc)
		var in, out any
		if err := unmarshalNumbers(doc, &in); err != nil {
			if got != doc {
				t.Fatalf("Pretty changed what is not JSON (%v):\n%q\nto\n%q", err, doc, got)
			}
			return
		}
		if err := unmarshalNumbers(got, &out); err != nil {
			t.Fatalf("Pretty(%q) = %q, which is not JSON: %v", doc, got, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("Pretty(%q) = %q, another value: %#v, want %#v", doc, got, out, in)
		}
		if again := Pretty(got); again != got {
			t.Fatalf("Pretty does not keep its own layout:\n%q\nthen\n%q", got, again)
		}
	})
}

func unmarshalNumbers(doc string, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if !json.Valid([]byte(doc)) {
		return errNotJSON
	}
	return nil
}
