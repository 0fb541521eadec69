package migrate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/migrate"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

const account = "111122223333"

var root = service.Caller{AccountID: account, ARN: identity.RootARN(account), Root: true,
	Principal: policy.Principal{ARN: identity.RootARN(account), Account: account, UserID: account}}

var quiet = slog.New(slog.DiscardHandler)

// sealed is a ciphertext made before a migration and what it decrypts to.
type sealed struct {
	blob, plaintext []byte
	alg             string
}

// source is a dev data directory with a key store that a service wrote:
// symmetric keys (one rotated, one disabled), an alias, an RSA key, an
// HMAC key, the account root's access key, and ciphertexts.
type source struct {
	dir     string
	root    *keys.RootKey
	records int
	digest  [32]byte

	symmetric   []string // enabled symmetric key ids
	disabled    string
	alias       string // names symmetric[0]
	rsa, hmac   string
	rsaPublic   []byte
	accessKey   identity.AccessKey
	ciphertexts []sealed
}

func newSource(t *testing.T) *source {
	t.Helper()
	ctx := context.Background()
	s := &source{dir: filepath.Join(t.TempDir(), "old"), alias: "alias/orders"}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyText := keys.GenerateRootKey()
	writeFile(t, filepath.Join(s.dir, "root.key"), keyText)
	writeFile(t, filepath.Join(s.dir, "credentials"), []byte("[default]\naws_access_key_id = AKIAEXAMPLE\n"))
	var err error
	if s.root, err = keys.ParseRootKey(keyText); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(s.dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealRootCheck(t, st, s.root)
	if s.accessKey, err = identity.BootstrapRoot(ctx, st, s.root, account); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, st, s.root)
	create := func(in *kmsapi.CreateKeyInput) string {
		out, err := svc.CreateKey(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyMetadata.KeyID
	}
	encrypt := func(id string, alg string) {
		pt := make([]byte, 40)
		rand.Read(pt)
		out, err := svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: pt, EncryptionAlgorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		s.ciphertexts = append(s.ciphertexts, sealed{out.CiphertextBlob, pt, alg})
	}
	for range 3 {
		s.symmetric = append(s.symmetric, create(&kmsapi.CreateKeyInput{}))
	}
	encrypt(s.symmetric[0], "")
	if _, err := svc.RotateKeyOnDemand(ctx, root, &kmsapi.KeyIDInput{KeyID: s.symmetric[0]}); err != nil {
		t.Fatal(err)
	}
	for _, id := range s.symmetric {
		encrypt(id, "")
	}
	if _, err := svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: s.alias, TargetKeyID: s.symmetric[0]}); err != nil {
		t.Fatal(err)
	}
	s.disabled = create(&kmsapi.CreateKeyInput{})
	if _, err := svc.DisableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: s.disabled}); err != nil {
		t.Fatal(err)
	}
	s.rsa = create(&kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT"})
	encrypt(s.rsa, "RSAES_OAEP_SHA_256")
	pub, err := svc.GetPublicKey(ctx, root, &kmsapi.GetPublicKeyInput{KeyID: s.rsa})
	if err != nil {
		t.Fatal(err)
	}
	s.rsaPublic = pub.PublicKey
	s.hmac = create(&kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	if s.records, s.digest, err = migrate.Digest(ctx, st, 100); err != nil {
		t.Fatal(err)
	}
	return s
}

// sealRootCheck writes the record a server writes on its first start.
func sealRootCheck(t *testing.T, st store.Store, root *keys.RootKey) {
	t.Helper()
	name := []byte("meta/rootkey-check")
	err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(name, root.Seal(name, []byte("openkms root key check")))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newService(t *testing.T, st store.Store, root *keys.RootKey) *service.Service {
	t.Helper()
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// check makes sure st serves what the source did: every key, the alias,
// the old ciphertexts, the RSA public key and the root's access key.
func (s *source) check(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	svc := newService(t, st, s.root)
	for _, id := range append([]string{s.disabled, s.rsa, s.hmac}, s.symmetric...) {
		d, err := svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: id})
		if err != nil {
			t.Fatalf("DescribeKey %s: %v", id, err)
		}
		want := string(keyrepo.StateEnabled)
		if id == s.disabled {
			want = string(keyrepo.StateDisabled)
		}
		if d.KeyMetadata.KeyState != want {
			t.Errorf("key %s is %s, want %s", id, d.KeyMetadata.KeyState, want)
		}
	}
	d, err := svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: s.alias})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", s.alias, err)
	}
	if d.KeyMetadata.KeyID != s.symmetric[0] {
		t.Errorf("%s names %s, want %s", s.alias, d.KeyMetadata.KeyID, s.symmetric[0])
	}
	for i, c := range s.ciphertexts {
		in := &kmsapi.DecryptInput{CiphertextBlob: c.blob, EncryptionAlgorithm: c.alg}
		if c.alg != "" {
			in.KeyID = s.rsa
		}
		out, err := svc.Decrypt(ctx, root, in)
		if err != nil {
			t.Fatalf("ciphertext %d: Decrypt: %v", i, err)
		}
		if !bytes.Equal(out.Plaintext, c.plaintext) {
			t.Fatalf("ciphertext %d decrypts to something else", i)
		}
	}
	if _, err := svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: s.alias, Plaintext: []byte("x")}); err != nil {
		t.Errorf("Encrypt with %s: %v", s.alias, err)
	}
	pub, err := svc.GetPublicKey(ctx, root, &kmsapi.GetPublicKeyInput{KeyID: s.rsa})
	if err != nil || !bytes.Equal(pub.PublicKey, s.rsaPublic) {
		t.Errorf("GetPublicKey: the public key differs (%v)", err)
	}
	if ak, err := identity.BootstrapRoot(ctx, st, s.root, account); err != nil || ak != s.accessKey {
		t.Errorf("the account root's access key did not move: got %v (%v)", ak.ID, err)
	}
}

