package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	bolt "go.etcd.io/bbolt"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
)

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return fi.Mode().Perm()
}

// TestDevBootstrap: --dev creates the data directory, a 0600 root key and a
// 0600 credentials file, prints how to use them, and a restart on the same
// directory keeps both.
func TestDevBootstrap(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not", "yet", "there")
	s := startDev(t, dir)

	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("data dir %s was not created: %v", dir, err)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data dir mode %v: it holds the root key, others should have no access", perm)
	}
	rootPath := filepath.Join(dir, "root.key")
	if m := fileMode(t, rootPath); m != 0o600 {
		t.Errorf("root.key mode %v, want 0600", m)
	}
	rootKey, err := os.ReadFile(rootPath)
	noErr(t, err, "read root.key")
	if _, err := keys.ParseRootKey(rootKey); err != nil {
		t.Errorf("root.key does not parse as a root key: %v", err)
	}
	credPath := filepath.Join(dir, "credentials")
	if m := fileMode(t, credPath); m != 0o600 {
		t.Errorf("credentials mode %v, want 0600", m)
	}
	creds, err := os.ReadFile(credPath)
	noErr(t, err, "read credentials")
	id, secret := devCredentials(t, dir)
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(id) {
		t.Errorf("aws_access_key_id %q is not in AWS's shape (AKIA + 16 characters)", id)
	}
	if len(secret) != 40 {
		t.Errorf("aws_secret_access_key has %d characters, want 40", len(secret))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
		t.Errorf("temporary files left in the data dir: %v", tmps)
	}

	// The export line names the credentials file and this server's URL.
	exportRE := regexp.MustCompile(`(?m)^\s*export (.*)$`)
	m := s.waitOutput(exportRE, startTimeout)
	vars := map[string]string{}
	for _, f := range strings.Fields(m[1]) {
		if k, v, ok := strings.Cut(f, "="); ok {
			vars[k] = v
		}
	}
	if vars["AWS_SHARED_CREDENTIALS_FILE"] != credPath {
		t.Errorf("export line sets AWS_SHARED_CREDENTIALS_FILE=%q, want %q (line %q)", vars["AWS_SHARED_CREDENTIALS_FILE"], credPath, m[0])
	}
	if vars["AWS_ENDPOINT_URL"] != s.URL {
		t.Errorf("export line sets AWS_ENDPOINT_URL=%q, want %q (line %q)", vars["AWS_ENDPOINT_URL"], s.URL, m[0])
	}
	if vars["AWS_DEFAULT_REGION"] != "us-east-1" {
		t.Errorf("export line sets AWS_DEFAULT_REGION=%q, want us-east-1", vars["AWS_DEFAULT_REGION"])
	}

	// The server works with those credentials.
	c := s.client(t)
	ctx := testCtx(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("bootstrap")})
	noErr(t, err, "CreateKey")
	keyID := *ck.KeyMetadata.KeyId
	if ck.KeyMetadata.AWSAccountId == nil || *ck.KeyMetadata.AWSAccountId != "111122223333" {
		t.Errorf("AWSAccountId = %v, want the dev account 111122223333", aws.ToString(ck.KeyMetadata.AWSAccountId))
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("bootstrap secret")})
	noErr(t, err, "Encrypt")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	// A restart keeps the root key and the credentials, byte for byte.
	s2 := startDev(t, dir)
	if b, _ := os.ReadFile(rootPath); !bytes.Equal(b, rootKey) {
		t.Errorf("root.key changed across a restart")
	}
	if b, _ := os.ReadFile(credPath); !bytes.Equal(b, creds) {
		t.Errorf("credentials changed across a restart:\nbefore %q\nafter  %q", creds, b)
	}
	if m := fileMode(t, rootPath); m != 0o600 {
		t.Errorf("root.key mode %v after restart, want 0600", m)
	}
	if m := fileMode(t, credPath); m != 0o600 {
		t.Errorf("credentials mode %v after restart, want 0600", m)
	}
	m2 := s2.waitOutput(exportRE, startTimeout)
	if !strings.Contains(m2[0], "AWS_ENDPOINT_URL="+s2.URL) {
		t.Errorf("export line after restart %q does not name the new URL %s", m2[0], s2.URL)
	}
	dec, err := s2.client(t).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	noErr(t, err, "Decrypt after restart")
	if string(dec.Plaintext) != "bootstrap secret" || aws.ToString(dec.KeyId) != aws.ToString(ck.KeyMetadata.Arn) {
		t.Errorf("Decrypt after restart: %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	if code := s2.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	// A deleted credentials file is written again, with the same key.
	noErr(t, os.Remove(credPath), "remove credentials")
	s3 := startDev(t, dir)
	if b, _ := os.ReadFile(credPath); !bytes.Equal(b, creds) {
		t.Errorf("credentials rewritten after deletion differ:\nbefore %q\nafter  %q", creds, b)
	}
	if m := fileMode(t, credPath); m != 0o600 {
		t.Errorf("rewritten credentials mode %v, want 0600", m)
	}
	s3.stop(syscall.SIGTERM)
}

// TestDevExportLine: the export line --dev prints can be pasted into a shell
// in any directory: the credentials path is absolute and quoted.
func TestDevExportLine(t *testing.T) {
	t.Parallel()
	exportRE := regexp.MustCompile(`(?m)^\s*(export .*)$`)
	// check runs the printed export line in sh from another directory and
	// compares what it sets.
	check := func(t *testing.T, s *server, wantCreds string) {
		t.Helper()
		line := s.waitOutput(exportRE, startTimeout)[1]
		sh := exec.Command("sh", "-c", line+"\nprintf '%s\\n' \"$AWS_SHARED_CREDENTIALS_FILE\" \"$AWS_ENDPOINT_URL\" \"$AWS_DEFAULT_REGION\"")
		sh.Dir = t.TempDir()
		sh.Env = baseEnv()
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("the printed line %q does not run in sh: %v\n%s", line, err, out)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		want := []string{wantCreds, s.URL, s.Region}
		if !slices.Equal(got, want) {
			t.Errorf("the printed line %q sets AWS_SHARED_CREDENTIALS_FILE, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION to\n%q, want\n%q", line, got, want)
		}
		if !filepath.IsAbs(got[0]) {
			t.Errorf("AWS_SHARED_CREDENTIALS_FILE=%s is relative: the aws CLI run from another directory will not find it", got[0])
		}
	}
	t.Run("default-data-dir", func(t *testing.T) {
		// The default --data-dir is relative (kms-data).
		wd := t.TempDir()
		s := startServerIn(t, wd, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0")
		check(t, s, filepath.Join(wd, "kms-data", "credentials"))
	})
	t.Run("space-in-path", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "my kms", "data")
		s := startDev(t, dir)
		check(t, s, filepath.Join(dir, "credentials"))
	})
}

