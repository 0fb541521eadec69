package main_test

// `kms migrate` end to end: a dev server's key store goes into PostgreSQL
// and back into a new data directory, where a dev server decrypts what the
// first one encrypted.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

func TestMigrate(t *testing.T) {
	ctx := testCtx(t)
	old := filepath.Join(t.TempDir(), "old")
	s := startDev(t, old)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/migrated"), TargetKeyId: aws.String(keyID)})
	noErr(t, err, "CreateAlias")
	plaintext := []byte("written before the migration")
	ec := map[string]string{"purpose": "migrate"}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/migrated"), Plaintext: plaintext, EncryptionContext: ec})
	noErr(t, err, "Encrypt")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}

	dsn := pgtest.Start(t)
	code, stdout, stderr := runToExit(t, baseEnv(), "migrate", "--from", old, "--to", dsn)
	if code != 0 {
		t.Fatalf("kms migrate --from DIR --to DSN: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, re := range []string{
		`Copied [1-9]\d* records\.`,
		`Verified: [1-9]\d* records on both sides, SHA-256 [0-9a-f]{64}\.`,
		`Checked keys on both sides: 1 symmetric`,
		`Root key: servers on \S+ need the same one: --root-key-file ` + regexp.QuoteMeta(filepath.Join(old, "root.key")),
		`Audit trail: not copied; it stays in ` + regexp.QuoteMeta(old),
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("the summary does not match %q:\n%s", re, stdout)
		}
	}

	t.Run("refusals", func(t *testing.T) {
		code, _, stderr := runToExit(t, baseEnv(), "migrate", "--from", old, "--to", dsn)
		if code != 1 || !strings.Contains(stderr, "not empty") {
			t.Errorf("a second migration into the same database: exit %d\n%s", code, stderr)
		}
		other := make([]byte, 32)
		rand.Read(other)
		dir := filepath.Join(t.TempDir(), "x")
		code, _, stderr = runToExit(t, baseEnv("KMS_ROOT_KEY="+hex.EncodeToString(other)), "migrate", "--from", old, "--to", dir)
		if code != 1 || !strings.Contains(stderr, "root key is not the one") {
			t.Errorf("a wrong root key: exit %d\n%s", code, stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a refused migration created %s", dir)
		}
	})

	// Dev mode: give the new directory the root key, then migrate into it.
	newDir := filepath.Join(t.TempDir(), "new")
	if err := os.Mkdir(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rootKey, err := os.ReadFile(filepath.Join(old, "root.key"))
	noErr(t, err, "read root.key")
	noErr(t, os.WriteFile(filepath.Join(newDir, "root.key"), rootKey, 0o600), "write root.key")
	code, stdout, stderr = runToExit(t, baseEnv(), "migrate", "--from", dsn, "--to", newDir)
	if code != 0 {
		t.Fatalf("kms migrate --from DSN --to DIR: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	s = startDev(t, newDir)
	oldID, oldSecret := devCredentials(t, old)
	if id, secret := devCredentials(t, newDir); id != oldID || secret != oldSecret {
		t.Errorf("the new data directory's credentials are %s, want the old ones (%s)", id, oldID)
	}
	c = s.client(t)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	noErr(t, err, "Decrypt after the migration")
	if !bytes.Equal(dec.Plaintext, plaintext) {
		t.Errorf("decrypted %q, want %q", dec.Plaintext, plaintext)
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/migrated")})
	noErr(t, err, "DescribeKey alias/migrated")
	if got := aws.ToString(d.KeyMetadata.KeyId); got != keyID {
		t.Errorf("alias/migrated names %s, want %s", got, keyID)
	}
}

// A server refuses a key store that kms migrate began to copy into and
// did not finish: it would serve it with records missing.
func TestServerRefusesAnUnfinishedCopy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	noErr(t, err, "open kms.db")
	noErr(t, st.Update(testCtx(t), func(tx store.Tx) error {
		return tx.Put(store.UnfinishedCopyRecord, []byte("kms migrate from elsewhere has not finished"))
	}), "mark")
	st.Close()
	code, _, stderr := runToExit(t, baseEnv(), "server", "--dev", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "did not finish") || !strings.Contains(stderr, "empty it and copy it again") {
		t.Fatalf("a server on an unfinished copy: exit %d\n%s", code, stderr)
	}
}
