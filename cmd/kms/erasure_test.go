package main_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// A deleted access key's sealed secret is gone from kms.db after the
// server's next maintenance round (the first runs as it starts: the
// erasure is marked in the store, and survives the restart), and the
// keys that stay work through it.
func TestErasedSecretLeavesKmsDB(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "kms.db")
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	ic := iamClient(s, id, secret)
	_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("leaving")})
	noErr(t, err, "CreateUser")
	ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("leaving")})
	noErr(t, err, "CreateAccessKey")
	akID := aws.ToString(ak.AccessKey.AccessKeyId)
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("kept")})
	noErr(t, err, "Encrypt")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	rec, err := boltstore.ReadValue(path, []byte("iam/accesskey/"+akID), time.Second)
	noErr(t, err, "read the access key's record")
	m := regexp.MustCompile(`"sealedSecret":"([A-Za-z0-9+/=]{20,})"`).FindSubmatch(rec)
	if m == nil {
		t.Fatalf("no sealed secret in the access key's record %q", rec)
	}
	sealed := m[1]

	// The start's maintenance round runs beside the calls: had it read
	// the marks after the deletion, it would compact kms.db itself, and
	// the test would not show that the mark survives a restart. So it is
	// given an erasure of its own to compact, and the deletion waits for
	// its log line: the marks it read are those from before, and it
	// removes only those.
	markErased(t, dir)
	s = startDev(t, dir)
	s.waitLog(regexp.MustCompile(`compacted the key store`), startTimeout)
	_, err = iamClient(s, id, secret).DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("leaving"), AccessKeyId: ak.AccessKey.AccessKeyId})
	noErr(t, err, "DeleteAccessKey")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	if marks := erasedMarks(t, path); len(marks) == 0 {
		t.Fatal("the erasure is not marked in kms.db")
	}

	s = startDev(t, dir)
	s.waitLog(regexp.MustCompile(`compacted the key store`), startTimeout)
	c = s.client(t)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	noErr(t, err, "Decrypt after the compaction")
	if string(dec.Plaintext) != "kept" {
		t.Fatalf("Decrypt after the compaction: %q", dec.Plaintext)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("kept")})
	noErr(t, err, "Encrypt after the compaction")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	raw, err := os.ReadFile(path)
	noErr(t, err, "read kms.db")
	if bytes.Contains(raw, sealed) {
		t.Error("kms.db still holds the deleted access key's sealed secret")
	}
	if marks := erasedMarks(t, path); len(marks) != 0 {
		t.Errorf("the erasure's marks after the compaction: %q", marks)
	}
}

// markErased writes an erasure's mark (store.NoteErased) into the dev
// store in dir, which no server holds, as an erasure's call would.
func markErased(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	root, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "read the root key")
	raw, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	noErr(t, err, "open kms.db")
	defer raw.Close()
	st, _, err := authstore.Open(ctx, raw, root, false)
	noErr(t, err, "open the store with its root key")
	noErr(t, st.Update(ctx, store.NoteErased), "mark an erasure")
}

// erasedMarks returns the erasure marks (store.Erased) of the kms.db at
// path, which no server holds.
func erasedMarks(t *testing.T, path string) []store.Mark {
	t.Helper()
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	marks, err := store.Erased(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return marks
}

// A server killed (SIGKILL) at any moment of the compaction that follows
// an erasure loses no acknowledged change: each start compacts kms.db
// (the round before deleted an access key) while callers create keys,
// and is killed at a random moment; every key acknowledged in any round
// is in the store after, and the copy left by a killed compaction is
// gone after the next one.
func TestKilledCompactionLosesNothing(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	_, err := iamClient(s, id, secret).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("leaving")})
	noErr(t, err, "CreateUser")
	var mu sync.Mutex
	var acked []string
	// create has callers create keys on s until stop is closed, and
	// closes reached once n more are acknowledged; wait returns once the
	// callers have.
	create := func(s *server, callers, n int, stop <-chan struct{}) (reached <-chan struct{}, wait func()) {
		c := s.client(t)
		r := make(chan struct{})
		mu.Lock()
		target := len(acked) + n
		mu.Unlock()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
					if err != nil {
						continue // refused, or cut by the kill: not acknowledged
					}
					mu.Lock()
					if acked = append(acked, aws.ToString(out.KeyMetadata.KeyId)); len(acked) == target {
						close(r)
					}
					mu.Unlock()
				}
			})
		}
		return r, wg.Wait
	}
	// A store of some size, so that a compaction takes a while.
	stop := make(chan struct{})
	reached, wait := create(s, 4, 300, stop)
	<-reached
	close(stop)
	wait()
	erase := func(s *server) {
		t.Helper()
		ic := iamClient(s, id, secret)
		ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("leaving")})
		noErr(t, err, "CreateAccessKey")
		_, err = ic.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("leaving"), AccessKeyId: ak.AccessKey.AccessKeyId})
		noErr(t, err, "DeleteAccessKey")
	}
	erase(s)
	s.kill()

	const rounds = 8
	beforeCompacted := 0
	for range rounds {
		s := startDev(t, dir)
		// Killed after a random number of calls acknowledged since the
		// start: before, while or after the start's round compacts.
		stop := make(chan struct{})
		reached, wait := create(s, 3, 1+rand.N(40), stop)
		<-reached
		if !strings.Contains(s.stderr.String(), "compacted the key store") {
			beforeCompacted++
		}
		s.kill()
		close(stop)
		wait()
		// The next start compacts again whether or not this one did.
		s = startDev(t, dir)
		erase(s)
		s.kill()
	}
	t.Logf("%d of %d starts were killed before their compaction was done; %d keys acknowledged", beforeCompacted, rounds, len(acked))

	// The last start's round may have compacted the last erasure before
	// the kill, if it read the marks after it: an erasure of its own
	// makes sure the next start compacts.
	markErased(t, dir)
	s = startDev(t, dir)
	s.waitLog(regexp.MustCompile(`compacted the key store`), startTimeout)
	if _, err := os.Stat(filepath.Join(dir, "kms.db.compact")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy of a killed compaction is still there after the next one: %v", err)
	}
	c := s.client(t)
	held := map[string]bool{}
	for p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		noErr(t, err, "ListKeys")
		for _, k := range page.Keys {
			held[aws.ToString(k.KeyId)] = true
		}
	}
	for _, id := range acked {
		if !held[id] {
			t.Errorf("key %s, acknowledged before a kill, is not in the store", id)
		}
	}
}