// TestRefusesWithoutRootKey: without --dev the server needs a root key, and
// only the one its data directory was created with.
func TestRefusesWithoutRootKey(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "data")

	// A refusal is one line on stderr and no listening line: the server
	// stops at the first check that fails, with nothing retried or
	// served before. (runToExit bounds how long it may take.)
	t.Run("none", func(t *testing.T) {
		code, stdout, stderr := runToExit(t, baseEnv(), "server", "--listen", "127.0.0.1:0", "--data-dir", dir)
		if code == 0 {
			t.Fatalf("exit code 0 without a root key; stdout:\n%s", stdout)
		}
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != 1 {
			t.Errorf("want one line on stderr, got %d:\n%s", len(lines), stderr)
		}
		for _, want := range []string{"--root-key-file", "KMS_ROOT_KEY"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not mention %s:\n%s", want, stderr)
			}
		}
		if strings.Contains(stdout, "listening") {
			t.Errorf("printed a listening line though it refused:\n%s", stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, "kms.db")); err == nil {
			t.Errorf("created kms.db though it refused to start")
		}
		if _, err := os.Stat(filepath.Join(dir, "root.key")); err == nil {
			t.Errorf("wrote a root.key without --dev")
		}
	})

	raw := randBytes(t, 32)
	keyFile := filepath.Join(t.TempDir(), "root.key")
	noErr(t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600), "write key file")
	var blob []byte
	credFile := filepath.Join(t.TempDir(), "credentials")

	t.Run("root-key-file", func(t *testing.T) {
		s := startServer(t, dir, baseEnv(), "--root-key-file", keyFile, "--init-credentials", credFile)
		if strings.Contains(s.stdout.String(), "export") {
			t.Errorf("a non-dev server printed dev instructions:\n%s", s.stdout)
		}
		for _, f := range []string{"root.key", "credentials"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("a non-dev server wrote %s", f)
			}
		}
		c := s.client(t)
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey")
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("under a file key")})
		noErr(t, err, "Encrypt")
		blob = enc.CiphertextBlob
		if strings.Contains(s.stderr.String(), "the root key file can be read by other users") {
			t.Errorf("a server warned of a root key file of mode 0600:\n%s", s.stderr)
		}
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM: exit code %d", code)
		}
		// The same file readable by others serves too, with a warning.
		noErr(t, os.Chmod(keyFile, 0o644), "chmod")
		defer os.Chmod(keyFile, 0o600)
		s = startServer(t, dir, baseEnv(), "--root-key-file", keyFile)
		s.waitLog(regexp.MustCompile(`the root key file can be read by other users than its owner: chmod 600 it" file=\S+ mode=0644`), startTimeout)
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM: exit code %d", code)
		}
	})
	if blob == nil {
		t.FailNow()
	}

	t.Run("KMS_ROOT_KEY", func(t *testing.T) {
		// The same key, as hex this time, from the environment.
		s := startServer(t, dir, baseEnv("KMS_ROOT_KEY="+hex.EncodeToString(raw)))
		dec, err := s.client(t).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		noErr(t, err, "Decrypt")
		if string(dec.Plaintext) != "under a file key" {
			t.Errorf("Decrypt = %q", dec.Plaintext)
		}
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM: exit code %d", code)
		}
		// On a fresh data dir too.
		s2 := startServer(t, filepath.Join(t.TempDir(), "fresh"), baseEnv("KMS_ROOT_KEY="+base64.StdEncoding.EncodeToString(randBytes(t, 32))),
			"--init-credentials", filepath.Join(t.TempDir(), "credentials"))
		_, err = s2.client(t).CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey on a fresh dir")
	})

	other := base64.StdEncoding.EncodeToString(randBytes(t, 32))
	otherFile := filepath.Join(t.TempDir(), "other.key")
	noErr(t, os.WriteFile(otherFile, []byte(other), 0o600), "write key file")
	wrongKey := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		code, stdout, stderr := runToExit(t, env, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir}, args...)...)
		if code == 0 {
			t.Fatalf("started (exit 0) with a root key that does not match the data dir; stdout:\n%s", stdout)
		}
		if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n") + 1; n != 1 {
			t.Errorf("want one line on stderr, got %d:\n%s", n, stderr)
		}
		msg := strings.ToLower(stderr)
		if !strings.Contains(msg, "root key") || !(strings.Contains(msg, "not the one") || strings.Contains(msg, "does not match")) {
			t.Errorf("stderr does not say the root key does not match:\n%s", stderr)
		}
		if strings.Contains(stdout, "listening") {
			t.Errorf("printed a listening line though it refused:\n%s", stdout)
		}
	}
	t.Run("wrong-key-file", func(t *testing.T) { wrongKey(t, baseEnv(), "--root-key-file", otherFile) })
	t.Run("wrong-KMS_ROOT_KEY", func(t *testing.T) { wrongKey(t, baseEnv("KMS_ROOT_KEY="+other)) })
	t.Run("dev-with-wrong-KMS_ROOT_KEY", func(t *testing.T) {
		// KMS_ROOT_KEY wins over root.key; a wrong one is refused.
		devDir := filepath.Join(t.TempDir(), "dev")
		s := startDev(t, devDir)
		s.stop(syscall.SIGTERM)
		code, _, stderr := runToExit(t, baseEnv("KMS_ROOT_KEY="+other), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", devDir)
		if code == 0 || !strings.Contains(stderr, "root key") {
			t.Errorf("exit %d, stderr:\n%s", code, stderr)
		}
	})
	t.Run("malformed-key-file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.key")
		noErr(t, os.WriteFile(bad, []byte("too short\n"), 0o600), "write")
		code, _, stderr := runToExit(t, baseEnv(), "server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--root-key-file", bad)
		if code == 0 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "32 bytes") {
			t.Errorf("exit %d, stderr should name the file and the expected size:\n%s", code, stderr)
		}
		code, _, stderr = runToExit(t, baseEnv(), "server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--root-key-file", filepath.Join(t.TempDir(), "missing.key"))
		if code == 0 || !strings.Contains(stderr, "root key file") {
			t.Errorf("missing key file: exit %d, stderr:\n%s", code, stderr)
		}
	})

	t.Run("dev-on-non-dev-dir", func(t *testing.T) {
		// The data dir was created with --root-key-file and has no
		// root.key: --dev must refuse, and must not leave behind a freshly
		// generated root.key that can never open this store.
		code, stdout, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
		if code == 0 || strings.Contains(stdout, "listening") {
			t.Fatalf("--dev started on a data dir made with another root key: exit %d\n%s", code, stdout)
		}
		if !strings.Contains(stderr, "root key") {
			t.Errorf("stderr does not speak of the root key:\n%s", stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "root.key")); err == nil {
			t.Errorf("a refused --dev start left %s, a generated root key that does not open this data dir's store", filepath.Join(dir, "root.key"))
		}
		// The data dir still opens with its own key.
		s := startServer(t, dir, baseEnv(), "--root-key-file", keyFile)
		if _, err := s.client(t).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}); err != nil {
			t.Errorf("Decrypt with the right key after the refused --dev start: %v", err)
		}
	})
}

