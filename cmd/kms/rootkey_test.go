package main_test

// `kms root-key rotate` end to end: killed at random points it leaves a
// store that opens wholly with the old root key or wholly with the new
// one; run to the end, the old key no longer opens the store and a server
// on the new key decrypts what was encrypted before.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// fillRotated is fillDev with more sealed values: three keys, each with
// two rotations of its material.
func fillRotated(t *testing.T, dir string) []encrypted {
	t.Helper()
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	var want []encrypted
	for i := range 3 {
		key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey")
		for j := range 3 {
			if j > 0 {
				_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key.KeyMetadata.KeyId})
				noErr(t, err, "RotateKeyOnDemand")
			}
			e := encrypted{plaintext: fmt.Appendf(nil, "key %d version %d", i, j)}
			r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: e.plaintext})
			noErr(t, err, "Encrypt")
			e.blob = r.CiphertextBlob
			want = append(want, e)
		}
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	return want
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	noErr(t, err, "read %s", src)
	for _, e := range entries {
		if e.Type().IsRegular() {
			copyInto(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		}
	}
}

// opensWith reports which of the root keys opens every sealed value of the
// store at where (a data directory or a postgres:// URL), failing the test
// if none does.
func opensWith(t *testing.T, where string, roots map[string]*keys.RootKey) string {
	t.Helper()
	var st store.Store
	var err error
	if strings.HasPrefix(where, "postgres") {
		st, err = pgstore.Open(context.Background(), where)
	} else {
		st, err = boltstore.Open(filepath.Join(where, "kms.db"))
	}
	noErr(t, err, "open the store")
	defer st.Close()
	for name, root := range roots {
		if _, err := rekey.Check(context.Background(), st, root); err == nil {
			return name
		}
	}
	t.Fatalf("%s opens with neither root key", where)
	return ""
}

// sealedValues returns every value sealed under the root key in the
// bbolt file at path, as the file holds it: the base64 of each sealed
// field of a JSON record, and the whole (tagged) value of the records
// sealed whole.
func sealedValues(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	noErr(t, err, "read %s", path)
	var out [][]byte
	for _, m := range regexp.MustCompile(`"sealed[A-Za-z]*":"([A-Za-z0-9+/=]{20,})"`).FindAllSubmatch(raw, -1) {
		out = append(out, m[1])
	}
	for _, name := range []string{string(keys.RootCheckRecord), "meta/audit-signing-key"} {
		v, err := boltstore.ReadValue(path, []byte(name), time.Second)
		noErr(t, err, "read %s", name)
		out = append(out, v)
	}
	if len(out) < 4 {
		t.Fatalf("%d sealed values in %s: is it the right file?", len(out), path)
	}
	return out
}

