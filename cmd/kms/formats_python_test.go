package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestFormatsReadFromTheirDocs reads what the built binary writes with a
// second reader written from the documents alone (test/formats, Python's
// standard library): a ciphertext blob, `kms encrypt` messages, a data
// directory's audit trail in several segments with its signed digests,
// and a backup with its tag. It then edits, deletes and reorders records
// of the trail, each of which both that reader and `kms audit verify`
// must find. A document that no longer says what the binary writes fails
// it.
func TestFormatsReadFromTheirDocs(t *testing.T) {
	t.Parallel()
	read := formatsReader(t)
	mustRead := func(t *testing.T, args ...string) {
		t.Helper()
		if out, ok := read(t, args...); !ok || !strings.HasPrefix(out, "ok ") {
			t.Fatalf("read_formats.py %s:\n%s", strings.Join(args, " "), out)
		}
	}

	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
	ctx := testCtx(t)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	keyID, arn := aws.ToString(key.KeyMetadata.KeyId), aws.ToString(key.KeyMetadata.Arn)
	scratch := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(scratch, name)
		noErr(t, os.WriteFile(path, b, 0o600), "write %s", name)
		return path
	}

	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("card 4111-1111"),
		EncryptionContext: map[string]string{"order": "42"}})
	noErr(t, err, "Encrypt")
	mustRead(t, "blob", write("blob", enc.CiphertextBlob), keyID, "14")
	dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &keyID, KeySpec: types.DataKeySpecAes256})
	noErr(t, err, "GenerateDataKey")
	mustRead(t, "blob", write("dk", dk.CiphertextBlob), keyID, "32")

	id, secret := devCredentials(t, dir)
	clientEnv := append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL="+s.URL, "HOME="+t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	for _, m := range []struct {
		size, frame int
		signed      bool
		context     string
	}{
		{0, 4096, false, `{"purpose":"test","a":"b"}`},
		{8192, 4096, false, `{"purpose":"test","a":"b"}`},
		{10000, 4096, false, `{"purpose":"test","a":"b"}`},
		{10000, 100, true, `{}`},
	} {
		plain := write("plain", make([]byte, m.size))
		out := filepath.Join(scratch, "msg")
		args := []string{"encrypt", "--key", arn, "--frame-size", strconv.Itoa(m.frame), "-o", out}
		if m.signed {
			args = append(args, "--signed")
		} else {
			args = append(args, "--context", "purpose=test", "--context", "a=b")
		}
		if code, _, stderr := runToExit(t, clientEnv, append(args, plain)...); code != 0 {
			t.Fatalf("kms %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		mustRead(t, "esdk", out, arn, strconv.Itoa(m.size), strconv.Itoa(m.frame), m.context)
		noErr(t, os.Remove(out), "remove")
	}

	// Stopped, the server has signed its trail and closed its segments.
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exited %d on SIGTERM\n%s", code, s.stderr)
	}
	mustRead(t, "audit", dir)
	if n := len(auditSegmentsIn(t, dir)); n < 3 {
		t.Fatalf("the trail is in %d segments, want several", n)
	}
	backup := filepath.Join(scratch, "kms.kmsbak")
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", backup, "--data-dir", dir); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s", code, stderr)
	}
	mustRead(t, "backup", backup, filepath.Join(dir, "root.key"), dir)

	for _, how := range []string{"edit", "delete", "reorder"} {
		t.Run(how, func(t *testing.T) {
			copied := t.TempDir()
			copyDir(t, dir, copied)
			mustRead(t, "tamper", copied, how)
			if out, ok := read(t, "audit", copied); ok || !strings.HasPrefix(out, "BROKEN ") {
				t.Errorf("read_formats.py audit of a trail with a record %sed:\n%s", how, out)
			}
			if code, stdout, _ := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", copied); code != 1 || !strings.HasPrefix(stdout, "BROKEN at record ") {
				t.Errorf("kms audit verify of a trail with a record %sed: exit %d\n%s", how, code, stdout)
			}
		})
	}
}

// A PostgreSQL store's backup holds its audit tables as rows: the second
// reader checks them as docs/backup.md and docs/audit.md ("In
// PostgreSQL") describe them, every chain, digest and registry entry.
func TestFormatsReadFromTheirDocsPostgres(t *testing.T) {
	read := formatsReader(t)
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	ctx := testCtx(t)
	key, err := s.client(t).CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt")
	// Stopped, the node has signed its chain.
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("node exited %d on SIGTERM\n%s", code, s.stderr)
	}
	file := filepath.Join(t.TempDir(), "pg.kmsbak")
	rootKey := filepath.Join(s.Dir, "root.key")
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--storage", dsn, "--root-key-file", rootKey); code != 0 {
		t.Fatalf("kms backup --storage: exit %d\n%s", code, stderr)
	}
	if out, ok := read(t, "backup", file, rootKey, "-"); !ok || !strings.HasPrefix(out, "ok ") {
		t.Fatalf("read_formats.py backup of a PostgreSQL store's backup:\n%s", out)
	}
}

// formatsReader returns a function that runs test/formats/read_formats.py
// with args and returns its output and whether it exited 0. It fails the
// test when python3 is missing: the formats are then unchecked.
func formatsReader(t *testing.T) func(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to read the formats as their documents describe them: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "test", "formats", "read_formats.py"))
	noErr(t, err, "script")
	return func(t *testing.T, args ...string) (string, bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
		cmd.Env = baseEnv("PYTHONDONTWRITEBYTECODE=1")
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
		}
		return string(out), err == nil
	}
}

// auditSegmentsIn returns the names of the audit trail's segments in dir.
func auditSegmentsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read %s", dir)
	var segs []string
	for _, e := range entries {
		if n := e.Name(); n == "audit.log" || strings.HasPrefix(n, "audit-") && strings.HasSuffix(n, ".log") && n != "audit-digests.log" {
			segs = append(segs, n)
		}
	}
	return segs
}
