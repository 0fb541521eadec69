package main_test

// `kms backup --storage` while a cluster node serves under load, restored
// into a new database and into a data directory, and `kms backup` killed
// mid-run.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/store/pgtest"
)

func TestBackupPostgresUnderLoad(t *testing.T) {
	ctx := testCtx(t)
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	encrypt := func(i int) encrypted {
		e := encrypted{plaintext: fmt.Appendf(nil, "plaintext %d", i)}
		r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: e.plaintext})
		noErr(t, err, "Encrypt")
		e.blob = r.CiphertextBlob
		return e
	}
	var before []encrypted
	for i := range 10 {
		before = append(before, encrypt(i))
	}

	// The chain signed, as the node does within seconds: restored without
	// a digest, it would not verify.
	waitSigned(t, dsn)

	// Load: one client encrypts and creates keys until the backup is done.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; loadCtx.Err() == nil; i++ {
			if i%10 == 0 {
				c.CreateKey(loadCtx, &kms.CreateKeyInput{})
			}
			c.Encrypt(loadCtx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("load")})
		}
	}()
	file := filepath.Join(t.TempDir(), "pg.kmsbak")
	rootKey := filepath.Join(s.Dir, "root.key")
	// The root key authenticates the backup: without it there is none.
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--storage", dsn); code != 1 || !strings.Contains(stderr, "no root key") {
		t.Fatalf("kms backup --storage without the root key: exit %d\n%s", code, stderr)
	}
	began := time.Now()
	code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--storage", dsn, "--root-key-file", rootKey)
	ended := time.Now()
	stopLoad()
	wg.Wait()
	if code != 0 {
		t.Fatalf("kms backup --storage: exit %d\n%s%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(file)
	noErr(t, err, "read the backup")
	snap, err := backup.Parse(data)
	noErr(t, err, "parse the backup")
	if len(snap.AuditRows) == 0 {
		t.Fatal("the backup holds no audit rows")
	}

	t.Run("into PostgreSQL", func(t *testing.T) {
		dsn2 := pgtest.Start(t)
		code, stdout, stderr := runToExit(t, baseEnv(), "restore", "-i", file, "--storage", dsn2, "--root-key-file", rootKey)
		if code != 0 || !strings.Contains(stdout, "audit table rows into") {
			t.Fatalf("kms restore --storage: exit %d\n%s%s", code, stdout, stderr)
		}
		checkTaken(t, stdout, began, ended)
		code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn2)
		if code != 0 {
			t.Fatalf("kms audit verify on the restored database: exit %d\n%s%s", code, stdout, stderr)
		}
		code, _, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--storage", dsn2, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "not empty") {
			t.Errorf("a second restore into the same database: exit %d\n%s", code, stderr)
		}
		dir := t.TempDir()
		copyInto(t, rootKey, filepath.Join(dir, "root.key"))
		copyInto(t, filepath.Join(s.Dir, "credentials"), filepath.Join(dir, "credentials"))
		r := startServer(t, dir, baseEnv(), "--dev", "--storage", dsn2)
		checkDecrypts(t, r.client(t), before)
	})

	// A restore that fails after the records were written (here: an
	// audit row the database refuses, a chain given twice) removes them:
	// the database is left empty, and a restore of the whole backup into
	// it then succeeds.
	t.Run("a failed restore is undone", func(t *testing.T) {
		bad := *snap
		bad.AuditRows = append([]backup.Row{bad.AuditRows[0]}, bad.AuditRows...)
		if bad.AuditRows[0].Table != "kms_audit_chains" {
			t.Fatalf("the first audit row is of %s", bad.AuditRows[0].Table)
		}
		badFile := filepath.Join(t.TempDir(), "bad.kmsbak")
		noErr(t, os.WriteFile(badFile, backup.Marshal(&bad), 0o600), "write the edited backup")
		dsn3 := pgtest.Start(t)
		// Edited, the backup no longer matches its tag: refused whole.
		code, stdout, stderr := runToExit(t, baseEnv(), "restore", "-i", badFile, "--storage", dsn3, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "authentication tag does not match") {
			t.Fatalf("kms restore of an edited backup: exit %d\n%s%s", code, stdout, stderr)
		}
		// As format version 1, taken only when told to, it is restored
		// until the audit rows fail.
		bad.Tag = nil
		noErr(t, os.WriteFile(badFile, backup.Marshal(&bad), 0o600), "write the edited backup")
		code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", badFile, "--storage", dsn3, "--root-key-file", rootKey)
		if code != 1 || !strings.Contains(stderr, "--allow-unauthenticated") {
			t.Fatalf("kms restore of a version 1 backup: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", badFile, "--storage", dsn3, "--root-key-file", rootKey, "--allow-unauthenticated")
		if code != 1 || !strings.Contains(stderr, "what was restored is removed") {
			t.Fatalf("kms restore of a backup whose audit rows fail: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--storage", dsn3, "--root-key-file", rootKey)
		if code != 0 {
			t.Fatalf("kms restore after a failed one: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn3)
		if code != 0 {
			t.Fatalf("kms audit verify after a failed restore and a whole one: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("into a data directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "restored")
		copyInto(t, rootKey, filepath.Join(dir, "root.key"))
		copyInto(t, filepath.Join(s.Dir, "credentials"), filepath.Join(dir, "credentials"))
		code, stdout, stderr := runToExit(t, baseEnv(), "restore", "-i", file, "--data-dir", dir)
		if code != 0 {
			t.Fatalf("kms restore --data-dir: exit %d\n%s%s", code, stdout, stderr)
		}
		r := startDev(t, dir)
		checkDecrypts(t, r.client(t), before)
	})
}

// TestBackupKilled runs `kms backup` against a serving node, killing it
// with SIGKILL as soon as it has started in a seeded half of the runs and
// letting it finish in the others, and checks that the output file is
// then either absent or a whole backup.
func TestBackupKilled(t *testing.T) {
	ctx := testCtx(t)
	nodes, dsn := startCluster(t, 1)
	c := nodes[0].client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	rng := rand.New(rand.NewPCG(20, 1))
	for i := range 5 {
		for range rng.IntN(20) {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
			noErr(t, err, "Encrypt")
		}
		file := filepath.Join(t.TempDir(), fmt.Sprint("b", i))
		p := startProc(t, baseEnv(), "backup", "-o", file, "--storage", dsn, "--root-key-file", filepath.Join(nodes[0].Dir, "root.key"))
		if rng.IntN(2) == 0 {
			p.cmd.Process.Signal(syscall.SIGKILL)
		}
		p.wait(exitTimeout)
		data, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			continue
		}
		noErr(t, err, "read %s", file)
		if _, err := backup.Parse(data); err != nil {
			t.Errorf("iteration %d: the file left by a killed backup does not parse: %v", i, err)
		}
	}
}