func TestRootKeyRotate(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	want := fillRotated(t, base)
	oldFile := filepath.Join(t.TempDir(), "old.key")
	copyInto(t, filepath.Join(base, "root.key"), oldFile)
	newFile := filepath.Join(t.TempDir(), "new.key")
	noErr(t, os.WriteFile(newFile, keys.GenerateRootKey(), 0o600), "write the new key")
	oldKey, err := keys.ReadRootKeyFile(oldFile)
	noErr(t, err, "old key")
	newKey, err := keys.ReadRootKeyFile(newFile)
	noErr(t, err, "new key")
	roots := map[string]*keys.RootKey{"old": oldKey, "new": newKey}

	// How many sealed values a rotation rewraps.
	total := func() int {
		st, err := boltstore.Open(filepath.Join(base, "kms.db"))
		noErr(t, err, "open")
		defer st.Close()
		n, err := rekey.Check(context.Background(), st, oldKey)
		noErr(t, err, "check")
		return n
	}()

	t.Run("killed", func(t *testing.T) {
		for seed := range uint64(6) {
			dir := filepath.Join(t.TempDir(), fmt.Sprint("kill", seed))
			copyDir(t, base, dir)
			at := rand.New(rand.NewPCG(seed, 20)).IntN(total + 1) // 0: as soon as it runs
			p := startProc(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--root-key-file", oldFile, "--new-root-key-file", newFile)
			if at > 0 {
				p.waitOutput(regexp.MustCompile(fmt.Sprintf(`(?m)^  rewrapped %d$`, at)), exitTimeout)
			}
			finished := killOrFinished(p)
			got := opensWith(t, dir, roots)
			t.Logf("seed %d: killed after %d of %d sealed values (finished first: %v); the store opens with the %s root key", seed, at, total, finished, got)
			if finished && got != "new" {
				t.Fatalf("a rotation that exited 0 left a store that opens with the %s key", got)
			}
			if got == "new" {
				continue
			}
			// Killed before the commit: running it again completes.
			code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--root-key-file", oldFile, "--new-root-key-file", newFile)
			if code != 0 {
				t.Fatalf("rotate after the kill: exit %d\n%s%s", code, stdout, stderr)
			}
			if got := opensWith(t, dir, roots); got != "new" {
				t.Fatalf("after a completed rotation the store opens with the %s key", got)
			}
		}
	})

	// Dev mode, run to the end: root.key is replaced, the old key is
	// refused, and a server decrypts every ciphertext made before.
	dir := filepath.Join(t.TempDir(), "dev")
	copyDir(t, base, dir)
	oldSealed := sealedValues(t, filepath.Join(dir, "kms.db"))
	code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--new-root-key-file", newFile)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("Rotated: %d sealed values", total)) {
		t.Fatalf("kms root-key rotate: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := opensWith(t, dir, roots); got != "new" {
		t.Fatalf("after the rotation the store opens with the %s key", got)
	}
	// Nor is any value sealed under the old key left in the file's free
	// pages, where the old key would open it.
	raw, err := os.ReadFile(filepath.Join(dir, "kms.db"))
	noErr(t, err, "read kms.db")
	for _, v := range oldSealed {
		if bytes.Contains(raw, v) {
			t.Errorf("kms.db still holds a value sealed under the old root key: %.40q...", v)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.Contains(e.Name(), "compact") }) {
		t.Errorf("the data directory after the rotation: %v, %v", entries, err)
	}
	// Compacted by rotate itself: nothing is left for a server to compact.
	if marks := erasedMarks(t, filepath.Join(dir, "kms.db")); len(marks) != 0 {
		t.Errorf("a rotation that compacted kms.db left %d erasure marks", len(marks))
	}
	code, _, stderr = runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--root-key-file", oldFile, "--new-root-key-file", newFile)
	if code != 1 || !strings.Contains(stderr, "old root key does not open") {
		t.Errorf("a second rotation from the old key: exit %d\n%s", code, stderr)
	}
	srv := startProc(t, baseEnv(), "server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--root-key-file", oldFile)
	if code := srv.wait(exitTimeout); code == 0 || !strings.Contains(srv.stderr.String(), "root key is not the one") {
		t.Errorf("a server on the old root key: exit %d\n%s", code, srv.stderr)
	}
	s := startDev(t, dir)
	checkDecrypts(t, s.client(t), want)
}

// TestRootKeyRotateUncompacted: a rotation that committed but could not
// compact kms.db (no room for the copy; here, its place taken) leaves
// the store under the new key only, so it exits 0, as an exit of 1 says
// the store is under the old key (docs/operations.md, "When the disk
// fills"), and warns that the file may keep the old values. It marks the
// store as an erasure does, so the first server started on it, once
// there is room, compacts it: then no value sealed under the old key is
// left in the file.
func TestRootKeyRotateUncompacted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	want := fillDev(t, dir, 2)
	oldSealed := sealedValues(t, filepath.Join(dir, "kms.db"))
	oldKey, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "old key")
	newFile := filepath.Join(t.TempDir(), "new.key")
	noErr(t, os.WriteFile(newFile, keys.GenerateRootKey(), 0o600), "write the new key")
	newKey, err := keys.ReadRootKeyFile(newFile)
	noErr(t, err, "new key")
	// A directory that is not empty where the copy goes: Compact cannot
	// remove it, as it removes a copy left by a killed rotate.
	blocker := filepath.Join(dir, "kms.db.compact")
	noErr(t, os.MkdirAll(filepath.Join(blocker, "in"), 0o700), "block the copy")

	code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--new-root-key-file", newFile)
	if code != 0 || !strings.Contains(stdout, "Rotated:") || !strings.Contains(stdout, "Replaced ") ||
		!strings.HasPrefix(stderr, "kms: warning: the store is rotated, but ") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("a rotation that could not compact: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "Compacted") {
		t.Errorf("rotate says it compacted the store: %s", stdout)
	}
	if got := opensWith(t, dir, map[string]*keys.RootKey{"old": oldKey, "new": newKey}); got != "new" {
		t.Fatalf("after the rotation the store opens with the %s key", got)
	}
	if marks := erasedMarks(t, filepath.Join(dir, "kms.db")); len(marks) == 0 {
		t.Fatal("a rotation that could not compact kms.db left no mark for a server to compact it")
	}
	noErr(t, os.RemoveAll(blocker), "remove the blocker")
	s := startDev(t, dir)
	s.waitLog(regexp.MustCompile(`compacted the key store`), startTimeout)
	checkDecrypts(t, s.client(t), want)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kms.db"))
	noErr(t, err, "read kms.db")
	for _, v := range oldSealed {
		if bytes.Contains(raw, v) {
			t.Errorf("kms.db still holds a value sealed under the old root key after the server's compaction: %.40q...", v)
		}
	}
}

