package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// editDataDir runs fn in a transaction on the kms.db of dir, which no
// server has open, as whoever can write the file but has no root key
// would; fn is given the store's root key to stand for what such a
// person could have kept from before (a sealed record), not to seal with.
func editDataDir(t *testing.T, dir string, fn func(tx store.Tx, root *keys.RootKey) error) {
	t.Helper()
	root, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(testCtx(t), func(tx store.Tx) error { return fn(tx, root) }); err != nil {
		t.Fatal(err)
	}
}

// Whoever kept the root key check record of a data directory from before
// its records were authenticated, and puts it back with a disabled key
// enabled in the clear, does not have the edit authenticated at the next
// start: the server finds the other records tagged, authenticates
// nothing, says so in its log, and refuses the edited key while it serves
// the others.
func TestStoreCheckRecordPutBack(t *testing.T) {
	dir := t.TempDir()
	s := startDev(t, dir)
	ctx := testCtx(t)
	c := s.client(t)
	victim, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	other, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: victim.KeyMetadata.KeyId})
	noErr(t, err, "DisableKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	record := []byte("key/us-east-1/" + aws.ToString(victim.KeyMetadata.KeyId))
	editDataDir(t, dir, func(tx store.Tx, root *keys.RootKey) error {
		stored, err := tx.Get(record)
		if err != nil {
			return err
		}
		v := stored[authstore.TagSize:]
		enabled := bytes.Replace(v, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
		if bytes.Equal(enabled, v) {
			return fmt.Errorf("no disabled state in %s", v)
		}
		if err := tx.Put(record, enabled); err != nil {
			return err
		}
		return tx.Put(keys.RootCheckRecord, root.Seal(keys.RootCheckRecord, []byte("openkms root key check")))
	})

	s = startDev(t, dir)
	c = s.client(t)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: victim.KeyMetadata.KeyId, Plaintext: []byte("x")})
	if apiErrorCode(err) != "KMSInternalException" {
		t.Errorf("Encrypt with the key enabled in the clear: %v, want KMSInternalException", err)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: other.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt with the other key")
	waitForLog(t, s, "the log of the check record put back", "record was put back as it was before its records were authenticated")
}

// A record that a start-up pass reads, changed outside the server, does
// not keep the server from starting for everyone: the store's layout and
// material binding marks and the account record that --dev and
// --init-credentials read are each logged, their pass skipped, and the
// keys served; no new root access key is made for the account.
func TestStoreStartPassesSkipEditedRecords(t *testing.T) {
	dir, k := stoppedDevWithKey(t)
	ctx := testCtx(t)
	id, _ := devCredentials(t, dir)
	edited := []string{"meta/key-layout", "meta/material-binding", "iam/account/111122223333"}
	editDataDir(t, dir, func(tx store.Tx, _ *keys.RootKey) error {
		for _, name := range edited {
			v, err := tx.Get([]byte(name))
			if err != nil {
				return err
			}
			if err := tx.Put([]byte(name), append(bytes.Clone(v), ' ')); err != nil {
				return err
			}
		}
		return nil
	})

	s := startDev(t, dir)
	_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt after the edits")
	if again, _ := devCredentials(t, dir); again != id {
		t.Errorf("the credentials file now holds access key %s, want %s", again, id)
	}
	waitForLog(t, s, "the log of the edited records", edited...)
}

// A backup is not written of a store that a restore would refuse, so that
// a record changed outside the server is found out when the backup is
// taken, not when it is needed: kms backup fails, asking the running
// server (which logs the record) or reading the stopped store itself
// (which names it), and leaves no file.
func TestStoreBackupRefusesEditedRecord(t *testing.T) {
	dir, k := stoppedDevWithKey(t)
	record := "key/us-east-1/" + aws.ToString(k.KeyMetadata.KeyId)
	editDataDir(t, dir, func(tx store.Tx, _ *keys.RootKey) error {
		v, err := tx.Get([]byte(record))
		if err != nil {
			return err
		}
		return tx.Put([]byte(record), append(bytes.Clone(v), ' '))
	})
	file := filepath.Join(t.TempDir(), "kms.kmsbak")

	s := startDev(t, dir)
	code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
	if code == 0 || !strings.Contains(stderr, "the server sent no snapshot") {
		t.Errorf("kms backup of the running server: exit %d\n%s", code, stderr)
	}
	waitForLog(t, s, "the server's log of the record", string(record), "a restore would refuse this backup")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	code, _, stderr = runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir)
	if code == 0 || !strings.Contains(stderr, record) || !strings.Contains(stderr, "a restore would refuse this backup") {
		t.Errorf("kms backup of the stopped store: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup file was left: %v", err)
	}
}