// checkReport checks the counts of a migration of s.
func (s *source) checkReport(t *testing.T, r *migrate.Report) {
	t.Helper()
	if r.Records != s.records || r.Digest != s.digest {
		t.Errorf("report: %d records, digest %x; want %d, %x", r.Records, r.Digest, s.records, s.digest)
	}
	want := migrate.Checked{Encrypt: len(s.symmetric), MAC: 1, PublicKey: 1}
	if r.Checked != want {
		t.Errorf("report: checked %+v, want %+v", r.Checked, want)
	}
}

func openBolt(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t *testing.T, dsn string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, o migrate.Options) (*migrate.Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	o.Out, o.Logger = &out, quiet
	r, err := migrate.Run(context.Background(), o)
	return r, out.String(), err
}

func TestDirectoryToPostgresAndBack(t *testing.T) {
	s := newSource(t)
	dsn := pgtest.Start(t)
	// A batch of 7 makes the copy cross batch boundaries.
	r, out, err := run(t, migrate.Options{From: s.dir, To: dsn, BatchSize: 7})
	if err != nil {
		t.Fatalf("migrate to PostgreSQL: %v\n%s", err, out)
	}
	s.checkReport(t, r)
	if r.RootKeyCopied != "" || r.CredentialsCopied != "" {
		t.Errorf("copied files into a database: %+v", r)
	}
	for _, want := range []string{"Copied " + strconv.Itoa(s.records) + " records.", "--root-key-file " + filepath.Join(s.dir, "root.key"), "Audit trail: " + s.dir + " holds none"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	pg := openPostgres(t, dsn)
	s.check(t, pg)
	pg.Close()

	back := filepath.Join(t.TempDir(), "new")
	r, out, err = run(t, migrate.Options{From: dsn, To: back, RootKeyFile: filepath.Join(s.dir, "root.key")})
	if err != nil {
		t.Fatalf("migrate back into a directory: %v\n%s", err, out)
	}
	s.checkReport(t, r)
	if fi, err := os.Stat(back); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new data directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(back, "root.key")); err == nil {
		t.Error("a --root-key-file key was written into the data directory")
	}
	s.check(t, openBolt(t, back))
}

