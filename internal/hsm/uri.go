package hsm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Scheme starts every PKCS#11 URI.
const Scheme = "pkcs11:"

// URI is the part of an RFC 7512 PKCS#11 URI that names a secret key: the
// token by its label, the key by its label, and optionally where the PIN
// and the module are.
type URI struct {
	Token  string // the token label (path attribute "token")
	Object string // the key's CKA_LABEL (path attribute "object")
	// PINSource is the query attribute "pin-source": a file holding the
	// PIN, as "file:/path" or "/path".
	PINSource string
	// PINValue is the query attribute "pin-value": the PIN itself.
	PINValue string
	// ModulePath is the query attribute "module-path": the PKCS#11
	// module (a shared library) to load.
	ModulePath string
}

// IsURI reports whether s is meant as a PKCS#11 URI (starts with the
// scheme, in any case).
func IsURI(s string) bool {
	return len(s) >= len(Scheme) && strings.EqualFold(s[:len(Scheme)], Scheme)
}

// ParseURI parses an RFC 7512 PKCS#11 URI that names a secret key:
//
//	pkcs11:token=NAME;object=LABEL[;type=secret-key][?pin-source=file:/path|pin-value=PIN][&module-path=/lib.so]
//
// Values are percent-decoded; a byte the RFC does not allow unencoded
// (white space, '%' not followed by two hex digits, a non-ASCII byte)
// is an error. token and object are required and may not be empty. An
// attribute given twice, pin-source with pin-value, a type other than
// secret-key, and any other attribute are errors: the other standard path
// attributes (id, serial, slot-id, ...) would select objects this parser
// does not tell apart, and an attribute ignored could name another key
// than the one meant. On error the URI returned is the zero value.
//
// The path may not hold an unencoded '&', which RFC 7512 allows there
// (%26 is read), nor the query's attributes: "object=LABEL&pin-value=PIN",
// '&' typed for '?', would otherwise make the PIN part of the key's label,
// shown wherever the URI is. No error quotes an attribute's value.
func ParseURI(s string) (URI, error) {
	if !IsURI(s) {
		return URI{}, fmt.Errorf("a PKCS#11 URI starts with %q", Scheme)
	}
	rest := s[len(Scheme):]
	path, query, _ := strings.Cut(rest, "?")
	var u URI
	seen := make(map[string]bool)
	// The query may hold the PIN, and a PIN holding '&' or '=' splits
	// into what look like attributes: an error about the query quotes no
	// text of it but the names of the attributes it supports.
	set := func(part, sep string, secret bool, fn func(name, value string) error) error {
		if part == "" {
			return nil
		}
		shown := func(name string) string { return attrName(name, secret) }
		allowed := pathAvail
		if secret {
			allowed = queryAvail
		}
		for i, attr := range strings.Split(part, sep) {
			rawName, rawValue, ok := strings.Cut(attr, "=")
			if !ok {
				if secret {
					return errors.New("a query attribute has no value (want name=value; write '&' in a PIN as %26)")
				}
				return fmt.Errorf("path attribute %d has no value (want name=value, separated by ';')", i+1)
			}
			name, err := unescape(rawName, allowed)
			if err != nil {
				if secret {
					return errors.New("a query attribute's name is not percent-encoded as a PKCS#11 URI must be")
				}
				return fmt.Errorf("the name of path attribute %d: %w", i+1, err)
			}
			if !secret && (name == "pin-value" || name == "pin-source" || name == "module-path") {
				return fmt.Errorf("%s is a query attribute: write it after '?' (pkcs11:token=...;object=...?%s=...)", name, name)
			}
			value, err := unescape(rawValue, allowed)
			if errors.Is(err, errAmpersand) {
				return fmt.Errorf("attribute %s: '&' is written %%26 in the path of a PKCS#11 URI (its query, which may hold the PIN, starts with '?', not '&')", shown(name))
			}
			if err != nil {
				return fmt.Errorf("attribute %s: %w", shown(name), err)
			}
			if seen[name] {
				return fmt.Errorf("attribute %s is given twice", shown(name))
			}
			seen[name] = true
			if err := fn(name, value); err != nil {
				return err
			}
		}
		return nil
	}
	err := set(path, ";", false, func(name, value string) error {
		switch name {
		case "token":
			u.Token = value
		case "object":
			u.Object = value
		case "type":
			if value != "secret-key" {
				return errors.New(`attribute "type": the root key is a secret key (type=secret-key)`)
			}
		default:
			return fmt.Errorf("path attribute %q is not supported (name the key by token and object)", name)
		}
		return nil
	})
	if err == nil {
		err = set(query, "&", true, func(name, value string) error {
			switch name {
			case "pin-source":
				u.PINSource = value
			case "pin-value":
				u.PINValue = value
			case "module-path":
				u.ModulePath = value
			default:
				return fmt.Errorf("query attribute %s is not supported (pin-source, pin-value and module-path are)", attrName(name, true))
			}
			return nil
		})
	}
	switch {
	case err != nil:
	case seen["pin-source"] && seen["pin-value"]:
		err = errors.New("give pin-source or pin-value, not both")
	case u.Token == "":
		err = errors.New("no token: the URI must name the token (token=LABEL)")
	case u.Object == "":
		err = errors.New("no object: the URI must name the key (object=LABEL)")
	}
	if err != nil {
		return URI{}, err
	}
	return u, nil
}