// TestRefusesTwoRootKeys: a root key file and a --root-key (a key in a
// token, or the key itself), from flags, the environment or the --config
// file, are two root keys. Every command that takes one refuses them with
// one line naming both, before it creates, opens or logs into anything:
// were one to win, a new store would be made under a key not meant.
func TestRefusesTwoRootKeys(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	keyFile := filepath.Join(tmp, "root.key")
	writeFile(t, keyFile, keys.GenerateRootKey())
	newKeyFile := filepath.Join(tmp, "new.key")
	writeFile(t, newKeyFile, keys.GenerateRootKey())
	hexKey := hex.EncodeToString(randBytes(t, 32))
	// A module that does not exist: the refusal comes before any token.
	uri := "pkcs11:token=kms;object=kms-root"
	module := filepath.Join(tmp, "libnone.so")
	cfg := filepath.Join(tmp, "kms.yaml")
	writeFile(t, cfg, []byte("root-key-file: "+keyFile+"\n"))
	data := filepath.Join(tmp, "data")
	server := []string{"server", "--listen", "127.0.0.1:0", "--data-dir", data, "--pkcs11-module", module}

	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"server flags", nil, append(server, "--root-key-file", keyFile, "--root-key", uri),
			[]string{"--root-key-file", "--root-key"}},
		{"server flag and KMS_ROOT_KEY", []string{"KMS_ROOT_KEY=" + uri}, append(server, "--root-key-file", keyFile),
			[]string{"--root-key-file", "KMS_ROOT_KEY"}},
		{"server KMS_ROOT_KEY_FILE and flag", []string{"KMS_ROOT_KEY_FILE=" + keyFile}, append(server, "--root-key", uri),
			[]string{"KMS_ROOT_KEY_FILE", "--root-key"}},
		{"server config file and KMS_ROOT_KEY", []string{"KMS_ROOT_KEY=" + hexKey}, append(server, "--config", cfg),
			[]string{"root-key-file in the --config file", "KMS_ROOT_KEY"}},
		{"dev server", []string{"KMS_ROOT_KEY=" + uri}, append(server, "--dev", "--root-key-file", keyFile),
			[]string{"--root-key-file", "KMS_ROOT_KEY"}},
		{"backup", []string{"KMS_ROOT_KEY=" + hexKey}, []string{"backup", "-o", filepath.Join(tmp, "kms.kmsbak"), "--data-dir", data, "--root-key-file", keyFile},
			[]string{"--root-key-file", "KMS_ROOT_KEY"}},
		{"restore", nil, []string{"restore", "-i", filepath.Join(tmp, "kms.kmsbak"), "--data-dir", data, "--root-key-file", keyFile, "--root-key", uri, "--pkcs11-module", module},
			[]string{"--root-key-file", "--root-key"}},
		{"root-key rotate", []string{"KMS_ROOT_KEY=" + uri}, []string{"root-key", "rotate", "--data-dir", data, "--root-key-file", keyFile, "--new-root-key-file", newKeyFile, "--pkcs11-module", module},
			[]string{"--root-key-file", "KMS_ROOT_KEY"}},
		{"migrate", nil, []string{"migrate", "--from", data, "--to", filepath.Join(tmp, "copy"), "--root-key-file", keyFile, "--root-key", uri, "--pkcs11-module", module},
			[]string{"--root-key-file", "--root-key"}},
		{"migrate and KMS_ROOT_KEY", []string{"KMS_ROOT_KEY=" + hexKey}, []string{"migrate", "--from", data, "--to", filepath.Join(tmp, "copy"), "--root-key-file", keyFile},
			[]string{"--root-key-file", "KMS_ROOT_KEY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runToExit(t, baseEnv(tc.env...), tc.args...)
			if code == 0 {
				t.Fatalf("exit 0 with two root keys; stdout:\n%s", stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(stderr, "two root keys") {
				t.Errorf("stderr should be one line saying two root keys are given:\n%s", stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, "by "+want+" ") && !strings.Contains(stderr, "by "+want+":") {
					t.Errorf("stderr does not name %s:\n%s", want, stderr)
				}
			}
			if strings.Contains(stdout, "listening") {
				t.Errorf("stdout:\n%s", stdout)
			}
			for _, d := range []string{data, filepath.Join(tmp, "copy")} {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("created %s though it refused", d)
				}
			}
		})
	}
}