func TestDirectoryToDirectoryCopiesDevFiles(t *testing.T) {
	s := newSource(t)
	dst := filepath.Join(t.TempDir(), "a", "new")
	r, out, err := run(t, migrate.Options{From: s.dir, To: dst})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.checkReport(t, r)
	for _, name := range []string{"root.key", "credentials"} {
		want, _ := os.ReadFile(filepath.Join(s.dir, name))
		path := filepath.Join(dst, name)
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: not copied (%v)", path, err)
			continue
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
	}
	if r.RootKeyCopied != filepath.Join(dst, "root.key") || r.CredentialsCopied != filepath.Join(dst, "credentials") {
		t.Errorf("report: %+v", r)
	}
	if !strings.Contains(out, "Root key: copied to "+filepath.Join(dst, "root.key")) {
		t.Errorf("summary does not say where the root key is:\n%s", out)
	}
	// No server ran on the source: the summary does not send the reader
	// to a trail there (kms audit verify would find none).
	if want := "Audit trail: " + s.dir + " holds none"; !strings.Contains(out, want) || strings.Contains(out, "kms audit verify --data-dir "+s.dir) {
		t.Errorf("summary of a source without a trail, want %q:\n%s", want, out)
	}
	s.check(t, openBolt(t, dst))
}

// The root key of the destination's data directory serves when the source
// has none: prepare a new directory with root.key, then migrate into it.
func TestDestinationRootKey(t *testing.T) {
	s := newSource(t)
	src := filepath.Join(t.TempDir(), "src")
	if _, out, err := run(t, migrate.Options{From: s.dir, To: src}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	os.Remove(filepath.Join(src, "root.key"))
	dst := filepath.Join(t.TempDir(), "dst")
	os.Mkdir(dst, 0o700)
	keyText, _ := os.ReadFile(filepath.Join(s.dir, "root.key"))
	writeFile(t, filepath.Join(dst, "root.key"), keyText)
	r, out, err := run(t, migrate.Options{From: src, To: dst})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.checkReport(t, r)
	if !strings.Contains(out, "Root key: "+filepath.Join(dst, "root.key")+" holds it.") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestRefusals(t *testing.T) {
	s := newSource(t)
	other := make([]byte, 32)
	rand.Read(other)
	otherKey := hex.EncodeToString(other)

	nonEmptyDir := filepath.Join(t.TempDir(), "full")
	os.Mkdir(nonEmptyDir, 0o700)
	st, err := boltstore.Open(filepath.Join(nonEmptyDir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte("x"), []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// A destination left holding part of a copy (a migration killed).
	halfDir := filepath.Join(t.TempDir(), "half")
	os.Mkdir(halfDir, 0o700)
	if st, err = boltstore.Open(filepath.Join(halfDir, "kms.db")); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("x"), []byte("y")); err != nil {
			return err
		}
		return tx.Put(store.UnfinishedCopyRecord, []byte("kms migrate from elsewhere has not finished"))
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	otherRootDir := filepath.Join(t.TempDir(), "other-root")
	os.Mkdir(otherRootDir, 0o700)
	writeFile(t, filepath.Join(otherRootDir, "root.key"), []byte(otherKey))

	// A directory with another's audit trail and no key store: the trail
	// does not move, and servers would go on with that one.
	trailDir := filepath.Join(t.TempDir(), "trail")
	os.Mkdir(trailDir, 0o700)
	writeFile(t, filepath.Join(trailDir, "audit-digests.log"), []byte("{}\n"))

	newDir, noSource := filepath.Join(t.TempDir(), "new"), filepath.Join(t.TempDir(), "none")
	tests := []struct {
		name    string
		o       migrate.Options
		want    error  // errors.Is, or nil to match text
		text    string // in the error
		absent  string // a path that must not exist afterwards
		unmoved string // a data directory whose store must be as it was
	}{
		{name: "wrong root key", o: migrate.Options{From: s.dir, To: newDir, RootKeyText: otherKey},
			want: migrate.ErrWrongRootKey, absent: newDir},
		{name: "not empty", o: migrate.Options{From: s.dir, To: nonEmptyDir},
			want: migrate.ErrNotEmpty, unmoved: nonEmptyDir},
		{name: "part of a copy in the destination", o: migrate.Options{From: s.dir, To: halfDir},
			want: migrate.ErrNotEmpty, text: "did not finish", unmoved: halfDir},
		{name: "another audit trail in the destination", o: migrate.Options{From: s.dir, To: trailDir},
			want: migrate.ErrNotEmpty, text: "already holds an audit trail (" + filepath.Join(trailDir, "audit-digests.log") + ")", absent: filepath.Join(trailDir, "kms.db")},
		{name: "another root.key in the destination", o: migrate.Options{From: s.dir, To: otherRootDir},
			text: "holds another root key", absent: filepath.Join(otherRootDir, "kms.db")},
		{name: "same store", o: migrate.Options{From: s.dir, To: s.dir + "/."}, text: "same store"},
		{name: "no source", o: migrate.Options{From: noSource, To: newDir, RootKeyText: otherKey},
			text: "holds no key store", absent: noSource},
		{name: "no root key", o: migrate.Options{From: nonEmptyDir, To: newDir}, text: "no root key", absent: newDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before [32]byte
			if tc.unmoved != "" {
				before = digestDir(t, tc.unmoved)
			}
			_, out, err := run(t, tc.o)
			switch {
			case err == nil:
				t.Fatalf("migrate succeeded:\n%s", out)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			case !strings.Contains(err.Error(), tc.text):
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
			if _, err := os.Stat(tc.absent); tc.absent != "" && err == nil {
				t.Errorf("%s was created", tc.absent)
			}
			if tc.unmoved != "" && digestDir(t, tc.unmoved) != before {
				t.Errorf("%s changed", tc.unmoved)
			}
		})
	}
	if d := digestDir(t, s.dir); d != s.digest {
		t.Error("the source changed")
	}
}

func digestDir(t *testing.T, dir string) [32]byte {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, sum, err := migrate.Digest(context.Background(), st, 100)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestRefusalsPostgres(t *testing.T) {
	s := newSource(t)
	other := make([]byte, 32)
	rand.Read(other)

	// A wrong root key does not even create the schema.
	dsn := pgtest.Start(t)
	_, _, err := run(t, migrate.Options{From: s.dir, To: dsn, RootKeyText: hex.EncodeToString(other)})
	if !errors.Is(err, migrate.ErrWrongRootKey) {
		t.Fatalf("wrong root key: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var table *string
	err = conn.QueryRow(ctx, `SELECT to_regclass('kms_records')::text`).Scan(&table)
	conn.Close(ctx)
	if err != nil || table != nil {
		t.Fatalf("after a refusal the database has kms_records (%v)", err)
	}

	// A database that holds another's audit trail and no key store.
	trailDSN := pgtest.Start(t)
	pgst := openPostgres(t, trailDSN)
	if _, err := pgst.(interface{ Pool() *pgxpool.Pool }).Pool().Exec(ctx,
		`INSERT INTO kms_audit_chains (chain, host) VALUES ('other-0123456789abcdef', 'other')`); err != nil {
		t.Fatal(err)
	}
	pgst.Close()
	_, _, err = run(t, migrate.Options{From: s.dir, To: trailDSN})
	if !errors.Is(err, migrate.ErrNotEmpty) || !strings.Contains(err.Error(), "already holds an audit trail (1 chains)") {
		t.Fatalf("migration into a database holding an audit trail: %v", err)
	}

	// A database that holds a key store is not overwritten.
	if _, out, err := run(t, migrate.Options{From: s.dir, To: dsn}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, _, err = run(t, migrate.Options{From: s.dir, To: dsn})
	if !errors.Is(err, migrate.ErrNotEmpty) {
		t.Fatalf("second migration into the same database: %v", err)
	}

	// From a database a node serves: refused, and nothing is created.
	node := openPostgres(t, dsn).(*pgstore.Store)
	lease, ok, err := node.TryShare(ctx, pgstore.ServingLease)
	if err != nil || !ok {
		t.Fatalf("TryShare = %v, %v", ok, err)
	}
	into := filepath.Join(t.TempDir(), "copy")
	rootText := string(readFileBytes(t, filepath.Join(s.dir, "root.key")))
	_, _, err = run(t, migrate.Options{From: dsn, To: into, RootKeyText: rootText})
	if !errors.Is(err, pgstore.ErrServing) {
		t.Fatalf("migration from a database a node serves: %v", err)
	}
	if _, err := os.Stat(into); err == nil {
		t.Errorf("the refused migration created %s", into)
	}
	lease.Close()
	if _, out, err := run(t, migrate.Options{From: dsn, To: into, RootKeyText: rootText}); err != nil {
		t.Fatalf("migration once the node stopped: %v\n%s", err, out)
	}
}

// CheckKeys finds a key whose material does not open on the destination.
func TestCheckKeysFindsBrokenMaterial(t *testing.T) {
	s := newSource(t)
	ctx := context.Background()
	src := openBolt(t, s.dir)
	dst, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := migrate.Copy(ctx, src, dst, 5, nil); err != nil {
		t.Fatal(err)
	}
	if c, err := migrate.CheckKeys(ctx, src, dst, s.root, 20, quiet); err != nil || c.Encrypt != len(s.symmetric) {
		t.Fatalf("CheckKeys on a good copy: %+v, %v", c, err)
	}
	// Key 2's material under key 1's name: sealed for another record, it
	// does not open.
	err = dst.Update(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("keyver/us-east-1/" + s.symmetric[2] + "/00000001"))
		if err != nil {
			return err
		}
		return tx.Put([]byte("keyver/us-east-1/"+s.symmetric[1]+"/00000001"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.CheckKeys(ctx, src, dst, s.root, 20, quiet); !errors.Is(err, migrate.ErrMismatch) || !strings.Contains(err.Error(), s.symmetric[1]) {
		t.Fatalf("CheckKeys on a broken copy: %v", err)
	}
}

func TestDigest(t *testing.T) {
	ctx := context.Background()
	digest := func(records ...string) (int, [32]byte) {
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		err = st.Update(ctx, func(tx store.Tx) error {
			for i := 0; i < len(records); i += 2 {
				if err := tx.Put([]byte(records[i]), []byte(records[i+1])); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n, sum, err := migrate.Digest(ctx, st, 1)
		if err != nil {
			t.Fatal(err)
		}
		return n, sum
	}
	n, a := digest("a", "1", "b", "2", "c", "")
	if n != 3 {
		t.Errorf("counted %d records, want 3", n)
	}
	if _, b := digest("c", "", "b", "2", "a", "1"); a != b {
		t.Error("the same records written in another order hash differently")
	}
	if _, b := digest("a", "1", "b", "2", "c", "x"); a == b {
		t.Error("a changed value hashes alike")
	}
	_, keyLonger := digest("ab", "c")
	_, valueLonger := digest("a", "bc")
	if keyLonger == valueLonger {
		t.Error("moving a byte from key to value hashes alike")
	}
}

// A location names a database without its password, wherever the URL
// holds it.
func TestLocationHidesPasswords(t *testing.T) {
	for _, dsn := range []string{
		"postgres://kms:s3cret@db:5432/kms",
		"postgres://kms@db/kms?password=s3cret&sslmode=disable",
		"postgres://kms@db/kms?sslmode=verify-full&SSLPASSWORD=s3cret",
	} {
		loc, err := migrate.ParseLocation(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if s := loc.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "db") {
			t.Errorf("%q names itself %q", dsn, s)
		}
	}
}

func readFileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A copy cut short leaves the destination marked unfinished until it is
// whole and verified: it cannot be migrated from (nor, as the server's
// own test shows, served), and a whole copy leaves no mark.
func TestCopyCutShortIsMarkedUnfinished(t *testing.T) {
	s := newSource(t)
	ctx := context.Background()
	dsn := pgtest.Start(t)
	pg := openPostgres(t, dsn)
	// The database refuses the records after the first few: a copy that
	// fails partway, as on a full disk or a lost connection.
	if _, err := pg.(interface{ Pool() *pgxpool.Pool }).Pool().Exec(ctx, `
		CREATE FUNCTION refuse_keys() RETURNS trigger AS $$
		BEGIN
			IF NEW.k >= 'key/'::bytea AND NEW.k < 'meta/'::bytea THEN RAISE EXCEPTION 'disk full'; END IF;
			RETURN NEW;
		END $$ LANGUAGE plpgsql;
		CREATE TRIGGER refuse_keys BEFORE INSERT ON kms_records FOR EACH ROW EXECUTE FUNCTION refuse_keys();`); err != nil {
		t.Fatal(err)
	}
	_, out, err := run(t, migrate.Options{From: s.dir, To: dsn, BatchSize: 3})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("a copy the destination refused partway: %v\n%s", err, out)
	}
	if err := pg.View(ctx, store.CheckCopyFinished); !errors.Is(err, store.ErrUnfinishedCopy) {
		t.Fatalf("the destination of a copy cut short: %v, want it marked unfinished", err)
	}
	_, _, err = run(t, migrate.Options{From: dsn, To: filepath.Join(t.TempDir(), "again"), RootKeyFile: filepath.Join(s.dir, "root.key")})
	if !errors.Is(err, store.ErrUnfinishedCopy) {
		t.Fatalf("a migration from a copy cut short: %v", err)
	}

	whole := filepath.Join(t.TempDir(), "whole")
	if _, out, err := run(t, migrate.Options{From: s.dir, To: whole}); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if err := openBolt(t, whole).View(ctx, store.CheckCopyFinished); err != nil {
		t.Fatalf("a whole copy: %v, want no mark", err)
	}
}

// A source left with an audit outbox entry (its server killed between a
// call's change and the entry's deletion): the entry names a place in
// the source's trail, which does not move, so the copy leaves it out, and
// a server on the destination has no record to write again.
func TestOutboxEntriesStayWithTheSourceTrail(t *testing.T) {
	s := newSource(t)
	ctx := context.Background()
	src := openBolt(t, s.dir)
	ev := &audit.Event{Time: time.Now(), Source: "kms.amazonaws.com", Operation: "CreateAlias", Region: "us-east-1",
		Identity: audit.UserIdentity{Type: "Root", AccountID: account}, RequestID: "r-1", EventID: "e-1"}
	rec, err := ev.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	entry := []byte(`{"chain":"","after":0,"committed":"2026-12-07T06:00:00Z","record":` + string(rec) + `}`)
	if err := src.Update(ctx, func(tx store.Tx) error { return tx.Put(outbox.Key(ev.EventID), entry) }); err != nil {
		t.Fatal(err)
	}
	src.Close()

	dst := filepath.Join(t.TempDir(), "new")
	r, out, err := run(t, migrate.Options{From: s.dir, To: dst})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Outbox != 1 || !strings.Contains(out, "Audit outbox: 1 changes made on "+s.dir) {
		t.Errorf("report: %d outbox entries, want 1; summary:\n%s", r.Outbox, out)
	}
	st := openBolt(t, dst)
	trail, err := audit.OpenDir(dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	box := outbox.New(trail, audit.NewFileTrail(dst), time.Now, quiet)
	box.Wrap(st)
	if n, err := box.Recover(ctx, false); err != nil || n != 0 {
		t.Errorf("a server on the destination wrote %d records of the source's calls (%v), want 0", n, err)
	}
	if got := readFileBytes(t, filepath.Join(dst, audit.FirstSegment)); bytes.Contains(got, []byte(`"eventID":"e-1"`)) {
		t.Error("the destination's trail holds a record of a call made on the source")
	}
	src = openBolt(t, s.dir)
	if err := src.View(ctx, func(tx store.Tx) error { _, err := tx.Get(outbox.Key(ev.EventID)); return err }); err != nil {
		t.Errorf("the source's entry: %v", err)
	}
}
