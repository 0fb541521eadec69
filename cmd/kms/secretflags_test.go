package main_test

import (
	"strings"
	"testing"
)

// A secret given as a flag's value can be read by every user of the
// machine in the process list, whatever the process does to keep its
// memory to itself: each command warns of it and names where the secret
// would be kept from them, and says nothing of a secret given so.
func TestSecretsOnTheCommandLineAreWarnedOf(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	cases := []struct {
		name string
		env  []string
		args []string
		want string // in the warning; "" for none
	}{
		{"root key", nil, []string{"server", "--print-config", "--root-key", key}, "--root-key puts the root key on the command line"},
		{"root key in the environment", []string{"KMS_ROOT_KEY=" + key}, []string{"server", "--print-config"}, ""},
		{"key in a token", nil, []string{"server", "--print-config", "--root-key", "pkcs11:token=kms;object=root"}, ""},
		{"PIN", nil, []string{"server", "--print-config", "--root-key", "pkcs11:token=kms;object=root?pin-value=hunter2"}, "--root-key puts the token's PIN on the command line"},
		{"PIN under an encoded name", nil, []string{"server", "--print-config", "--root-key", "pkcs11:token=kms;object=root?pin%2Dvalue=hunter2"}, "--root-key puts the token's PIN on the command line"},
		{"database password", nil, []string{"server", "--print-config", "--storage", "postgres://kms:hunter2@db/kms"}, "--storage puts a database password"},
		{"database password in the environment", []string{"KMS_STORAGE=postgres://kms:hunter2@db/kms"}, []string{"server", "--print-config"}, ""},
		{"database without a password", nil, []string{"server", "--print-config", "--storage", "postgres://kms@db/kms"}, ""},
		{"migrate's destination", nil, []string{"migrate", "--from", t.TempDir(), "--to", "host=db password=hunter2"}, "--to puts a database password"},
		{"new root key", nil, []string{"root-key", "rotate", "--data-dir", t.TempDir(), "--new-root-key", key}, "--new-root-key puts the new root key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, stderr := runToExit(t, baseEnv(c.env...), c.args...)
			warned := strings.Contains(stderr, "kms: warning:")
			if c.want == "" && warned {
				t.Fatalf("warned of nothing on the command line: %s", stderr)
			}
			if c.want != "" && (!strings.Contains(stderr, c.want) || !strings.Contains(stderr, "every user of this machine can read it")) {
				t.Fatalf("no warning %q: %s", c.want, stderr)
			}
			if strings.Contains(stderr, "hunter2") || strings.Contains(stderr, key) {
				t.Fatalf("the warning repeats the secret: %s", stderr)
			}
		})
	}
}