// sealedMsg is a ciphertext and what it must decrypt to.
type sealedMsg struct {
	keyID     string // the key's id
	plaintext []byte
	blob      []byte
	ec        map[string]string
}

// TestSurvivesSIGKILL: everything acknowledged before a SIGKILL is there
// after a restart.
func TestSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)

	var ids, arns []string
	for i := range 4 {
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprintf("survivor %d", i))})
		noErr(t, err, "CreateKey")
		ids = append(ids, *ck.KeyMetadata.KeyId)
		arns = append(arns, *ck.KeyMetadata.Arn)
	}
	const alias = "alias/e2e/survivor"
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: &ids[0]})
	noErr(t, err, "CreateAlias")
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: &ids[1], Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("e2e")}}})
	noErr(t, err, "TagResource")
	_, err = c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: &ids[1], Description: aws.String("renamed before the crash")})
	noErr(t, err, "UpdateKeyDescription")

	var msgs []sealedMsg
	for i, n := range []int{1, 17, 256, 4096, 33, 2} {
		key := ids[i%3]
		ident := key
		if i%3 == 0 && i > 0 {
			ident = alias
		}
		var ec map[string]string
		if i%2 == 0 {
			ec = map[string]string{"purpose": "sigkill", "n": fmt.Sprint(i)}
		}
		pt := randBytes(t, n)
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &ident, Plaintext: pt, EncryptionContext: ec})
		noErr(t, err, "Encrypt %d", i)
		msgs = append(msgs, sealedMsg{key, pt, enc.CiphertextBlob, ec})
	}
	for i, dk := range []struct{ ident, keyID string }{{ids[0], ids[0]}, {ids[1], ids[1]}, {alias, ids[0]}} {
		ec := map[string]string{"datakey": fmt.Sprint(i)}
		out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &dk.ident, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
		noErr(t, err, "GenerateDataKey")
		if len(out.Plaintext) != 32 {
			t.Fatalf("data key of %d bytes", len(out.Plaintext))
		}
		msgs = append(msgs, sealedMsg{dk.keyID, out.Plaintext, out.CiphertextBlob, ec})
	}
	dk64, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &ids[2], NumberOfBytes: aws.Int32(64)})
	noErr(t, err, "GenerateDataKey 64")
	msgs = append(msgs, sealedMsg{ids[2], dk64.Plaintext, dk64.CiphertextBlob, nil})
	wp, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: &ids[1], KeySpec: types.DataKeySpecAes128})
	noErr(t, err, "GenerateDataKeyWithoutPlaintext")
	wpDec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob})
	noErr(t, err, "Decrypt data key without plaintext")
	if len(wpDec.Plaintext) != 16 {
		t.Fatalf("AES_128 data key of %d bytes", len(wpDec.Plaintext))
	}
	msgs = append(msgs, sealedMsg{ids[1], wpDec.Plaintext, wp.CiphertextBlob, nil})

	// Leave key 2 disabled and key 3 pending deletion.
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &ids[2]})
	noErr(t, err, "DisableKey")
	sk, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &ids[3], PendingWindowInDays: aws.Int32(7)})
	noErr(t, err, "ScheduleKeyDeletion")
	before := map[string]*types.KeyMetadata{}
	for _, id := range ids {
		dk, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
		noErr(t, err, "DescribeKey")
		before[id] = dk.KeyMetadata
	}

	s.kill()
	s = startDev(t, dir)
	c = s.client(t)

	wantState := []types.KeyState{types.KeyStateEnabled, types.KeyStateEnabled, types.KeyStateDisabled, types.KeyStatePendingDeletion}
	for i, id := range ids {
		dk, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
		noErr(t, err, "DescribeKey %s after SIGKILL", id)
		got, was := dk.KeyMetadata, before[id]
		if got.KeyState != wantState[i] || got.Enabled != (wantState[i] == types.KeyStateEnabled) {
			t.Errorf("key %d: state %s enabled %v, want %s", i, got.KeyState, got.Enabled, wantState[i])
		}
		if aws.ToString(got.Description) != aws.ToString(was.Description) ||
			aws.ToString(got.CurrentKeyMaterialId) != aws.ToString(was.CurrentKeyMaterialId) ||
			!aws.ToTime(got.CreationDate).Equal(aws.ToTime(was.CreationDate)) ||
			!aws.ToTime(got.DeletionDate).Equal(aws.ToTime(was.DeletionDate)) ||
			aws.ToInt32(got.PendingDeletionWindowInDays) != aws.ToInt32(was.PendingDeletionWindowInDays) {
			t.Errorf("key %d metadata changed across SIGKILL:\nbefore %+v\nafter  %+v", i, *was, *got)
		}
	}
	if got := aws.ToTime(before[ids[3]].DeletionDate); !got.Equal(aws.ToTime(sk.DeletionDate)) {
		t.Errorf("DescribeKey DeletionDate %v, ScheduleKeyDeletion said %v", got, aws.ToTime(sk.DeletionDate))
	}
	lk, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	var listed []string
	for _, k := range lk.Keys {
		listed = append(listed, aws.ToString(k.KeyId))
	}
	for _, id := range ids {
		if !slices.Contains(listed, id) {
			t.Errorf("ListKeys after SIGKILL lacks %s: %v", id, listed)
		}
	}

	// The alias resolves.
	da, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	noErr(t, err, "DescribeKey %s", alias)
	if aws.ToString(da.KeyMetadata.KeyId) != ids[0] {
		t.Errorf("%s resolves to %s, want %s", alias, aws.ToString(da.KeyMetadata.KeyId), ids[0])
	}
	la, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: &ids[0]})
	noErr(t, err, "ListAliases")
	if len(la.Aliases) != 1 || aws.ToString(la.Aliases[0].AliasName) != alias || aws.ToString(la.Aliases[0].TargetKeyId) != ids[0] {
		t.Errorf("ListAliases for key 0: %+v", la.Aliases)
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: &ids[1]})
	noErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "env" || aws.ToString(tags.Tags[0].TagValue) != "e2e" {
		t.Errorf("tags of key 1 after SIGKILL: %+v", tags.Tags)
	}

	// The disabled key refuses; once enabled, everything decrypts.
	for _, m := range msgs {
		if m.keyID != ids[2] {
			continue
		}
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: m.blob, EncryptionContext: m.ec})
		if apiErrorCode(err) != "DisabledException" {
			t.Errorf("Decrypt under the disabled key: %v, want DisabledException", err)
		}
		break
	}
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: &ids[2]})
	noErr(t, err, "EnableKey")
	for i, m := range msgs {
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: m.blob, EncryptionContext: m.ec})
		if err != nil {
			t.Errorf("message %d: Decrypt after SIGKILL: %v", i, err)
			continue
		}
		if !bytes.Equal(dec.Plaintext, m.plaintext) {
			t.Errorf("message %d: decrypts to other bytes after SIGKILL", i)
		}
		if idx := slices.Index(ids, m.keyID); aws.ToString(dec.KeyId) != arns[idx] {
			t.Errorf("message %d: decrypted under %s, want %s", i, aws.ToString(dec.KeyId), arns[idx])
		}
		if m.ec != nil {
			wrong := map[string]string{"purpose": "other"}
			if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: m.blob, EncryptionContext: wrong}); apiErrorCode(err) != "InvalidCiphertextException" {
				t.Errorf("message %d: Decrypt with the wrong encryption context: %v, want InvalidCiphertextException", i, err)
			}
		}
	}
	// The pending deletion can still be cancelled.
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: &ids[3]})
	noErr(t, err, "CancelKeyDeletion after SIGKILL")

	// SIGKILL in the middle of a stream of writes: every acknowledged write
	// is there afterwards, and the store opens.
	type acked struct {
		id   string
		blob []byte
		pt   []byte
	}
	var (
		mu     sync.Mutex
		acks   []acked
		wg     sync.WaitGroup
		enough = make(chan struct{})
		once   sync.Once
	)
	for w := range 2 {
		wg.Go(func() {
			for i := range 200 { // bounded; the kill ends it long before
				ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprintf("stream %d/%d", w, i))})
				if err != nil {
					return
				}
				pt := []byte(fmt.Sprintf("stream %d/%d", w, i))
				enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: pt})
				mu.Lock()
				acks = append(acks, acked{id: *ck.KeyMetadata.KeyId})
				if err == nil {
					acks[len(acks)-1].blob, acks[len(acks)-1].pt = enc.CiphertextBlob, pt
				}
				if len(acks) >= 20 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(20 * time.Second):
		t.Fatal("the write stream did not get 20 keys acknowledged")
	}
	s.kill()
	wg.Wait()
	s = startDev(t, dir)
	c = s.client(t)
	for _, a := range acks {
		if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &a.id}); err != nil {
			t.Errorf("key %s acknowledged before SIGKILL: %v", a.id, err)
			continue
		}
		if a.blob == nil {
			continue
		}
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: a.blob})
		if err != nil || !bytes.Equal(dec.Plaintext, a.pt) {
			t.Errorf("ciphertext acknowledged before SIGKILL under %s: %v", a.id, err)
		}
	}
	t.Logf("%d keys acknowledged before the second SIGKILL, all present", len(acks))
}