// TestRootKeyRotateRefusesBeforeProgress: a rotation onto the key the
// store has now (a copy of its file), or from a key that does not open
// the store, is refused before rotate prints a line of progress, and
// changes nothing: "Rewrapping ..." printed before the refusal said
// otherwise.
func TestRootKeyRotateRefusesBeforeProgress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	stopServer(t, startDev(t, dir))
	oldKey, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "old key")
	same := filepath.Join(t.TempDir(), "same.key")
	copyInto(t, filepath.Join(dir, "root.key"), same)
	other := filepath.Join(t.TempDir(), "other.key")
	noErr(t, os.WriteFile(other, keys.GenerateRootKey(), 0o600), "write another key")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"onto the same key", []string{"--new-root-key-file", same}, "a rotation needs another key"},
		{"from a key that does not open the store", []string{"--root-key-file", other, "--new-root-key-file", same}, "does not open the key store"},
	} {
		args := append([]string{"root-key", "rotate", "--data-dir", dir}, c.args...)
		code, stdout, stderr := runToExit(t, baseEnv(), args...)
		if code != 1 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("a rotation %s: exit %d, stdout %q, stderr %q; want exit 1, %q and no progress", c.name, code, stdout, stderr, c.want)
		}
	}
	if got := opensWith(t, dir, map[string]*keys.RootKey{"old": oldKey}); got != "old" {
		t.Errorf("after refused rotations the store opens with the %s key", got)
	}
}

