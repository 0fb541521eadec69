package hsm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in   string
		want URI
	}{
		{"pkcs11:token=kms;object=root", URI{Token: "kms", Object: "root"}},
		{"PKCS11:object=root;token=kms", URI{Token: "kms", Object: "root"}},
		{"pkcs11:token=kms;object=root;type=secret-key", URI{Token: "kms", Object: "root"}},
		{"pkcs11:token=My%20Token;object=root%3Bkey", URI{Token: "My Token", Object: "root;key"}},
		{"pkcs11:token=a%2fb;object=%e2%82%ac", URI{Token: "a/b", Object: "€"}},
		{"pkcs11:token=a%26b;object=x=y", URI{Token: "a&b", Object: "x=y"}},
		{"pkcs11:token=a/b;object=c|d", URI{Token: "a/b", Object: "c|d"}},
		{"pkcs11:token=kms;object=root?pin-source=file:/etc/kms/pin", URI{Token: "kms", Object: "root", PINSource: "file:/etc/kms/pin"}},
		{"pkcs11:token=kms;object=root?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so",
			URI{Token: "kms", Object: "root", PINValue: "1234", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{"pkcs11:token=kms;object=root?pin-value=a%26b", URI{Token: "kms", Object: "root", PINValue: "a&b"}},
	}
	for _, tc := range tests {
		got, err := ParseURI(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		again, err := ParseURI(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestParseURIRejects(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "starts with"},
		{"pkcs12:token=a;object=b", "starts with"},
		{"pkcs11:", "no token"},
		{"pkcs11:object=b", "no token"},
		{"pkcs11:token=a", "no object"},
		{"pkcs11:token=;object=b", "no token"},
		{"pkcs11:token=a;object=", "no object"},
		{"pkcs11:token=a;object=b;object=c", "twice"},
		{"pkcs11:token=a;object=b;id=%01", `"id" is not supported`},
		{"pkcs11:token=a;object=b;serial=123", `"serial" is not supported`},
		{"pkcs11:token=a;object=b;x-vendor=1", `"x-vendor" is not supported`},
		{"pkcs11:token=a;object=b;type=private", "secret-key"},
		{"pkcs11:token=a;object=b?module-name=softhsm2", `is not supported`},
		{"pkcs11:token=a;object=b?pin-source=/p&pin-value=1", "not both"},
		{"pkcs11:token=a;object=b?pin-value=1&pin-value=2", "twice"},
		{"pkcs11:token=a;object", "no value"},
		{"pkcs11:token=a;;object=b", "no value"},
		{"pkcs11:token=a%2;object=b", "percent-encoding"},
		{"pkcs11:token=a%zz;object=b", "percent-encoding"},
		{"pkcs11:token=a%;object=b", "percent-encoding"},
		{"pkcs11:token=my token;object=b", "percent-encoded"},
		{"pkcs11:token=a;object=b\n", "percent-encoded"},
		{"pkcs11:token=a;object=€", "percent-encoded"},
		{"pkcs11:token=a;object=b#frag", "percent-encoded"},
		{"pkcs11:token=a&b;object=c", "%26"},
		{"pkcs11:token=kms;object=root&pin-value=1234", "%26"},
		{"pkcs11:token=kms;object=root;pin-value=1234", "query attribute"},
		{"pkcs11:token=kms;object=root;pin-source=file:/etc/kms/pin", "query attribute"},
		{"pkcs11:token=kms;object=root;module-path=/lib/x.so", "query attribute"},
	}
	for _, tc := range tests {
		got, err := ParseURI(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q) = %+v, %v; want an error saying %q", tc.in, got, err, tc.want)
		}
		if got != (URI{}) {
			t.Errorf("ParseURI(%q) returned %+v with its error", tc.in, got)
		}
	}
}

// An error about the query never shows its text: a PIN there, or a part
// of one that a '&', '=' or bad escape splits off, stays out of the logs.
func TestParseURIErrorsHideThePIN(t *testing.T) {
	for _, in := range []string{
		"pkcs11:token=kms;object=root?pin-value=S3cr%t!",
		"pkcs11:token=kms;object=root?pin-value=Secret&Pin42",
		"pkcs11:token=kms;object=root?pin-value=Secret&Pin42=x",
		"pkcs11:token=kms;object=root?pin-value=Secret&Pin42=x&Pin42=y",
		"pkcs11:token=kms;object=root?pin-value=my pin",
		"pkcs11:token=kms;object=root?pin-value=Secr€t",
		"pkcs11:token=kms;object=root?pin-value=x&S%zzcret=1",
		"pkcs11:token=kms;object=root?pin-value=1&pin-value=Secret",
	} {
		_, err := ParseURI(in)
		if err == nil {
			t.Errorf("ParseURI(%q) accepted it", in)
			continue
		}
		for _, part := range []string{"Secr", "Pin42", "S3cr", "my pin", "cret"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("ParseURI(%q): the error shows part of the PIN: %v", in, err)
			}
		}
	}
}

// Nor does an error about the path show a value: a PIN typed there, after
// an '&' or a ';' meant as '?', stays out of the logs too.
func TestParseURIErrorsHidePathValues(t *testing.T) {
	for _, in := range []string{
		"pkcs11:token=kms;object=kms-root&pin-value=S3cretPIN",
		"pkcs11:token=kms;object=kms-root&pin-value=S3cret%zz",
		"pkcs11:token=kms;object=kms-root&pin-value=S3cret PIN",
		"pkcs11:token=kms;object=kms-root;pin-value=S3cretPIN",
		"pkcs11:token=kms;object=kms-root;pin-value=S3cret%zz",
		"pkcs11:token=kms;object=S3cret%zz",
		"pkcs11:token=kms;object=S3cret PIN",
		"pkcs11:token=S3cret€;object=root",
		"pkcs11:token=kms;object=root;S3cretPIN",
		"pkcs11:token=kms;object=root;type=S3cretPIN",
	} {
		_, err := ParseURI(in)
		if err == nil {
			t.Errorf("ParseURI(%q) accepted it", in)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("ParseURI(%q): the error shows a value: %v", in, err)
		}
	}
	u, err := ParseURI("pkcs11:token=kms;object=root?pin-source=S3cretPIN")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.PIN(func(string) string { return "" }); err == nil || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("PIN() with pin-source=S3cretPIN: %v", err)
	}
}