// TestGracefulShutdown: SIGTERM and SIGINT stop the server with exit code 0
// and leave a data dir that reopens; a second server on a busy data dir
// refuses.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	ck, err := s.client(t).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("graceful")})
	noErr(t, err, "CreateKey")
	keyID := *ck.KeyMetadata.KeyId

	// The data dir is in use: a second server refuses with a clear message
	// instead of waiting for ever.
	code, stdout, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	if code == 0 || strings.Contains(stdout, "listening") {
		t.Errorf("a second server on a data dir in use: exit %d, stdout:\n%s", code, stdout)
	}
	if !strings.Contains(stderr, "locked") {
		t.Errorf("a second server on a data dir in use should say the store is locked:\n%s", stderr)
	}

	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		start := time.Now()
		if code := s.stop(sig); code != 0 {
			t.Errorf("%v: exit code %d, want 0\nstderr:\n%s", sig, code, s.stderr)
		}
		t.Logf("%v: exited in %v", sig, time.Since(start))
		if !strings.Contains(s.stderr.String(), "stopped") {
			t.Errorf("%v: no 'stopped' in the log:\n%s", sig, s.stderr)
		}
		s = startDev(t, dir)
		dk, err := s.client(t).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &keyID})
		noErr(t, err, "DescribeKey after %v", sig)
		if aws.ToString(dk.KeyMetadata.Description) != "graceful" {
			t.Errorf("after %v: description %q", sig, aws.ToString(dk.KeyMetadata.Description))
		}
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit code %d", code)
	}
}