// A store from before its records were authenticated looks the same as
// an authenticated one whose tags were all taken off and whose old root
// key check record (in every copy and backup from before) was put back,
// with what someone wanted edited in the clear: here a disabled key
// enabled. So the server authenticates such a store only when told to,
// at the start its operator means: without --authenticate-store it
// refuses to start, changing nothing, and says why.
func TestStoreFromBeforeIsAuthenticatedOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	s := startDev(t, dir)
	ctx := testCtx(t)
	k, err := s.client(t).CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = s.client(t).DisableKey(ctx, &kms.DisableKeyInput{KeyId: k.KeyMetadata.KeyId})
	noErr(t, err, "DisableKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	record := []byte("key/us-east-1/" + aws.ToString(k.KeyMetadata.KeyId))
	editDataDir(t, dir, func(tx store.Tx, root *keys.RootKey) error {
		if err := asBeforeAuthentication(tx, root); err != nil {
			return err
		}
		v, err := tx.Get(record)
		if err != nil {
			return err
		}
		return tx.Put(record, bytes.Replace(v, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1))
	})
	before := storedRecords(t, dir)
	// A root key kept apart from the store, as in production: a dev
	// server with root.key in its data directory authenticates such a
	// store by itself (TestDevStoreFromBeforeIsAuthenticated), as whoever
	// can write its kms.db can read the key beside it.
	keyFile := filepath.Join(t.TempDir(), "root.key")
	copyInto(t, filepath.Join(dir, "root.key"), keyFile)

	code, _, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--root-key-file", keyFile)
	if code == 0 || !strings.Contains(stderr, "--authenticate-store") || !strings.Contains(stderr, "not authenticated yet") {
		t.Fatalf("a start without --authenticate-store: exit %d\n%s", code, stderr)
	}
	if after := storedRecords(t, dir); !maps.Equal(after, before) {
		t.Errorf("the refused start changed the store's records")
	}

	// The operator who knows the store is from before says so.
	s = startServer(t, dir, baseEnv(), "--dev", "--root-key-file", keyFile, "--authenticate-store")
	_, err = s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt with the key of a store authenticated as it was")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	// Kept on, the flag would authenticate a store put back as it was.
	s = startServer(t, dir, baseEnv(), "--dev", "--root-key-file", keyFile, "--authenticate-store")
	waitForLog(t, s, "the warning of the flag left on", "--authenticate-store is for the one start")
}

// A dev server's root key is root.key in its own data directory, which
// whoever can write its kms.db can read: there a store from before is
// authenticated at the first start without being asked, as one command
// still starts it, and the log says so.
func TestDevStoreFromBeforeIsAuthenticated(t *testing.T) {
	dir, k := stoppedDevWithKey(t)
	ctx := testCtx(t)
	editDataDir(t, dir, func(tx store.Tx, root *keys.RootKey) error { return asBeforeAuthentication(tx, root) })

	s := startDev(t, dir)
	_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt after the upgrade")
	waitForLog(t, s, "the log of the upgrade", "the key store's records are now authenticated under the root key")
}

// stoppedDevWithKey runs a dev server on a new data directory, makes a
// key and stops the server: a store to edit as no server runs on it.
func stoppedDevWithKey(t *testing.T) (dir string, key *kms.CreateKeyOutput) {
	t.Helper()
	dir = t.TempDir()
	s := startDev(t, dir)
	key, err := s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	return dir, key
}

// waitForLog waits until the log of s, which is written in batches, holds
// every one of want.
func waitForLog(t *testing.T, s *server, what string, want ...string) {
	t.Helper()
	waitFor(t, 3*time.Second, what, func() error {
		log := s.stderr.String()
		for _, w := range want {
			if !strings.Contains(log, w) {
				return fmt.Errorf("the log does not say %q:\n%s", w, log)
			}
		}
		return nil
	})
}

// storedRecords returns every record of the kms.db of dir, which no
// server has open, as stored.
func storedRecords(t *testing.T, dir string) map[string]string {
	t.Helper()
	all := make(map[string]string)
	editDataDir(t, dir, func(tx store.Tx, _ *keys.RootKey) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			all[string(k)] = string(v)
			return true, nil
		})
	})
	return all
}

// Removing a record is not found out, but removing the mark of the
// regions layout must not have the next start move every key record
// again, under a name no call finds: a store whose key records carry
// their region is only marked again, and its keys still serve.
func TestStoreLayoutMarkRemoved(t *testing.T) {
	dir, k := stoppedDevWithKey(t)
	ctx := testCtx(t)
	editDataDir(t, dir, func(tx store.Tx, _ *keys.RootKey) error { return tx.Delete([]byte("meta/key-layout")) })

	s := startDev(t, dir)
	_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt after the layout mark was removed")
}

// kms migrate and kms restore of a store from before its records were
// authenticated say that the first server on the copy needs
// --authenticate-store, which it then does.
func TestStoreFromBeforeCopiedSaysSo(t *testing.T) {
	dir, k := stoppedDevWithKey(t)
	ctx := testCtx(t)
	editDataDir(t, dir, func(tx store.Tx, root *keys.RootKey) error { return asBeforeAuthentication(tx, root) })

	migrated := filepath.Join(t.TempDir(), "migrated")
	code, stdout, stderr := runToExit(t, baseEnv(), "migrate", "--from", dir, "--to", migrated)
	if code != 0 || !strings.Contains(stdout, "once with --authenticate-store") {
		t.Errorf("kms migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	file := filepath.Join(t.TempDir(), "kms.kmsbak")
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s%s", code, stdout, stderr)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--data-dir", restored, "--root-key-file", filepath.Join(dir, "root.key"))
	if code != 0 || !strings.Contains(stdout, "once with --authenticate-store") {
		t.Errorf("kms restore: exit %d\n%s%s", code, stdout, stderr)
	}

	s := startServer(t, migrated, baseEnv(), "--dev", "--authenticate-store")
	_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt on the migrated copy")
}
