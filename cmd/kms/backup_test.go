package main_test

// `kms backup` and `kms restore` end to end: a dev server's store and audit
// trail go into a backup file and out into a new data directory, where a
// server decrypts what the first one encrypted and the trail verifies.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/store/pgtest"
)

// encrypted is a ciphertext and what it must decrypt to.
type encrypted struct {
	blob, plaintext []byte
	ec              map[string]string
}

// fillDev creates a key on a new dev server in dir, encrypts n plaintexts
// under it, and stops the server.
func fillDev(t *testing.T, dir string, n int) []encrypted {
	t.Helper()
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	var out []encrypted
	for i := range n {
		e := encrypted{plaintext: []byte(strings.Repeat("x", i+1)), ec: map[string]string{"n": string(rune('a' + i%26))}}
		r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: e.plaintext, EncryptionContext: e.ec})
		noErr(t, err, "Encrypt")
		e.blob = r.CiphertextBlob
		out = append(out, e)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	return out
}

// checkDecrypts decrypts every one of want through c.
func checkDecrypts(t *testing.T, c *kms.Client, want []encrypted) {
	t.Helper()
	ctx := testCtx(t)
	for _, e := range want {
		r, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: e.blob, EncryptionContext: e.ec})
		noErr(t, err, "Decrypt")
		if !bytes.Equal(r.Plaintext, e.plaintext) {
			t.Fatalf("decrypted %q, want %q", r.Plaintext, e.plaintext)
		}
	}
}

// copyInto copies the file src to dst, mode 0600, creating dst's directory.
func copyInto(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	noErr(t, err, "read %s", src)
	noErr(t, os.MkdirAll(filepath.Dir(dst), 0o700), "mkdir")
	noErr(t, os.WriteFile(dst, b, 0o600), "write %s", dst)
}

// checkTaken checks that a restore's output says when its backup was
// taken, and that it was taken between before and after: a backup
// replaced by an older one of the same store restores too, and the time
// is how the operator sees it.
func checkTaken(t *testing.T, stdout string, before, after time.Time) {
	t.Helper()
	m := regexp.MustCompile(`The backup was taken at (\S+) `).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("kms restore does not say when the backup was taken:\n%s", stdout)
	}
	taken, err := time.Parse(time.RFC3339, m[1])
	noErr(t, err, "parse the time the restore reports")
	if taken.Before(before.Truncate(time.Second)) || taken.After(after) {
		t.Fatalf("the backup was taken at %s, says restore; kms backup ran from %s to %s", taken, before, after)
	}
}

