package main_test

// The root key in an HSM, end to end through SoftHSM: kms root-key init
// makes the key in a token, a server on --root-key pkcs11:... keeps the
// store's root key only wrapped by it, refuses to start with one clear
// line when the token, the module, the key or the PIN is wrong, and
// kms root-key rotate moves a store into the token and out of it.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// softHSM is a private SoftHSM token directory for one test.
type softHSM struct {
	module string
	conf   string // SOFTHSM2_CONF
}

// requireSoftHSM returns a SoftHSM set up in a temporary directory.
// Without softhsm2 installed the test fails in CI (CI set) and is skipped
// elsewhere.
func requireSoftHSM(t *testing.T) *softHSM {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("SoftHSM (Debian softhsm2) is needed for this test: "+format, args...)
		}
		t.Skipf("no SoftHSM: "+format, args...)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		missing("%v", err)
	}
	h := &softHSM{}
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			h.module = m
			break
		}
	}
	if h.module == "" {
		missing("libsofthsm2.so not found")
	}
	dir := t.TempDir()
	noErr(t, os.Mkdir(filepath.Join(dir, "tokens"), 0o700), "mkdir")
	h.conf = filepath.Join(dir, "softhsm2.conf")
	writeFile(t, h.conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"))
	return h
}

// env is baseEnv with this SoftHSM and extra.
func (h *softHSM) env(extra ...string) []string {
	return baseEnv(append([]string{"SOFTHSM2_CONF=" + h.conf}, extra...)...)
}

// initToken creates a token labelled label with user PIN pin.
func (h *softHSM) initToken(t *testing.T, label, pin string) {
	t.Helper()
	h.run(t, "softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "so-"+pin, "--pin", pin)
}

// run runs a tool of SoftHSM or OpenSC on this SoftHSM.
func (h *softHSM) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = h.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const hsmPIN = "1234"

// encryptOne creates a key on s and encrypts a plaintext under it.
func encryptOne(t *testing.T, s *server, plaintext string) encrypted {
	t.Helper()
	ctx := testCtx(t)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	r, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte(plaintext)})
	noErr(t, err, "Encrypt")
	return encrypted{blob: r.CiphertextBlob, plaintext: []byte(plaintext)}
}

// stopServer stops s with SIGTERM, failing unless it exits 0.
func stopServer(t *testing.T, s *server) {
	t.Helper()
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, s.stderr)
	}
}

// readRecord returns the value of the record name in the store of the data
// directory dir, or nil.
func readRecord(t *testing.T, dir string, name []byte) []byte {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	noErr(t, err, "open the store")
	defer st.Close()
	var v []byte
	err = st.View(context.Background(), func(tx store.Tx) error {
		b, err := tx.Get(name)
		v = bytes.Clone(b)
		if err == store.ErrNotFound {
			return nil
		}
		return err
	})
	noErr(t, err, "read %s", name)
	return v
}

// noRootSecretIn checks that no 32 bytes anywhere in the files of dir open
// its store's root key check record: the root key that seals the store is
// nowhere in the data directory, neither whole nor at any offset.
func noRootSecretIn(t *testing.T, dir string) {
	t.Helper()
	check := readRecord(t, dir, keys.RootCheckRecord)
	if check == nil {
		t.Fatalf("%s has no root key check record", dir)
	}
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read %s", dir)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		noErr(t, err, "read %s", e.Name())
		for i := 0; i+keys.RootKeySize <= len(b); i++ {
			rk, err := keys.NewRootKey(b[i : i+keys.RootKeySize])
			noErr(t, err, "NewRootKey")
			if _, err := rk.Open(keys.RootCheckRecord, check); err == nil {
				t.Fatalf("%s holds the store's root key in the clear at offset %d", e.Name(), i)
			}
		}
	}
}

