package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// erasureEnv is a server's service, directory and maintainer on a store,
// with SDK clients of its API.
type erasureEnv struct {
	st    store.Store
	clock *testsupport.Clock
	m     *maintainer
	kms   *kms.Client
	iam   *iam.Client
	logs  *syncBuffer
}

func newErasureEnv(t *testing.T, st store.Store, erase func(store.Store, *slog.Logger) *eraser) *erasureEnv {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	root, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	clock := testsupport.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Now: clock.Now, Logger: log, PrincipalID: dir.PrincipalID})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := identity.BootstrapRoot(context.Background(), st, root, DevAccount)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(svc, dir, log))
	t.Cleanup(srv.Close)
	cp := credentials.NewStaticCredentialsProvider(creds.ID, creds.Secret, "")
	hc := testsupport.SDKHTTPClient(srv.Client())
	return &erasureEnv{st: st, clock: clock, logs: logs,
		m:   &maintainer{svc: svc, dir: dir, erase: erase(st, log), log: log},
		kms: kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: cp, RetryMaxAttempts: 1, HTTPClient: hc}),
		iam: iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: cp, RetryMaxAttempts: 1, HTTPClient: hc}),
	}
}

var sealedField = regexp.MustCompile(`"sealed[A-Za-z]*":"([A-Za-z0-9+/=]{20,})"`)

// sealed returns the sealed values of the records under prefix, as the
// store holds them (the base64 of each sealed field).
func (e *erasureEnv) sealed(t *testing.T, prefix []byte) [][]byte {
	t.Helper()
	var out [][]byte
	err := e.st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(prefix, nil, func(_, v []byte) (bool, error) {
			for _, m := range sealedField.FindAllSubmatch(v, -1) {
				out = append(out, bytes.Clone(m[1]))
			}
			return true, nil
		})
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no sealed value under %s (%v)", prefix, err)
	}
	return out
}

// roundTrip encrypts under key and decrypts blob (made by an earlier
// roundTrip, or nil), and returns the new ciphertext.
func (e *erasureEnv) roundTrip(t *testing.T, key string, blob []byte) []byte {
	t.Helper()
	ctx := context.Background()
	if blob != nil {
		out, err := e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		if err != nil || string(out.Plaintext) != "kept" {
			t.Fatalf("Decrypt under %s: %v", key, err)
		}
	}
	out, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("kept")})
	if err != nil {
		t.Fatalf("Encrypt under %s: %v", key, err)
	}
	return out.CiphertextBlob
}

// erasable makes the secrets the test erases: a key scheduled for
// deletion, an EXTERNAL key with imported material, an IAM user's access
// key; and a key that stays. It returns the id of the one that stays and
// a function that erases the others.
func (e *erasureEnv) erasable(t *testing.T) (kept string, secrets [][]byte, erase func()) {
	t.Helper()
	ctx := context.Background()
	// Records made before the secrets and deleted after them, as in a
	// store in use: bbolt reuses the free pages of the lowest numbers
	// first, so that the pages the secrets leave stay as they are for a
	// while. (In a store whose free pages are those the last change left,
	// the next change writes over them.)
	others := func(put bool) {
		t.Helper()
		if err := e.st.Update(ctx, func(tx store.Tx) error {
			for i := range 3000 {
				k := fmt.Appendf(nil, "other/%05d", i)
				if !put {
					if err := tx.Delete(k); err != nil {
						return err
					}
				} else if err := tx.Put(k, bytes.Repeat([]byte{'o'}, 100)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	others(true)
	defer others(false)
	created := func(in *kms.CreateKeyInput) string {
		out, err := e.kms.CreateKey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KeyMetadata.KeyId)
	}
	kept, doomed := created(&kms.CreateKeyInput{}), created(&kms.CreateKeyInput{})
	imported := created(&kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	params, err := e.kms.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(imported),
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(params.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kms.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(imported), ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapped, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("leaving")}); err != nil {
		t.Fatal(err)
	}
	ak, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("leaving")})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{kept, doomed, imported} {
		e.roundTrip(t, k, nil)
	}
	secrets = append(e.sealed(t, keyrepo.VersionPrefix("us-east-1", doomed)), e.sealed(t, keyrepo.VersionPrefix("us-east-1", imported))...)
	secrets = append(secrets, e.sealed(t, []byte("iam/accesskey/"+aws.ToString(ak.AccessKey.AccessKeyId)))...)
	days := int32(7)
	if _, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(doomed), PendingWindowInDays: &days}); err != nil {
		t.Fatal(err)
	}
	return kept, secrets, func() {
		if _, err := e.kms.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(imported)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("leaving"), AccessKeyId: ak.AccessKey.AccessKeyId}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(8 * 24 * time.Hour)
	}
}