func TestBackupRestoreDataDir(t *testing.T) {
	old := filepath.Join(t.TempDir(), "old")
	want := fillDev(t, old, 5)
	file := filepath.Join(t.TempDir(), "kms.kmsbak")
	began := time.Now()
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", old)
	ended := time.Now()
	if code != 0 || !strings.Contains(stdout, "Backed up") {
		t.Fatalf("kms backup: exit %d\n%s%s", code, stdout, stderr)
	}
	rootKey := filepath.Join(old, "root.key")

	t.Run("refusals", func(t *testing.T) {
		data, err := os.ReadFile(file)
		noErr(t, err, "read the backup")
		damaged := filepath.Join(t.TempDir(), "damaged")
		data[len(data)/2] ^= 1
		noErr(t, os.WriteFile(damaged, data, 0o600), "write")
		dir := filepath.Join(t.TempDir(), "x")
		code, _, stderr := runToExit(t, baseEnv(), "restore", "-i", damaged, "--data-dir", dir, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "checksum") {
			t.Errorf("a damaged backup: exit %d\n%s", code, stderr)
		}
		other := make([]byte, 32)
		rand.Read(other)
		code, _, stderr = runToExit(t, baseEnv("KMS_ROOT_KEY="+hex.EncodeToString(other)), "restore", "-i", file, "--data-dir", dir)
		if code != 1 || !strings.Contains(stderr, "does not open with this root key") {
			t.Errorf("a wrong root key: exit %d\n%s", code, stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a refused restore created %s", dir)
		}
		code, _, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--data-dir", old, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "not empty") {
			t.Errorf("a restore over the source: exit %d\n%s", code, stderr)
		}
		// A record added to the backup, its checksum made again: the tag,
		// which only the root key makes, no longer matches.
		data, err = os.ReadFile(file)
		noErr(t, err, "read the backup")
		snap, err := backup.Parse(data)
		noErr(t, err, "parse the backup")
		snap.Records = append(snap.Records, backup.Record{Key: []byte("zzzz/forged"), Value: []byte("{}")})
		forged := filepath.Join(t.TempDir(), "forged")
		noErr(t, os.WriteFile(forged, backup.Marshal(snap), 0o600), "write")
		code, _, stderr = runToExit(t, baseEnv(), "restore", "-i", forged, "--data-dir", dir, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "authentication tag does not match") {
			t.Errorf("an edited backup: exit %d\n%s", code, stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a refused restore created %s", dir)
		}
		// A backup named after the root key file it is read with would
		// take that key's place, and nothing would open the store or the
		// backup: refused, the key file as it was.
		keyData, err := os.ReadFile(rootKey)
		noErr(t, err, "read the root key")
		keyFile := filepath.Join(t.TempDir(), "root.key")
		noErr(t, os.WriteFile(keyFile, keyData, 0o600), "copy the root key")
		code, _, stderr = runToExit(t, baseEnv(), "backup", "-o", keyFile, "--data-dir", old, "--root-key-file", keyFile)
		if now, _ := os.ReadFile(keyFile); code != 1 || !strings.Contains(stderr, "write it elsewhere") || !bytes.Equal(now, keyData) {
			t.Errorf("a backup over its root key file: exit %d, key file kept %v\n%s", code, bytes.Equal(now, keyData), stderr)
		}
	})

	// A dev data directory: the root key and credentials go beside the
	// restored store, as an operator restoring a dev setup would do.
	restored := filepath.Join(t.TempDir(), "restored")
	copyInto(t, rootKey, filepath.Join(restored, "root.key"))
	copyInto(t, filepath.Join(old, "credentials"), filepath.Join(restored, "credentials"))
	code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--data-dir", restored)
	if code != 0 || !strings.Contains(stdout, "sealed values open with the root key") {
		t.Fatalf("kms restore: exit %d\n%s%s", code, stdout, stderr)
	}
	checkTaken(t, stdout, began, ended)
	code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--data-dir", restored)
	if code != 0 {
		t.Fatalf("kms audit verify on the restored data directory: exit %d\n%s%s", code, stdout, stderr)
	}
	s := startDev(t, restored)
	checkDecrypts(t, s.client(t), want)

	t.Run("into PostgreSQL", func(t *testing.T) {
		dsn := pgtest.Start(t)
		dir := filepath.Join(t.TempDir(), "node")
		copyInto(t, rootKey, filepath.Join(dir, "root.key"))
		copyInto(t, filepath.Join(old, "credentials"), filepath.Join(dir, "credentials"))
		code, stdout, stderr := runToExit(t, baseEnv(), "restore", "-i", file, "--storage", dsn, "--data-dir", dir)
		if code != 0 {
			t.Fatalf("kms restore --storage: exit %d\n%s%s", code, stdout, stderr)
		}
		// The data directory's trail came along as files.
		code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir)
		if code != 0 {
			t.Fatalf("kms audit verify on the restored files: exit %d\n%s%s", code, stdout, stderr)
		}
		n := startServer(t, dir, baseEnv(), "--dev", "--storage", dsn)
		checkDecrypts(t, n.client(t), want)
		if code := n.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("the node exited %d on SIGTERM", code)
		}
		code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn)
		if code != 0 {
			t.Fatalf("kms audit verify --storage on the new cluster trail: exit %d\n%s%s", code, stdout, stderr)
		}
	})
}