// TestPKCS11RootKey: a key made by kms root-key init in a SoftHSM token;
// a server on it serves, restarts and decrypts what it encrypted; the
// data directory holds the store's root key only wrapped; a backup
// restores, and a migration opens, with the token's key.
func TestPKCS11RootKey(t *testing.T) {
	t.Parallel()
	h := requireSoftHSM(t)
	h.initToken(t, "kms", hsmPIN)
	uri := "pkcs11:token=kms;object=kms-root"
	env := h.env("KMS_PKCS11_PIN=" + hsmPIN)

	code, stdout, stderr := runToExit(t, env, "root-key", "init", "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, `"kms-root"`) {
		t.Fatalf("kms root-key init: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runToExit(t, env, "root-key", "init", "--root-key", uri, "--pkcs11-module", h.module)
	if code == 0 || !strings.Contains(stderr, "already holds a key labelled") {
		t.Errorf("a second init with the same label: exit %d\n%s", code, stderr)
	}
	// pkcs11-tool sees one secret key with the label; it is sensitive and
	// not extractable.
	objects := h.run(t, "pkcs11-tool", "--module", h.module, "--token-label", "kms", "--login", "--pin", hsmPIN, "--list-objects", "--type", "secrkey")
	if strings.Count(objects, "label:      kms-root") != 1 || !strings.Contains(objects, "Access:     sensitive, always sensitive, never extractable") {
		t.Errorf("pkcs11-tool --list-objects:\n%s", objects)
	}

	dir := filepath.Join(t.TempDir(), "data")
	creds := filepath.Join(t.TempDir(), "credentials")
	s := startServer(t, dir, env, "--root-key", uri, "--pkcs11-module", h.module, "--init-credentials", creds)
	e := encryptOne(t, s, "under a key in the token")
	stopServer(t, s)

	wrapped := readRecord(t, dir, keys.WrappedRootRecord)
	if len(wrapped) != 1+12+keys.RootKeySize+16 || wrapped[0] != 1 {
		t.Errorf("%s = %x; want version 1, a nonce and a sealed 32-byte key", keys.WrappedRootRecord, wrapped)
	}
	noRootSecretIn(t, dir)

	// Restarted, with the PIN from a pin-source file this time.
	pinFile := filepath.Join(t.TempDir(), "pin")
	writeFile(t, pinFile, []byte(hsmPIN+"\n"))
	s = startServer(t, dir, h.env(), "--root-key", uri+"?pin-source=file:"+pinFile, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), []encrypted{e})
	stopServer(t, s)

	// --print-config names the URI, not the PIN.
	code, stdout, _ = runToExit(t, h.env("KMS_ROOT_KEY="+uri+"?pin-value=secret-pin"), "server", "--print-config")
	if code != 0 || !strings.Contains(stdout, `root-key: "`+uri+`?pin-value=xxxxx"  # environment`) || strings.Contains(stdout, "secret-pin") {
		t.Errorf("--print-config: exit %d\n%s", code, stdout)
	}

	// A backup, taken with the server stopped and so authenticated with
	// the token's key, restores into a new data directory with that key,
	// and not with a key file.
	file := filepath.Join(t.TempDir(), "kms.kmsbak")
	code, stdout, stderr = runToExit(t, env, "backup", "-o", file, "--data-dir", dir, "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 {
		t.Fatalf("kms backup: exit %d\n%s%s", code, stdout, stderr)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	keyFile := filepath.Join(t.TempDir(), "root.key")
	writeFile(t, keyFile, keys.GenerateRootKey())
	code, _, stderr = runToExit(t, env, "restore", "-i", file, "--data-dir", restored, "--root-key-file", keyFile)
	if code == 0 || !strings.Contains(stderr, "kept in a PKCS#11 token") {
		t.Errorf("restore with a key file: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runToExit(t, env, "restore", "-i", file, "--data-dir", restored, "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, "sealed values open with the root key") {
		t.Fatalf("kms restore: exit %d\n%s%s", code, stdout, stderr)
	}
	initCreds.Store(restored, creds)
	s = startServer(t, restored, env, "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), []encrypted{e})
	stopServer(t, s)

	// kms migrate copies the wrapped record with the others: the copy
	// opens with the same token key.
	moved := filepath.Join(t.TempDir(), "moved")
	code, stdout, stderr = runToExit(t, env, "migrate", "--from", dir, "--to", moved, "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, "need --root-key "+uri) {
		t.Fatalf("kms migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	initCreds.Store(moved, creds)
	s = startServer(t, moved, env, "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), []encrypted{e})
}

// TestPKCS11RootKeyFromPKCS11Tool: a key made by OpenSC's pkcs11-tool, not
// by kms, is found by its label.
func TestPKCS11RootKeyFromPKCS11Tool(t *testing.T) {
	t.Parallel()
	h := requireSoftHSM(t)
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pkcs11-tool (Debian opensc) is needed for this test: %v", err)
		}
		t.Skipf("no pkcs11-tool: %v", err)
	}
	h.initToken(t, "ops", hsmPIN)
	h.run(t, "pkcs11-tool", "--module", h.module, "--token-label", "ops", "--login", "--pin", hsmPIN,
		"--keygen", "--key-type", "AES:32", "--label", "made-by-opensc", "--sensitive")
	env := h.env("KMS_PKCS11_PIN=" + hsmPIN)
	uri := "pkcs11:token=ops;object=made-by-opensc"
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir, env, "--root-key", uri, "--pkcs11-module", h.module, "--init-credentials", filepath.Join(t.TempDir(), "credentials"))
	e := encryptOne(t, s, "under an opensc key")
	stopServer(t, s)
	s = startServer(t, dir, env, "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), []encrypted{e})

	// A key the token lets out (made without --sensitive, or with
	// --extractable) is refused with one line, and no store is made.
	h.run(t, "pkcs11-tool", "--module", h.module, "--token-label", "ops", "--login", "--pin", hsmPIN,
		"--keygen", "--key-type", "AES:32", "--label", "extractable", "--extractable")
	leaky := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := runToExit(t, env, "server", "--listen", "127.0.0.1:0", "--data-dir", leaky,
		"--root-key", "pkcs11:token=ops;object=extractable", "--pkcs11-module", h.module)
	if want := "kms: root key pkcs11:token=ops;object=extractable: the token lets this key out"; code == 0 ||
		strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.HasPrefix(stderr, want) {
		t.Errorf("a server on an extractable key: exit %d, stderr should be one line starting %q:\n%s%s", code, want, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(leaky, "kms.db")); err == nil {
		t.Error("created kms.db though it refused to start")
	}
	// Nor does a rotation move a store onto one.
	stopServer(t, s)
	code, stdout, stderr = runToExit(t, env, "root-key", "rotate", "--data-dir", dir, "--root-key", uri,
		"--new-root-key", "pkcs11:token=ops;object=extractable", "--pkcs11-module", h.module)
	if code == 0 || !strings.Contains(stderr, "the token lets this key out") {
		t.Errorf("a rotation onto an extractable key: exit %d\n%s%s", code, stdout, stderr)
	}
	s = startServer(t, dir, env, "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), []encrypted{e})
}

// TestPKCS11RefusesToStart: a wrong PIN, an absent token, a missing
// module, a label not in the token: the server refuses with one line that
// says which, exits non-zero, and creates no store.
func TestPKCS11RefusesToStart(t *testing.T) {
	t.Parallel()
	h := requireSoftHSM(t)
	h.initToken(t, "kms", hsmPIN)
	code, _, stderr := runToExit(t, h.env("KMS_PKCS11_PIN="+hsmPIN), "root-key", "init", "--root-key", "pkcs11:token=kms;object=root", "--pkcs11-module", h.module)
	if code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	tests := []struct {
		name, uri, module, pin, want string
	}{
		{"wrong PIN", "pkcs11:token=kms;object=root", h.module, "9999", "kms: root key pkcs11:token=kms;object=root: PIN incorrect"},
		{"no PIN", "pkcs11:token=kms;object=root", h.module, "", "kms: root key pkcs11:token=kms;object=root: no PIN: set KMS_PKCS11_PIN"},
		{"absent token", "pkcs11:token=gone;object=root", h.module, hsmPIN, `kms: root key pkcs11:token=gone;object=root: no token labelled "gone"`},
		{"no module file", "pkcs11:token=kms;object=root", filepath.Join(t.TempDir(), "libnone.so"), hsmPIN, "no such file or directory"},
		{"not a module", "pkcs11:token=kms;object=root", h.conf, hsmPIN, "does not load"},
		{"no module given", "pkcs11:token=kms;object=root", "", hsmPIN, "no PKCS#11 module: pass --pkcs11-module"},
		{"label not found", "pkcs11:token=kms;object=other", h.module, hsmPIN, `kms: root key pkcs11:token=kms;object=other: no secret key labelled "other" in token "kms"`},
		{"bad URI", "pkcs11:token=kms", h.module, hsmPIN, "kms: root key --root-key: no object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := []string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--root-key", tc.uri}
			if tc.module != "" {
				args = append(args, "--pkcs11-module", tc.module)
			}
			env := h.env()
			if tc.pin != "" {
				env = h.env("KMS_PKCS11_PIN=" + tc.pin)
			}
			code, stdout, stderr := runToExit(t, env, args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr should be one line saying %q:\n%s", tc.want, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stdout, "listening") {
				t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "kms.db")); err == nil {
				t.Errorf("created kms.db though it refused to start")
			}
		})
	}
}

// TestPKCS11RootKeyRotate moves a store's root key from a file into the
// token, to another key in it, and back to another file, each a kms
// root-key rotate: after each, the old root key no longer opens the store
// and a server on the new one decrypts what was encrypted before.
func TestPKCS11RootKeyRotate(t *testing.T) {
	t.Parallel()
	h := requireSoftHSM(t)
	h.initToken(t, "kms", hsmPIN)
	uri := "pkcs11:token=kms;object=root"
	env := h.env("KMS_PKCS11_PIN=" + hsmPIN)
	code, _, stderr := runToExit(t, env, "root-key", "init", "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	refused := func(t *testing.T, dir, want string, args ...string) {
		t.Helper()
		code, stdout, stderr := runToExit(t, env, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir}, args...)...)
		if code == 0 || !strings.Contains(stderr, want) || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
			t.Errorf("a server on %v: exit %d, want one line saying %q\n%s%s", args, code, want, stdout, stderr)
		}
	}

	// A store made with a key file.
	dir := filepath.Join(t.TempDir(), "data")
	fileKey := filepath.Join(t.TempDir(), "file.key")
	writeFile(t, fileKey, keys.GenerateRootKey())
	s := startServer(t, dir, env, "--root-key-file", fileKey, "--init-credentials", filepath.Join(t.TempDir(), "credentials"))
	want := []encrypted{encryptOne(t, s, "under the file key")}
	stopServer(t, s)
	refused(t, dir, "is not kept in a PKCS#11 token", "--root-key", uri, "--pkcs11-module", h.module)

	// file → PKCS#11.
	code, stdout, stderr := runToExit(t, env, "root-key", "rotate", "--data-dir", dir, "--root-key-file", fileKey,
		"--new-root-key", uri, "--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, "wrapped by root key "+uri) {
		t.Fatalf("rotate file → pkcs11: exit %d\n%s%s", code, stdout, stderr)
	}
	if readRecord(t, dir, keys.WrappedRootRecord) == nil {
		t.Errorf("no %s record after the rotation into the token", keys.WrappedRootRecord)
	}
	noRootSecretIn(t, dir)
	refused(t, dir, "kept in a PKCS#11 token", "--root-key-file", fileKey)
	s = startServer(t, dir, env, "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), want)
	want = append(want, encryptOne(t, s, "under the token's key"))
	stopServer(t, s)

	// PKCS#11 → another key in the token.
	uri2 := "pkcs11:token=kms;object=root2"
	code, _, stderr = runToExit(t, env, "root-key", "init", "--root-key", uri2, "--pkcs11-module", h.module)
	if code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runToExit(t, env, "root-key", "rotate", "--data-dir", dir, "--root-key", uri, "--new-root-key", uri2,
		"--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, "wrapped by root key "+uri2) {
		t.Fatalf("rotate pkcs11 → pkcs11: exit %d\n%s%s", code, stdout, stderr)
	}
	refused(t, dir, "not the one", "--root-key", uri, "--pkcs11-module", h.module)
	s = startServer(t, dir, env, "--root-key", uri2, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), want)
	stopServer(t, s)

	// PKCS#11 → another file.
	newKey := filepath.Join(t.TempDir(), "new.key")
	writeFile(t, newKey, keys.GenerateRootKey())
	code, stdout, stderr = runToExit(t, env, "root-key", "rotate", "--data-dir", dir, "--root-key", uri2, "--pkcs11-module", h.module,
		"--new-root-key-file", newKey)
	if code != 0 || !strings.Contains(stdout, "open with the new root key only") {
		t.Fatalf("rotate pkcs11 → file: exit %d\n%s%s", code, stdout, stderr)
	}
	if w := readRecord(t, dir, keys.WrappedRootRecord); w != nil {
		t.Errorf("the %s record is still there after the rotation out of the token", keys.WrappedRootRecord)
	}
	refused(t, dir, "is not kept in a PKCS#11 token", "--root-key", uri, "--pkcs11-module", h.module)
	refused(t, dir, "not the one", "--root-key-file", fileKey)
	s = startServer(t, dir, env, "--root-key-file", newKey)
	checkDecrypts(t, s.client(t), want)
	stopServer(t, s)

	// A dev data directory's root.key moves into the token: rotate
	// removes it, and a dev server needs --root-key from then on.
	devDir := filepath.Join(t.TempDir(), "dev")
	s = startServer(t, devDir, env, "--dev")
	devWant := []encrypted{encryptOne(t, s, "under the dev root.key")}
	stopServer(t, s)
	code, stdout, stderr = runToExit(t, env, "root-key", "rotate", "--data-dir", devDir, "--new-root-key", uri, "--pkcs11-module", h.module)
	if code != 0 || !strings.Contains(stdout, "Removed") {
		t.Fatalf("rotate dev → pkcs11: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(devDir, "root.key")); err == nil {
		t.Errorf("root.key is still in the dev data directory")
	}
	refused(t, devDir, "no root.key", "--dev")
	s = startServer(t, devDir, env, "--dev", "--root-key", uri, "--pkcs11-module", h.module)
	checkDecrypts(t, s.client(t), devWant)
	stopServer(t, s)

	// A rotation from the token's key, which no longer opens the store,
	// refuses and changes nothing.
	code, _, stderr = runToExit(t, env, "root-key", "rotate", "--data-dir", dir, "--root-key", uri, "--pkcs11-module", h.module,
		"--new-root-key-file", fileKey)
	if code == 0 || !strings.Contains(stderr, "is not kept in a PKCS#11 token") {
		t.Errorf("a rotation from the old token key: exit %d\n%s", code, stderr)
	}
}

// TestPKCS11Cluster: the nodes of a PostgreSQL store share the wrapped
// root key that the first one created: each unwraps the same key with the
// token, so what one encrypts the others decrypt. The nodes start one
// after the other: SoftHSM's file store does not bear processes that open
// it at the same instant (one of them may find no token), which a
// network HSM does.
func TestPKCS11Cluster(t *testing.T) {
	t.Parallel()
	h := requireSoftHSM(t)
	h.initToken(t, "kms", hsmPIN)
	uri := "pkcs11:token=kms;object=root"
	env := h.env("KMS_PKCS11_PIN=" + hsmPIN)
	code, _, stderr := runToExit(t, env, "root-key", "init", "--root-key", uri, "--pkcs11-module", h.module)
	if code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	nodes := make([]*server, 3)
	for i := range nodes {
		nodes[i] = startServerIn(t, "", env, "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", dsn,
			"--root-key", uri, "--pkcs11-module", h.module)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.key")); err == nil {
		t.Errorf("the dev nodes wrote a root.key though the root key is in the token")
	}
	e := encryptOne(t, nodes[0], "across the cluster")
	for _, s := range nodes[1:] {
		checkDecrypts(t, s.client(t), []encrypted{e})
	}
}

// TestPKCS11URIHidesThePIN: a PIN typed into the path of the URI, after an
// '&' or a ';' meant as '?', or a value the parser refuses, is in no error
// and not in --print-config. No token is needed: the URI is refused first.
func TestPKCS11URIHidesThePIN(t *testing.T) {
	t.Parallel()
	const pin = "S3cretPIN"
	module := filepath.Join(t.TempDir(), "libnone.so")
	keyFile := filepath.Join(t.TempDir(), "new.key")
	writeFile(t, keyFile, keys.GenerateRootKey())
	for _, tc := range []struct{ uri, want string }{
		{"pkcs11:token=kms;object=kms-root&pin-value=" + pin, "%26"},
		{"pkcs11:token=kms;object=kms-root&pin-value=" + pin + "%zz", "%26"},
		{"pkcs11:token=kms;object=kms-root;pin-value=" + pin, "pin-value is a query attribute"},
		{"pkcs11:token=kms;object=" + pin + "%zz", "bad percent-encoding"},
	} {
		code, stdout, stderr := runToExit(t, baseEnv("KMS_ROOT_KEY="+tc.uri), "server", "--print-config")
		if code != 0 || strings.Contains(stdout+stderr, pin) || !strings.Contains(stdout, `root-key: "(not a valid PKCS#11 URI)"  # environment`) {
			t.Errorf("--print-config with KMS_ROOT_KEY=%s: exit %d\n%s%s", tc.uri, code, stdout, stderr)
		}
		dir := t.TempDir()
		for _, args := range [][]string{
			{"server", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--root-key", tc.uri, "--pkcs11-module", module},
			{"restore", "-i", filepath.Join(dir, "kms.kmsbak"), "--data-dir", filepath.Join(dir, "restored"), "--root-key", tc.uri, "--pkcs11-module", module},
			{"root-key", "rotate", "--data-dir", dir, "--root-key-file", keyFile, "--new-root-key", tc.uri, "--pkcs11-module", module},
			{"root-key", "init", "--root-key", tc.uri, "--pkcs11-module", module},
		} {
			code, stdout, stderr := runToExit(t, baseEnv(), args...)
			if code == 0 || strings.Contains(stdout+stderr, pin) || !strings.Contains(stderr, tc.want) {
				t.Errorf("kms %s: exit %d, want an error saying %q without the PIN\n%s%s", strings.Join(args, " "), code, tc.want, stdout, stderr)
			}
		}
	}
}
