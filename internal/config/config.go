// Package config fills a command's flags from the environment and a YAML
// file, so that every setting of `kms server` can be given three ways with
// one set of names:
//
//	--read-timeout 30s            a flag
//	KMS_READ_TIMEOUT=30s          the environment: KMS_, upper case, _ for -
//	read-timeout: 30s             a key of the file named by --config
//
// A flag given on the command line wins over the environment, which wins
// over the file, which wins over the flag's default. The file is one YAML
// document, a mapping of long flag names to scalars; a second document
// ("---"), an unknown key, a value that is not a scalar, or a value the
// flag cannot parse fails with the file, line and key named. Unknown KMS_
// variables are ignored (other tools use the prefix too).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "KMS_"

// EnvName is the environment variable that sets the flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Source says where a flag's effective value came from.
type Source string

const (
	FromDefault Source = "default"
	FromFile    Source = "file"
	FromEnv     Source = "environment"
	FromFlag    Source = "flag"
)

// Apply sets every flag of fs that was not given on the command line from
// the environment (getenv), or else from the YAML file at path (if path is
// not empty). skip names flags that are never read from the file or the
// environment (such as --config itself, or --print-config). It returns
// where each flag's value came from.
func Apply(fs *pflag.FlagSet, path string, getenv func(string) string, skip ...string) (map[string]Source, error) {
	var file map[string]fileValue
	if path != "" {
		var err error
		if file, err = readFile(path); err != nil {
			return nil, err
		}
		for name, v := range file {
			f := fs.Lookup(name)
			if f == nil || contains(skip, name) {
				return nil, fmt.Errorf("%s:%d: unknown key %q (the keys are the long flag names of kms server)", path, v.line, name)
			}
		}
	}
	sources := make(map[string]Source)
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		switch {
		case f.Changed:
			sources[f.Name] = FromFlag
		case contains(skip, f.Name):
			sources[f.Name] = FromDefault
		case getenv(EnvName(f.Name)) != "":
			if e := fs.Set(f.Name, getenv(EnvName(f.Name))); e != nil {
				err = fmt.Errorf("environment variable %s: %v", EnvName(f.Name), e)
				return
			}
			sources[f.Name] = FromEnv
		default:
			v, ok := file[f.Name]
			if !ok {
				sources[f.Name] = FromDefault
				return
			}
			if e := fs.Set(f.Name, v.text); e != nil {
				err = fmt.Errorf("%s:%d: key %q: %v", path, v.line, f.Name, e)
				return
			}
			sources[f.Name] = FromFile
		}
	})
	return sources, err
}

type fileValue struct {
	text string
	line int
}

func readFile(path string) (map[string]fileValue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	out := make(map[string]fileValue)
	if len(bytes.TrimSpace(b)) == 0 {
		return out, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return out, nil // only comments
	} else if err != nil {
		return nil, fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// Only the first document would be read: the settings after a "---"
	// would be dropped without a word, a security setting among them.
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("%s:%d: the file holds more than one YAML document (a \"---\" line starts another): put every setting in one mapping", path, next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return out, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of setting names to values", path, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: a key must be a setting name", path, k.Line)
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("%s:%d: key %q is given twice", path, k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return nil, fmt.Errorf("%s:%d: key %q: the value must be a single value (a string, number, boolean or duration)", path, v.Line, k.Value)
		}
		out[k.Value] = fileValue{text: v.Value, line: k.Line}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Print writes the effective value of every flag of fs, except those in
// skip, as YAML that --config reads back, each with a comment naming its
// source. Passwords in URLs and connection strings are masked (MaskURL). A flag that may hold another
// secret (kms server's --root-key) must be in skip, and printed by the
// caller with the secret masked.
func Print(w io.Writer, fs *pflag.FlagSet, sources map[string]Source, skip ...string) {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !contains(skip, f.Name) {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	for _, name := range names {
		f := fs.Lookup(name)
		v := MaskURL(f.Value.String())
		node := yaml.Node{Kind: yaml.ScalarNode, Value: v}
		if f.Value.Type() == "string" || v == "" {
			node.Style = yaml.DoubleQuotedStyle
		}
		out, _ := yaml.Marshal(&node)
		fmt.Fprintf(w, "%s: %s  # %s\n", name, strings.TrimSpace(string(out)), sources[name])
	}
}

// MaskURL hides the passwords of a URL: that of its user information, and
// the password and sslpassword query parameters PostgreSQL's drivers also
// take. A value with "://" that does not parse as a URL is hidden whole.
// Without "://", the password and sslpassword of a PostgreSQL key/value
// connection string ("host=db user=kms password=secret") are hidden, or
// the whole value if it has a "password=" but does not parse as one.
// Anything else is returned as it is.
func MaskURL(s string) string {
	if !strings.Contains(s, "://") {
		if m := maskConnString(s); m != s {
			return m
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "://") {
			return "xxxxx"
		}
		return s
	}
	masked := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User, masked = url.UserPassword(u.User.Username(), "xxxxx"), true
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery, masked = "xxxxx", true
		}
		for name := range q {
			if n := strings.ToLower(name); n == "password" || n == "sslpassword" {
				q.Set(name, "xxxxx")
				masked = true
				u.RawQuery = q.Encode()
			}
		}
	}
	if !masked {
		return s
	}
	return u.String()
}

// hasPassword matches what may start a connection string's password or
// sslpassword setting, even one written wrong ("password secret").
var hasPassword = regexp.MustCompile(`(?i)password[\s=]`)

// maskConnString hides the values of the password and sslpassword
// settings (any case) of a PostgreSQL key/value connection string, read
// as libpq reads one: keyword = value pairs apart by white space, a value
// either single-quoted or up to the next white space, a backslash
// escaping the next byte in either. The rest is kept as written. A string that does not
// parse so but matches hasPassword is hidden whole; one without either
// setting is returned as it is.
func maskConnString(s string) string {
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	var b strings.Builder
	masked := false
	for i := 0; ; {
		for i < len(s) && space(s[i]) {
			b.WriteByte(s[i])
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && !space(s[i]) {
			i++
		}
		keyword := s[start:i]
		for i < len(s) && space(s[i]) {
			i++
		}
		if keyword == "" || i == len(s) || s[i] != '=' {
			return maskWhole(s)
		}
		i++
		for i < len(s) && space(s[i]) {
			i++
		}
		b.WriteString(s[start:i])
		value := i
		if i < len(s) && s[i] == '\'' {
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return maskWhole(s)
			}
			i++
		} else {
			for ; i < len(s) && !space(s[i]); i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i = min(i, len(s))
		}
		if k := strings.ToLower(keyword); k == "password" || k == "sslpassword" {
			b.WriteString("xxxxx")
			masked = true
		} else {
			b.WriteString(s[value:i])
		}
	}
	if !masked {
		return s
	}
	return b.String()
}

// maskWhole hides s if it may hold a password.
func maskWhole(s string) string {
	if hasPassword.MatchString(s) {
		return "xxxxx"
	}
	return s
}