// A dev-mode rotation killed after its commit, before it replaced
// root.key, leaves root.key holding the old key; run again, it is
// refused as one from a wrong key, and says that the new key opens the
// store already and where it goes, not only that the old key is wrong.
// (The state is made by rotating with the old key given as a file: the
// data directory's root.key is then left as it was.)
func TestRootKeyRotateRunAgainAfterItsCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	stopServer(t, startDev(t, dir))
	oldFile := filepath.Join(t.TempDir(), "old.key")
	copyInto(t, filepath.Join(dir, "root.key"), oldFile)
	newFile := filepath.Join(t.TempDir(), "new.key")
	noErr(t, os.WriteFile(newFile, keys.GenerateRootKey(), 0o600), "write the new key")
	code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--root-key-file", oldFile, "--new-root-key-file", newFile)
	if code != 0 {
		t.Fatalf("rotate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runToExit(t, baseEnv(), "root-key", "rotate", "--data-dir", dir, "--new-root-key-file", newFile)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "does not open the key store") ||
		!strings.Contains(stderr, "the store opens with the new root key already") || !strings.Contains(stderr, "copy the new key there") {
		t.Errorf("the rotation run again: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	newKey, err := keys.ReadRootKeyFile(newFile)
	noErr(t, err, "new key")
	if got := opensWith(t, dir, map[string]*keys.RootKey{"new": newKey}); got != "new" {
		t.Errorf("after the rotation run again the store opens with the %s key", got)
	}
}

// TestRootKeyRotatePostgres kills rotations of a PostgreSQL store at
// seeded points, then runs one to the end and starts a node on the new
// root key.
func TestRootKeyRotatePostgres(t *testing.T) {
	ctx := testCtx(t)
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	e := encrypted{plaintext: []byte("before the rotation")}
	r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: e.plaintext})
	noErr(t, err, "Encrypt")
	e.blob = r.CiphertextBlob
	oldFile := filepath.Join(s.Dir, "root.key")
	newFile := filepath.Join(t.TempDir(), "new.key")
	noErr(t, os.WriteFile(newFile, keys.GenerateRootKey(), 0o600), "write the new key")
	rotate := []string{"root-key", "rotate", "--storage", dsn, "--root-key-file", oldFile, "--new-root-key-file", newFile}

	// While a node serves, rotate refuses.
	deadline := time.After(startTimeout)
	for {
		out, changed := s.stderr.snapshot()
		if strings.Contains(out, "this node now runs the cluster's background work") {
			break
		}
		select {
		case <-changed:
		case <-s.done:
			t.Fatalf("the node exited\n%s", s.stderr)
		case <-deadline:
			t.Fatalf("the node did not take the maintenance lease within %v\n%s", startTimeout, s.stderr)
		}
	}
	code, _, stderr := runToExit(t, baseEnv(), rotate...)
	if code != 1 || !strings.Contains(stderr, "stop every node first") {
		t.Fatalf("rotate while a node serves: exit %d\n%s", code, stderr)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the node exited %d on SIGTERM", code)
	}
	oldKey, err := keys.ReadRootKeyFile(oldFile)
	noErr(t, err, "old key")
	newKey, err := keys.ReadRootKeyFile(newFile)
	noErr(t, err, "new key")
	roots := map[string]*keys.RootKey{"old": oldKey, "new": newKey}

	rng := rand.New(rand.NewPCG(20, 2))
	for i := range 4 {
		p := startProc(t, baseEnv(), rotate...)
		if at := rng.IntN(4); at > 0 {
			p.waitOutput(regexp.MustCompile(fmt.Sprintf(`(?m)^  rewrapped %d$`, at)), exitTimeout)
		}
		finished := killOrFinished(p)
		switch got := opensWith(t, dsn, roots); {
		case finished && got != "new":
			t.Fatalf("iteration %d: a rotation that exited 0 left a store that opens with the %s key", i, got)
		case got == "new":
			// It committed before the kill landed: rotate back for the
			// next iteration.
			code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--storage", dsn, "--root-key-file", newFile, "--new-root-key-file", oldFile)
			if code != 0 {
				t.Fatalf("rotate back: exit %d\n%s%s", code, stdout, stderr)
			}
		}
	}
	oldSealed := pgSealedValues(t, dsn)
	files := pgtest.DatabaseFiles(t, dsn)
	for _, v := range oldSealed {
		if files.Holding(v) == nil {
			t.Fatalf("before the rotation, a sealed value is in none of the database's files: %.40q...", v)
		}
	}
	code, stdout, stderr := runToExit(t, baseEnv(), rotate...)
	if code != 0 || !strings.Contains(stdout, "Rewrote kms_records") || stderr != "" {
		t.Fatalf("kms root-key rotate --storage: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := opensWith(t, dsn, roots); got != "new" {
		t.Fatalf("after the rotation the store opens with the %s key", got)
	}
	// Nor is any row sealed under the old key left in the table's files
	// (its pages or its TOAST table's), where the old key would open it.
	files = pgtest.DatabaseFiles(t, dsn)
	for _, v := range oldSealed {
		if where := files.Holding(v); where != nil {
			t.Errorf("%v still hold a value sealed under the old root key: %.40q...", where, v)
		}
	}
	n := startServer(t, s.Dir, baseEnv(), "--dev", "--storage", dsn, "--root-key-file", newFile)
	checkDecrypts(t, n.client(t), []encrypted{e})
}

// A rotation by a role that may use the tables but not rewrite them
// succeeds, and says in one line what the table's owner must run, and
// why.
func TestRootKeyRotatePostgresByATableUser(t *testing.T) {
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	_, err := s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the node exited %d on SIGTERM", code)
	}
	oldFile := filepath.Join(s.Dir, "root.key")
	newFile := filepath.Join(t.TempDir(), "new.key")
	noErr(t, os.WriteFile(newFile, keys.GenerateRootKey(), 0o600), "write the new key")
	app := pgtest.TableUser(t, dsn)
	oldSealed := pgSealedValues(t, dsn)
	code, stdout, stderr := runToExit(t, baseEnv(), "root-key", "rotate", "--storage", app, "--root-key-file", oldFile, "--new-root-key-file", newFile)
	if code != 0 || !strings.Contains(stdout, "Rotated: ") {
		t.Fatalf("kms root-key rotate --storage as a table user: exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "kms: warning: ") || !strings.Contains(lines[0], "VACUUM FULL kms_records") || !strings.Contains(lines[0], "old root key") {
		t.Errorf("the warning of a rotation that could not rewrite the table:\n%s", stderr)
	}
	oldKey, err := keys.ReadRootKeyFile(oldFile)
	noErr(t, err, "old key")
	newKey, err := keys.ReadRootKeyFile(newFile)
	noErr(t, err, "new key")
	if got := opensWith(t, dsn, map[string]*keys.RootKey{"old": oldKey, "new": newKey}); got != "new" {
		t.Fatalf("after the rotation the store opens with the %s key", got)
	}
	// What the warning says to run clears them.
	held := false
	for _, v := range oldSealed {
		held = held || pgtest.DatabaseFiles(t, dsn).Holding(v) != nil
	}
	if !held {
		t.Error("the table's files hold no old row: the rewrite happened all the same")
	}
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect as the owner")
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "VACUUM FULL kms_records")
	noErr(t, err, "VACUUM FULL kms_records")
	files := pgtest.DatabaseFiles(t, dsn)
	for _, v := range oldSealed {
		if where := files.Holding(v); where != nil {
			t.Errorf("after VACUUM FULL, %v still hold a value sealed under the old root key", where)
		}
	}
}

// pgSealedValues returns every value sealed under the root key in the
// PostgreSQL store at dsn, as its table holds them: the base64 of each
// sealed field of a JSON record, and the whole stored value of the
// records sealed whole.
func pgSealedValues(t *testing.T, dsn string) [][]byte {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect to %s", dsn)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT k, v FROM kms_records")
	noErr(t, err, "read kms_records")
	field := regexp.MustCompile(`"sealed[A-Za-z]*":"([A-Za-z0-9+/=]{20,})"`)
	var out [][]byte
	whole := 0
	for rows.Next() {
		var k, v []byte
		noErr(t, rows.Scan(&k, &v), "read kms_records")
		if string(k) == string(keys.RootCheckRecord) || string(k) == "meta/audit-signing-key" {
			out = append(out, v)
			whole++
			continue
		}
		for _, m := range field.FindAllSubmatch(v, -1) {
			out = append(out, m[1])
		}
	}
	noErr(t, rows.Err(), "read kms_records")
	if whole != 2 || len(out) < 4 {
		t.Fatalf("%d sealed values in kms_records (%d whole records): is it the right table?", len(out), whole)
	}
	return out
}

// killOrFinished sends p SIGKILL and waits for it to end. The work left
// after the progress line a test waited for may be done before the signal
// lands: it reports whether p exited 0 on its own.
func killOrFinished(p *proc) bool {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	code := p.wait(exitTimeout)
	if code != 0 && code != -1 {
		p.t.Fatalf("kms exited %d\n%s", code, p.stderr)
	}
	return code == 0
}