// TestBackupDataDirUnderLoad backs up a data directory while its server
// serves a stream of calls: the server hands out the snapshot, which
// restores into a new data directory whose trail verifies and whose
// server decrypts every ciphertext made before the backup.
// With tiny audit segments, the server rolls its trail during the backup
// too.
func TestBackupDataDirUnderLoad(t *testing.T) {
	t.Run("one segment", func(t *testing.T) { backupDataDirUnderLoad(t) })
	t.Run("segments", func(t *testing.T) { backupDataDirUnderLoad(t, "--audit-segment-bytes=4096") })
}

func backupDataDirUnderLoad(t *testing.T, extra ...string) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "live")
	s := startServer(t, dir, baseEnv(), append([]string{"--dev"}, extra...)...)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	var before []encrypted
	for i := range 10 {
		e := encrypted{plaintext: []byte(strings.Repeat("y", i+1))}
		r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: e.plaintext})
		noErr(t, err, "Encrypt")
		e.blob = r.CiphertextBlob
		before = append(before, e)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var calls atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; loadCtx.Err() == nil; i++ {
			if i%10 == 0 {
				c.CreateKey(loadCtx, &kms.CreateKeyInput{})
			}
			if _, err := c.Encrypt(loadCtx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("load")}); err == nil {
				calls.Add(1)
			}
		}
	}()
	// Back up only once the load is under way.
	for calls.Load() < 20 {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId})
		noErr(t, err, "DescribeKey")
	}
	file := filepath.Join(t.TempDir(), "live.kmsbak")
	began := time.Now()
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
	ended := time.Now()
	stopLoad()
	wg.Wait()
	if code != 0 {
		t.Fatalf("kms backup --data-dir of a serving server: exit %d\n%s%s", code, stdout, stderr)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	copyInto(t, filepath.Join(dir, "root.key"), filepath.Join(restored, "root.key"))
	copyInto(t, filepath.Join(dir, "credentials"), filepath.Join(restored, "credentials"))
	code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--data-dir", restored)
	if code != 0 {
		t.Fatalf("kms restore: exit %d\n%s%s", code, stdout, stderr)
	}
	checkTaken(t, stdout, began, ended)
	code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--data-dir", restored)
	if code != 0 {
		t.Fatalf("kms audit verify on the restored data directory: exit %d\n%s%s", code, stdout, stderr)
	}
	if segs, _ := audit.Segments(restored); len(extra) > 0 && len(segs) < 2 {
		t.Errorf("the restored trail has %d segments, want those of the server", len(segs))
	}
	r := startDev(t, restored)
	checkDecrypts(t, r.client(t), before)
}

// TestBackupDataDirKilled kills the backup client at once in a seeded half
// of the runs, then kills the server itself, and backs up the stopped data
// directory, whose stale backup.sock must not get in the way.
func TestBackupDataDirKilled(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "d")
	s := startDev(t, dir)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	rng := mathrand.New(mathrand.NewPCG(20, 3))
	out := t.TempDir()
	for i := range 6 {
		for range rng.IntN(10) {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
			noErr(t, err, "Encrypt")
		}
		file := filepath.Join(out, fmt.Sprint("b", i))
		p := startProc(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
		if rng.IntN(2) == 0 {
			p.cmd.Process.Signal(syscall.SIGKILL)
		}
		p.wait(exitTimeout)
		if data, err := os.ReadFile(file); err == nil {
			if _, err := backup.Parse(data); err != nil {
				t.Errorf("run %d: the file left by backup does not parse: %v", i, err)
			}
		}
	}
	s.kill()
	if _, err := os.Stat(filepath.Join(dir, backup.SocketName)); err != nil {
		t.Fatalf("a killed server should leave its socket behind: %v", err)
	}
	file := filepath.Join(out, "stopped")
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("kms backup of a killed server's data directory: exit %d\n%s%s", code, stdout, stderr)
	}
	startDev(t, dir) // and a server starts again over the stale socket
}