// TestMaintenanceErasesDeletedMaterialFromKmsDB: once a key is deleted
// at the end of its waiting period, imported material is deleted and an
// access key is deleted, their sealed values stay in kms.db's free pages
// (a round that does not compact leaves them there), until the next
// maintenance round compacts it; every other key works through it, and a
// round with nothing erased since does not compact again.
func TestMaintenanceErasesDeletedMaterialFromKmsDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	bolt, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var backups sync.Mutex
	e := newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser { return boltEraser(st, bolt, &backups, log) })
	ctx := context.Background()
	kept, secrets, erase := e.erasable(t)
	blob := e.roundTrip(t, kept, nil)
	inFile := func() (held []int) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range secrets {
			if bytes.Contains(raw, v) {
				held = append(held, i)
			}
		}
		return held
	}
	if held := inFile(); len(held) != len(secrets) {
		t.Fatalf("kms.db holds %v of the %d sealed values: the test reads the wrong file", held, len(secrets))
	}
	erase()

	withoutCompaction := *e.m
	withoutCompaction.erase = nil
	withoutCompaction.tick(ctx)
	if _, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(kept)}); err != nil {
		t.Fatal(err)
	}
	if held := inFile(); len(held) == 0 {
		t.Fatal("the erased values are gone from kms.db without a compaction: the test shows nothing")
	} else {
		t.Logf("without a compaction kms.db holds erased values %v of %d", held, len(secrets))
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	blob = e.roundTrip(t, kept, blob)

	e.m.tick(ctx)
	if held := inFile(); len(held) > 0 {
		t.Errorf("after the maintenance round, kms.db still holds erased sealed values %v of %d", held, len(secrets))
	}
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) != 0 {
		t.Errorf("the erasure's marks after the compaction: %q, %v", marks, err)
	}
	blob = e.roundTrip(t, kept, blob)
	compacted, err := os.Stat(path)
	if err != nil || os.SameFile(before, compacted) {
		t.Fatalf("kms.db was not replaced by the round (%v)", err)
	}
	// The log says how long the compaction took, and how long calls
	// waited for it.
	if !regexp.MustCompile(`msg="compacted the key store[^\n]* took=\S+ callsWaitedAtMost=\S+`).MatchString(e.logs.String()) {
		t.Errorf("the compaction's log line:\n%s", e.logs)
	}

	// Nothing erased since: the next round leaves the file as it is.
	e.m.tick(ctx)
	if now, err := os.Stat(path); err != nil || !os.SameFile(now, compacted) {
		t.Errorf("a round with nothing erased since the last compacted kms.db again (%v)", err)
	}
	e.roundTrip(t, kept, blob)
	if e.logs.String() != "" && bytes.Contains([]byte(e.logs.String()), []byte("level=WARN")) {
		t.Errorf("the rounds warned:\n%s", e.logs)
	}
}

var passwordHashField = regexp.MustCompile(`"(?:salt|hash|sealedHash)":"([A-Za-z0-9+/=]{20,})"`)