// forms returns the encodings in which secret bytes might be found in a
// file.
func forms(b []byte) map[string][]byte {
	return map[string][]byte{
		"raw":             b,
		"hex":             []byte(hex.EncodeToString(b)),
		"HEX":             []byte(strings.ToUpper(hex.EncodeToString(b))),
		"base64":          []byte(base64.StdEncoding.EncodeToString(b)),
		"base64 unpadded": []byte(base64.RawStdEncoding.EncodeToString(b)),
		"base64url":       []byte(base64.RawURLEncoding.EncodeToString(b)),
	}
}

func assertAbsent(t *testing.T, db []byte, what string, secret []byte) {
	t.Helper()
	for form, b := range forms(secret) {
		if bytes.Contains(db, b) {
			t.Errorf("kms.db holds %s in clear (%s form)", what, form)
		}
	}
}

// TestNoMaterialAtRest: the store holds key material only sealed under the
// root key; neither material, nor the root key, nor the credentials' secret
// is in kms.db in clear.
func TestNoMaterialAtRest(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	var ids []string
	var secrets [][]byte
	for i := range 3 {
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprint("at rest ", i))})
		noErr(t, err, "CreateKey")
		ids = append(ids, *ck.KeyMetadata.KeyId)
		dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes256})
		noErr(t, err, "GenerateDataKey")
		secrets = append(secrets, dk.Plaintext)
		pt := randBytes(t, 64)
		_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: pt})
		noErr(t, err, "Encrypt")
		secrets = append(secrets, pt)
	}
	// A key created and then deleted-to-be still has its material sealed.
	_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &ids[2], PendingWindowInDays: aws.Int32(7)})
	noErr(t, err, "ScheduleKeyDeletion")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	rootText, err := os.ReadFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "read root.key")
	root, err := keys.ParseRootKey(rootText)
	noErr(t, err, "parse root.key")
	rootRaw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(rootText)))
	noErr(t, err, "decode root.key")
	_, secret := devCredentials(t, dir)
	dbPath := filepath.Join(dir, "kms.db")
	raw, err := os.ReadFile(dbPath)
	noErr(t, err, "read kms.db")

	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	noErr(t, err, "open kms.db read-only")
	type sealedRec struct {
		name   string
		sealed []byte
	}
	var recs []sealedRec
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("kv"))
		if b == nil {
			return fmt.Errorf("no bucket kv")
		}
		cur := b.Cursor()
		prefix := []byte("keyver/")
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var rec struct {
				Sealed []byte `json:"sealed"`
			}
			v, err := authstore.NewKey(root).Open(k, v) // the record without its tag
			if err != nil {
				return err
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("record %s: %v", k, err)
			}
			recs = append(recs, sealedRec{string(k), rec.Sealed})
		}
		return nil
	})
	db.Close()
	noErr(t, err, "read keyver records")

	if len(recs) != len(ids) {
		t.Errorf("%d keyver/ records for %d keys", len(recs), len(ids))
	}
	for _, id := range ids {
		if !slices.ContainsFunc(recs, func(r sealedRec) bool { return strings.HasPrefix(r.name, "keyver/us-east-1/"+id+"/") }) {
			t.Errorf("no keyver/ record for key %s", id)
		}
	}
	for i, r := range recs {
		if !bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(r.sealed))) {
			t.Errorf("%s: its sealed value is not in the raw file: is this the right file?", r.name)
		}
		plain, err := root.Open([]byte(r.name), r.sealed)
		if err != nil {
			t.Errorf("%s: does not open under the root key with its name as AAD: %v", r.name, err)
			continue
		}
		// The material follows its binding to the key's spec, usage and
		// origin (docs/storage.md).
		material, ok := bytes.CutPrefix(plain, []byte("openkms-material-v1\x00SYMMETRIC_DEFAULT\x00ENCRYPT_DECRYPT\x00AWS_KMS\x00"))
		if !ok {
			t.Errorf("%s: the sealed value does not begin with its key's binding: %q", r.name, plain[:min(len(plain), 64)])
			continue
		}
		if len(material) != 32 {
			t.Errorf("%s: material of %d bytes, want 32", r.name, len(material))
		}
		if bytes.Count(material, []byte{material[0]}) == len(material) {
			t.Errorf("%s: material is one repeated byte", r.name)
		}
		assertAbsent(t, raw, r.name+" material", material)
		other := recs[(i+1)%len(recs)].name
		if other != r.name {
			if _, err := root.Open([]byte(other), r.sealed); err == nil {
				t.Errorf("%s: sealed material also opens as %s: the AAD does not bind it to its record", r.name, other)
			}
		}
	}
	assertAbsent(t, raw, "the root key", rootRaw)
	if bytes.Contains(raw, bytes.TrimSpace(rootText)) {
		t.Errorf("kms.db holds the root key file's text")
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Errorf("kms.db holds the root access key's secret in clear")
	}
	for i, sec := range secrets {
		assertAbsent(t, raw, fmt.Sprintf("plaintext %d returned or sent through the API", i), sec)
	}
}
