package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/openkms/kms/internal/config"
	"github.com/openkms/kms/internal/hsm"
)

// warnSecretsOnCommandLine writes a warning to w for each flag of fs
// given on the command line whose value holds a secret: a root key
// itself, a token's PIN, a database password. Every user of the machine
// can read a process's command line (ps, /proc/PID/cmdline), however
// the process keeps its memory to itself. It runs before the server's
// settings are read from the environment and the --config file, so that
// it sees only what was typed.
func warnSecretsOnCommandLine(w io.Writer, fs *pflag.FlagSet) {
	fs.Visit(func(f *pflag.Flag) {
		if what, instead := secretIn(f.Name, f.Value.String()); what != "" {
			fmt.Fprintf(w, "kms: warning: --%s puts %s on the command line, where every user of this machine can read it (ps); %s\n", f.Name, what, instead)
		}
	})
}

// warnSecretsInConfigFile writes a warning to w for each setting the
// --config file at path gives whose value holds a secret (secretIn),
// when users other than the file's owner may read it: the server warns
// of a root key file so readable, and a root key or a database password
// written in the config file is as exposed.
func warnSecretsInConfigFile(w io.Writer, path string, fs *pflag.FlagSet, sources map[string]config.Source) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if sources[f.Name] != config.FromFile {
			return
		}
		if what, _ := secretIn(f.Name, f.Value.String()); what != "" {
			fmt.Fprintf(w, "kms: warning: %s holds %s (%s) and users other than its owner may read it (mode %04o): chmod 600 it\n",
				path, what, f.Name, fi.Mode().Perm())
		}
	})
}

// secretIn says what secret the value of the flag name holds, and where
// it would be kept from other users, or "" if it holds none.
func secretIn(name, value string) (what, instead string) {
	switch name {
	case "root-key", "new-root-key":
		if value == "" {
			return "", ""
		}
		if strings.HasPrefix(strings.ToLower(value), "pkcs11:") {
			// The URI's attribute names may be percent-encoded
			// (pin%2Dvalue), as its parser reads them.
			u, err := hsm.ParseURI(value)
			if err == nil && u.PINValue != "" || err != nil && strings.Contains(strings.ToLower(value), "pin") {
				return "the token's PIN", "set KMS_PKCS11_PIN, or pin-source=file:PATH in the URI, instead"
			}
			return "", ""
		}
		if name == "new-root-key" {
			return "the new root key", "give it in a file (--new-root-key-file) instead"
		}
		return "the root key", "set KMS_ROOT_KEY, or give it in a file (--root-key-file), instead"
	case "storage", "from", "to":
		if config.MaskURL(value) != value {
			return "a database password", "put it in ~/.pgpass or PGPASSWORD instead"
		}
	}
	return "", ""
}