// TestMaintenanceErasesOldPasswordHashesFromKmsDB: a console password
// replaced by UpdateLoginProfile, deleted by DeleteLoginProfile, or
// replaced by its user at sign-in leaves its Argon2id hash (and salt) in
// kms.db's free pages, a target for offline guessing, until the next
// maintenance round compacts it; the passwords now set still sign in.
func TestMaintenanceErasesOldPasswordHashesFromKmsDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	bolt, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var backups sync.Mutex
	e := newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser { return boltEraser(st, bolt, &backups, log) })
	ctx := context.Background()

	const first, second = "Correct-Horse-9", "Battery-Staple-7"
	users := []string{"updated", "deleted", "reset"}
	for _, u := range users {
		if _, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(u), Password: aws.String(first),
			PasswordResetRequired: u == "reset"}); err != nil {
			t.Fatal(err)
		}
	}
	profiles := []byte("iam/loginprofile/")
	var hashes [][]byte
	if err := e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(profiles, nil, func(_, v []byte) (bool, error) {
			for _, m := range passwordHashField.FindAllSubmatch(v, -1) {
				hashes = append(hashes, bytes.Clone(m[1]))
			}
			return true, nil
		})
	}); err != nil || len(hashes) != 2*len(users) {
		t.Fatalf("found %d salts and hashes of %d login profiles (%v)", len(hashes), len(users), err)
	}
	// bbolt reuses the free pages of the lowest numbers first: the
	// profiles' page is moved past a padding, which is then deleted, so
	// that the pages the next changes free (holding the old hashes) stay
	// as they are for a while. The padding sorts first, so that its pages
	// take the low free pages in that commit.
	padding := func(tx store.Tx, put bool) error {
		for i := range 3000 {
			k := fmt.Appendf(nil, "a-padding/%05d", i)
			if !put {
				if err := tx.Delete(k); err != nil {
					return err
				}
			} else if err := tx.Put(k, bytes.Repeat([]byte{'o'}, 100)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := e.st.Update(ctx, func(tx store.Tx) error {
		if err := padding(tx, true); err != nil {
			return err
		}
		return tx.Scan(profiles, nil, func(k, v []byte) (bool, error) {
			return true, tx.Put(bytes.Clone(k), bytes.Clone(v))
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Update(ctx, func(tx store.Tx) error { return padding(tx, false) }); err != nil {
		t.Fatal(err)
	}

	if _, err := e.iam.UpdateLoginProfile(ctx, &iam.UpdateLoginProfileInput{UserName: aws.String("updated"), Password: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.iam.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("deleted")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.dir.ChangePasswordAtSignIn(ctx, DevAccount, "reset", first, second, nil, nil); err != nil {
		t.Fatal(err)
	}
	inFile := func() (held []int) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range hashes {
			if bytes.Contains(raw, v) {
				held = append(held, i)
			}
		}
		return held
	}
	withoutCompaction := *e.m
	withoutCompaction.erase = nil
	withoutCompaction.tick(ctx)
	if held := inFile(); len(held) != len(hashes) {
		t.Fatalf("without a compaction kms.db holds old salts and hashes %v of %d: the test shows less than it should", held, len(hashes))
	}

	e.m.tick(ctx)
	if held := inFile(); len(held) > 0 {
		t.Errorf("after the maintenance round, kms.db still holds old salts and hashes %v of %d:\n%s", held, len(hashes), e.logs)
	}
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) != 0 {
		t.Errorf("the erasures' marks after the compaction: %q, %v", marks, err)
	}
	for _, u := range []string{"updated", "reset"} {
		if _, err := e.m.dir.SignInWithPassword(ctx, DevAccount, u, second); err != nil {
			t.Errorf("%s signs in with its new password after the compaction: %v", u, err)
		}
	}
}

// TestFailedCompactionKeepsServing: a round whose compaction fails (here:
// a directory in the copy's place refuses it, as a full disk would) logs
// one warning naming what stays, serves on with the old file, loses
// nothing, and the next round tries again; after two failures in a row,
// the round after next.
func TestFailedCompactionKeepsServing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	bolt, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var backups sync.Mutex
	e := newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser { return boltEraser(st, bolt, &backups, log) })
	ctx := context.Background()
	kept, secrets, erase := e.erasable(t)
	blob := e.roundTrip(t, kept, nil)
	erase()

	// A directory where the copy goes: bbolt cannot open it as a file.
	if err := os.Mkdir(path+".compact", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path+".compact", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	warnings := func() int { return strings.Count(e.logs.String(), "level=WARN") }
	e.m.tick(ctx)
	if n := warnings(); n != 1 || !strings.Contains(e.logs.String(), "free pages still hold") {
		t.Fatalf("a failed compaction logged %d warnings:\n%s", n, e.logs)
	}
	e.m.tick(ctx)
	e.m.tick(ctx)
	if n := warnings(); n != 2 {
		t.Fatalf("the two rounds after a failed compaction logged %d warnings in all, want the next round's only:\n%s", n, e.logs)
	}
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) == 0 {
		t.Fatalf("the erasure's mark after a failed compaction: %q, %v", marks, err)
	}
	blob = e.roundTrip(t, kept, blob)
	if _, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(path + ".compact"); err != nil {
		t.Fatal(err)
	}
	e.m.tick(ctx)
	if n := warnings(); n != 2 {
		t.Fatalf("the round that could compact logged %d warnings in all:\n%s", n, e.logs)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range secrets {
		if bytes.Contains(raw, v) {
			t.Errorf("the round after the failed one left erased value %d in kms.db", i)
		}
	}
	e.roundTrip(t, kept, blob)
}

// endsWhenCopying is a context that ends at its first check (Err) once
// the file at copy exists: as a server's does at SIGTERM while a
// compaction copies its store.
type endsWhenCopying struct {
	context.Context
	cancel context.CancelFunc
	copy   string
	ended  bool // while the copy existed
}

func (c *endsWhenCopying) Err() error {
	if _, err := os.Stat(c.copy); err == nil && !c.ended {
		c.ended = true
		c.cancel()
	}
	return c.Context.Err()
}

// TestShutdownStopsACompaction: a round whose context ends while it
// copies kms.db (the server told to stop) gives the compaction up at
// once: the copy is removed, the store goes on with its old file and
// every record, nothing is logged as failed nor put off, and the marks
// stay for the round after, which compacts.
func TestShutdownStopsACompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	bolt, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var backups sync.Mutex
	e := newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser { return boltEraser(st, bolt, &backups, log) })
	kept, secrets, erase := e.erasable(t)
	blob := e.roundTrip(t, kept, nil)
	erase()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	shutdown := &endsWhenCopying{Context: stop, cancel: cancel, copy: path + ".compact"}
	e.m.erase.round(shutdown)
	if !shutdown.ended {
		t.Fatal("the compaction did not look at the round's context while it copied kms.db: a shutdown waits for the whole copy")
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy of a compaction given up is left (%v)", err)
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(before, now) {
		t.Fatalf("kms.db was replaced by a compaction given up (%v)", err)
	}
	if strings.Contains(e.logs.String(), "level=WARN") || e.m.erase.failed != 0 || e.m.erase.wait != 0 {
		t.Errorf("a compaction given up at shutdown counted as failed (%d, wait %d):\n%s", e.m.erase.failed, e.m.erase.wait, e.logs)
	}
	ctx := context.Background()
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) == 0 {
		t.Fatalf("the erasure's marks after a compaction given up: %q, %v", marks, err)
	}
	blob = e.roundTrip(t, kept, blob)

	e.m.tick(ctx)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range secrets {
		if bytes.Contains(raw, v) {
			t.Errorf("the round after the one given up left erased value %d in kms.db", i)
		}
	}
	e.roundTrip(t, kept, blob)
}

// TestErasureMarksStayFew: while compactions fail (or may not run), the
// marks of the erasures since are made one, so that a store does not
// keep a record for each; the compaction that succeeds takes them all.
func TestErasureMarksStayFew(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	fail := errors.New("no room for the copy")
	var backups sync.Mutex
	e := newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser {
		er := boltEraser(st, bolt, &backups, log)
		compact := er.compact
		er.compact = func(ctx context.Context) (time.Duration, error) {
			if fail != nil {
				return 0, fail
			}
			return compact(ctx)
		}
		return er
	})
	ctx := context.Background()
	count := func() int {
		t.Helper()
		marks, err := store.Erased(ctx, e.st)
		if err != nil {
			t.Fatal(err)
		}
		return len(marks)
	}
	for range 100 {
		if err := e.st.Update(ctx, store.NoteErased); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 100 {
		t.Fatalf("100 erasures left %d marks", n)
	}
	e.m.tick(ctx)
	if n := count(); n != 1 {
		t.Fatalf("after a round whose compaction failed, 100 erasures' marks are %d records", n)
	}
	for range 3 {
		if err := e.st.Update(ctx, store.NoteErased); err != nil {
			t.Fatal(err)
		}
	}
	fail = nil
	e.m.erase.wait = 0
	e.m.tick(ctx)
	if n := count(); n != 0 {
		t.Fatalf("after a round that compacted, %d marks are left:\n%s", n, e.logs)
	}
}

// TestCompactionBesideCalls: calls made through the API while rounds
// compact kms.db all succeed, and every change they made is in the store
// after (run under -race).
func TestCompactionBesideCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	bolt, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var backups sync.Mutex
	compactionBesideCalls(t, newErasureEnv(t, bolt, func(st store.Store, log *slog.Logger) *eraser { return boltEraser(st, bolt, &backups, log) }))
}

// compactionBesideCalls makes calls through e's API while its rounds
// compact the store, each after an erasure: every call succeeds, every
// round compacts, and every change acknowledged is in the store after.
func compactionBesideCalls(t *testing.T, e *erasureEnv) {
	ctx := context.Background()
	kept, _, _ := e.erasable(t)
	blob := e.roundTrip(t, kept, nil)

	const callers, rounds = 3, 4
	stop := make(chan struct{})
	errs := make(chan error, callers)
	made := make([][]string, callers) // the keys each caller created
	progress := make(chan struct{}, callers)
	failed := make(chan struct{}) // closed by the first caller that fails
	var failOnce sync.Once
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				out, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprintf("caller %d key %d", c, i))})
				if err != nil {
					errs <- fmt.Errorf("CreateKey: %w", err)
					failOnce.Do(func() { close(failed) })
					return
				}
				id := aws.ToString(out.KeyMetadata.KeyId)
				made[c] = append(made[c], id)
				enc, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
				if err == nil {
					_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
				}
				if err == nil {
					_, err = e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
				}
				if err != nil {
					errs <- fmt.Errorf("a call beside the compaction: %w", err)
					failOnce.Do(func() { close(failed) })
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	// On PostgreSQL, a call whose snapshot is older than the round's
	// mark, still open when the rewrite ends (it waited for the table's
	// lock), makes the rewrite keep the rows it may see: that round
	// rightly counts as failed, and the next compacts.
	keptRows := regexp.MustCompile(`hold snapshots that may still see erased rows`)
	// A round may also give way to the calls: the rewrite waits at most
	// a second for the table's lock, and bbolt's copy for the
	// transactions in progress, which a loaded machine's calls can hold
	// that long; the round after tries again.
	gaveWay := regexp.MustCompile(`another session held a lock on it|transactions in progress did not end within`)
	compactions, keptForACall, gaveWayToCalls := 0, 0, 0
	compacted := func() bool {
		t.Helper()
		marks, err := store.Erased(ctx, e.st)
		if err != nil {
			t.Fatal(err)
		}
		return len(marks) == 0
	}
	// At least rounds rounds, and more (up to 3 times as many) until
	// one compacted beside the calls.
	for r := 0; r < 3*rounds && (r < rounds || compactions == 0); r++ {
		select {
		case <-progress: // calls are being made
		case <-failed:
		}
		// Each round finds something erased.
		if err := e.st.Update(ctx, store.NoteErased); err != nil {
			t.Fatal(err)
		}
		e.m.erase.wait = 0 // tried at each round, whatever failed before
		before := len(keptRows.FindAllString(e.logs.String(), -1))
		beforeGaveWay := len(gaveWay.FindAllString(e.logs.String(), -1))
		e.m.tick(ctx)
		switch {
		case compacted():
			compactions++
		case len(keptRows.FindAllString(e.logs.String(), -1)) > before:
			keptForACall++
		case len(gaveWay.FindAllString(e.logs.String(), -1)) > beforeGaveWay:
			gaveWayToCalls++
		default:
			t.Fatalf("a round beside calls neither compacted the store nor said why not:\n%s", e.logs)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if compactions == 0 {
		t.Fatalf("no round compacted the store beside the calls (%d kept rows for a call, %d gave way to their locks):\n%s",
			keptForACall, gaveWayToCalls, e.logs)
	}
	e.m.erase.wait = 0
	e.m.tick(ctx)
	if !compacted() {
		t.Fatalf("the round after the calls did not compact the store:\n%s", e.logs)
	}
	for c, ids := range made {
		if len(ids) == 0 {
			t.Fatalf("caller %d made no call beside the compactions: the test shows nothing", c)
		}
		for _, id := range ids {
			err := e.st.View(ctx, func(tx store.Tx) error {
				_, err := tx.Get(keyrepo.KeyKey("us-east-1", id))
				return err
			})
			if errors.Is(err, store.ErrNotFound) || err != nil {
				t.Errorf("key %s, acknowledged beside a compaction: %v", id, err)
			}
		}
	}
}

// TestMaintenanceErasesDeletedMaterialFromPostgres: on PostgreSQL, the
// round after an erasure rewrites kms_records, so that the table's files
// no longer hold the erased rows (a round that does not compact leaves
// them there as dead tuples); every other key works through it.
func TestMaintenanceErasesDeletedMaterialFromPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	pg, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	e := newErasureEnv(t, pg, func(st store.Store, log *slog.Logger) *eraser { return pgEraser(st, pg, log) })
	ctx := context.Background()
	kept, secrets, erase := e.erasable(t)
	blob := e.roundTrip(t, kept, nil)
	inFiles := func() (held []int) {
		files := pgtest.DatabaseFiles(t, dsn)
		for i, v := range secrets {
			if files.Holding(v) != nil {
				held = append(held, i)
			}
		}
		return held
	}
	if held := inFiles(); len(held) != len(secrets) {
		t.Fatalf("the database's files hold %v of the %d sealed values: the test reads the wrong files", held, len(secrets))
	}
	erase()
	withoutCompaction := *e.m
	withoutCompaction.erase = nil
	withoutCompaction.tick(ctx)
	if held := inFiles(); len(held) == 0 {
		t.Fatal("the erased values are gone from the database's files without a compaction: the test shows nothing")
	}
	blob = e.roundTrip(t, kept, blob)

	e.m.tick(ctx)
	if held := inFiles(); len(held) > 0 {
		t.Errorf("after the maintenance round, the database's files still hold erased sealed values %v of %d:\n%s", held, len(secrets), e.logs)
	}
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) != 0 {
		t.Errorf("the erasure's marks after the compaction: %q, %v", marks, err)
	}
	e.roundTrip(t, kept, blob)
}