func TestURIRedacted(t *testing.T) {
	u := URI{Token: "kms", Object: "root", PINValue: "1234"}
	if r := u.Redacted(); strings.Contains(r, "1234") || r != "pkcs11:token=kms;object=root?pin-value=xxxxx" {
		t.Errorf("Redacted() = %q", r)
	}
	if r := (URI{Token: "a b", Object: "c"}).Redacted(); r != "pkcs11:token=a%20b;object=c" {
		t.Errorf("Redacted() = %q", r)
	}
	if r := (URI{Token: "a&b", Object: "c"}).Redacted(); r != "pkcs11:token=a%26b;object=c" {
		t.Errorf("Redacted() = %q", r)
	}
}

func TestURIPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == PINEnv {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		u    URI
		env  string
		want string
	}{
		{URI{}, "from-env", "from-env"},
		{URI{PINSource: "file:" + file}, "from-env", "from-file"},
		{URI{PINSource: "file://" + file}, "", "from-file"},
		{URI{PINSource: file}, "", "from-file"},
		{URI{PINValue: "from-uri"}, "from-env", "from-uri"},
	}
	for _, tc := range tests {
		got, err := tc.u.PIN(env(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("%+v.PIN() = %q, %v; want %q", tc.u, got, err, tc.want)
		}
	}
	for _, u := range []URI{{}, {PINSource: "file:relative/pin"}, {PINSource: "https://example.com/pin"}, {PINSource: "file:" + filepath.Join(dir, "missing")}} {
		if got, err := u.PIN(env("")); err == nil {
			t.Errorf("%+v.PIN() = %q; want an error", u, got)
		}
	}
}

// FuzzParsePKCS11URI: the parser never panics, an error returns the zero
// URI, and what parses prints as a URI that parses back to the same.
func FuzzParsePKCS11URI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=kms;object=root",
		"pkcs11:token=My%20Token;object=root%3Bkey;type=secret-key",
		"pkcs11:token=kms;object=root?pin-source=file:/etc/kms/pin&module-path=/lib/x.so",
		"pkcs11:token=kms;object=root?pin-value=a%26b",
		"pkcs11:token=a;object=b;object=c",
		"pkcs11:token=a%2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if u != (URI{}) {
				t.Fatalf("ParseURI(%q) returned %+v with error %v", s, u, err)
			}
			return
		}
		if u.Token == "" || u.Object == "" {
			t.Fatalf("ParseURI(%q) = %+v without a token or an object", s, u)
		}
		again, err := ParseURI(u.String())
		if err != nil || again != u {
			t.Fatalf("ParseURI(%q) = %+v, but its String %q parses as %+v, %v", s, u, u.String(), again, err)
		}
		if u.PINValue != "" && u.PINValue != "xxxxx" && strings.Contains(u.Redacted(), "pin-value="+escape(u.PINValue, queryAllowed)) {
			t.Fatalf("Redacted %q shows the PIN", u.Redacted())
		}
	})
}