// attrName is an attribute's name as an error shows it: quoted, unless it
// is in the query (secret) and not one of the attributes it supports.
func attrName(name string, secret bool) string {
	if secret && name != "pin-source" && name != "pin-value" && name != "module-path" {
		return "(not shown: the query may hold the PIN; write '&' and '=' in a PIN as %26 and %3D)"
	}
	return strconv.Quote(name)
}

// String returns u as a PKCS#11 URI that ParseURI reads back as u, with
// every byte outside the RFC's unreserved and allowed characters
// percent-encoded. It includes pin-value: print Redacted instead.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(Scheme)
	b.WriteString("token=" + escape(u.Token, pathAllowed))
	b.WriteString(";object=" + escape(u.Object, pathAllowed))
	sep := "?"
	for _, q := range []struct{ name, value string }{
		{"pin-source", u.PINSource}, {"pin-value", u.PINValue}, {"module-path", u.ModulePath},
	} {
		if q.value != "" {
			b.WriteString(sep + q.name + "=" + escape(q.value, queryAllowed))
			sep = "&"
		}
	}
	return b.String()
}

// Redacted is String without the PIN of a pin-value attribute, for
// messages and logs.
func (u URI) Redacted() string {
	if u.PINValue != "" {
		u.PINValue = "xxxxx"
	}
	return u.String()
}

// PIN returns the token's PIN: from the URI's pin-value, else the file of
// its pin-source (its trailing newline removed), else the environment
// variable PINEnv (read with getenv).
func (u URI) PIN(getenv func(string) string) (string, error) {
	switch {
	case u.PINValue != "":
		return u.PINValue, nil
	case u.PINSource != "":
		path := u.PINSource
		if p, ok := strings.CutPrefix(path, "file://"); ok {
			path = p
		} else if p, ok := strings.CutPrefix(path, "file:"); ok {
			path = p
		}
		if !strings.HasPrefix(path, "/") {
			// Not quoted: it may be the PIN, put in the wrong attribute.
			return "", errors.New("pin-source: want file:/absolute/path, the file holding the PIN")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("pin-source: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case getenv(PINEnv) != "":
		return getenv(PINEnv), nil
	}
	return "", fmt.Errorf("no PIN: set %s, or add ?pin-source=file:/path to the URI", PINEnv)
}

// PINEnv is the environment variable holding the token's PIN when the
// URI does not say where it is.
const PINEnv = "KMS_PKCS11_PIN"

// The characters RFC 7512 allows unencoded besides the unreserved ones
// (ALPHA / DIGIT / "-" / "." / "_" / "~"): pk11-res-avail, plus "/", "?",
// "|" in the query. The RFC allows "&" in the path too; this parser
// does not (ParseURI), and String writes it %26. pathAvail and queryAvail
// are what ParseURI reads unencoded: "/" and "|" in the path as well.
const (
	resAvail     = ":[]@!$'()*+,="
	pathAllowed  = resAvail
	queryAllowed = resAvail + "/?|"
	pathAvail    = resAvail + "/|"
	queryAvail   = resAvail + "&/?|"
)

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

func escape(s, allowed string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || strings.IndexByte(allowed, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// The errors of unescape. They show nothing of the text: it may be, or
// hold, the PIN.
var (
	errBadEscape  = errors.New("bad percent-encoding: '%' must be followed by two hex digits (write '%' itself as %25)")
	errMustEncode = errors.New("white space, most punctuation and bytes outside ASCII must be percent-encoded (%XX) in a PKCS#11 URI")
	errAmpersand  = errors.New("'&' must be percent-encoded (%26) here")
)

// unescape decodes percent-encoding, refusing a malformed escape and a
// byte that must have been encoded: any but the unreserved ones and those
// in allowed.
func unescape(s, allowed string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errBadEscape
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case unreserved(c) || strings.IndexByte(allowed, c) >= 0:
			b.WriteByte(c)
		case c == '&':
			return "", errAmpersand
		default:
			return "", errMustEncode
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