// TestCompactionBesideCallsPostgres: calls made while rounds rewrite
// kms_records all succeed, and every change they made is in it after.
func TestCompactionBesideCallsPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	pg, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	compactionBesideCalls(t, newErasureEnv(t, pg, func(st store.Store, log *slog.Logger) *eraser { return pgEraser(st, pg, log) }))
}

// TestCompactionByARoleThatDoesNotOwnTheTable: a node whose role may not
// rewrite kms_records warns once what the table's owner must run, and
// does not try again round after round; the erasure stays marked.
func TestCompactionByARoleThatDoesNotOwnTheTable(t *testing.T) {
	dsn := pgtest.Start(t)
	owner, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	owner.Close() // the schema, made by its owner
	pg, err := pgstore.Open(context.Background(), pgtest.TableUser(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	tried := 0
	e := newErasureEnv(t, pg, func(st store.Store, log *slog.Logger) *eraser {
		er := pgEraser(st, pg, log)
		compact := er.compact
		er.compact = func(ctx context.Context) (time.Duration, error) { tried++; return compact(ctx) }
		return er
	})
	ctx := context.Background()
	kept, _, erase := e.erasable(t)
	erase()
	for range 3 {
		e.m.tick(ctx)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "level=WARN"); n != 1 || !strings.Contains(logs, "VACUUM FULL kms_records") || tried != 1 {
		t.Fatalf("three rounds by a role that may not rewrite kms_records tried %d times and logged %d warnings:\n%s", tried, n, logs)
	}
	if marks, err := store.Erased(ctx, e.st); err != nil || len(marks) == 0 {
		t.Errorf("the erasure's mark after a refused rewrite: %q, %v", marks, err)
	}
	e.roundTrip(t, kept, nil)
}
