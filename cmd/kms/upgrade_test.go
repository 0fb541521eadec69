package main_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// The data directories under testdata/upgrade were written by the kms
// binaries of earlier commits (testdata/upgrade/README.md): the first one
// whose server, aws kms calls and kms encrypt worked end to end, and the
// one before the newest change of the stored records. The built binary
// starts on a copy of each as an operator's upgrade would, and everything
// the old server made still works: its ciphertexts, data keys, signatures,
// MACs and encrypted file, its key states, aliases, tags, rotation,
// policies, grants and IAM user, its audit trail continued by the new
// server; and its keys take new work.
func TestUpgradeFromEarlierVersions(t *testing.T) {
	for _, v := range []struct {
		rev     string
		wantLog []string // what the first start says it did to the store
	}{
		{"30e6731", []string{
			`msg="the key store's records are now authenticated under the root key"`,
			`msg="key records moved into their region" region=us-east-1`,
			`msg="key material bound to its keys' spec, usage and origin"`,
			`msg="stored key policies and grants bound to the unique ids of the users and roles they name" keyPolicies=1 grants=1`,
		}},
		{"cf92dc0", nil},
	} {
		t.Run(v.rev, func(t *testing.T) { checkUpgrade(t, filepath.Join("testdata", "upgrade", v.rev), v.wantLog) })
	}
}

func checkUpgrade(t *testing.T, fixture string, wantLog []string) {
	ids := readEnvFile(t, filepath.Join(fixture, "ids.env"))
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pt := read("pt.txt")
	dir := filepath.Join(t.TempDir(), "data")
	copyDataDir(t, filepath.Join(fixture, "data"), dir)

	s := startDev(t, dir)
	c, ctx := s.client(t), testCtx(t)
	if len(wantLog) > 0 {
		waitForLog(t, s, "the upgrade of the store", wantLog...)
	}

	decrypt := func(name string, ec map[string]string, want string) {
		t.Helper()
		in := &kms.DecryptInput{CiphertextBlob: read(filepath.Join("ct", name)), EncryptionContext: ec}
		if name == "rsa.bin" {
			in.KeyId, in.EncryptionAlgorithm = aws.String(ids["K_RSA"]), types.EncryptionAlgorithmSpecRsaesOaepSha256
		}
		out, err := c.Decrypt(ctx, in)
		if want != "" {
			if code := apiErrorCode(err); code != want {
				t.Errorf("Decrypt %s: %v, want %s", name, err, want)
			}
			return
		}
		if err != nil {
			t.Errorf("Decrypt %s: %v", name, err)
		} else if !bytes.Equal(out.Plaintext, pt) {
			t.Errorf("Decrypt %s = %q, want %q", name, out.Plaintext, pt)
		}
	}
	decrypt("sym.bin", map[string]string{"app": "orders"}, "")
	decrypt("sym.bin", nil, "InvalidCiphertextException")
	decrypt("rot-v1.bin", nil, "")
	decrypt("rot-v2.bin", nil, "")
	decrypt("pol.bin", nil, "")
	decrypt("imp.bin", nil, "")
	decrypt("rsa.bin", nil, "")
	decrypt("dis.bin", nil, "DisabledException")
	// K_DEL was scheduled for deletion 7 days after the fixture was made:
	// until then it is pending deletion, and once its date has passed
	// the server's first round of background work, at its start, deletes
	// it. Within a minute of the date either may be seen.
	delDate := fixtureDate(t, ids["K_DEL_DATE"])
	pending, deleted := time.Now().Before(delDate.Add(-time.Minute)), time.Now().After(delDate.Add(time.Minute))
	switch {
	case pending:
		decrypt("del.bin", nil, "KMSInvalidStateException")
	case deleted:
		waitDeleted(t, c, ids["K_DEL"])
		decrypt("del.bin", nil, "AccessDeniedException")
	}
	if _, ok := ids["K_MRK"]; ok {
		decrypt("mrk.bin", nil, "")
	}
	dk, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: read("ct/dk.bin"), EncryptionContext: map[string]string{"purpose": "dk"}})
	if err != nil || !bytes.Equal(dk.Plaintext, read("dk.plain")) {
		t.Errorf("Decrypt of the data key: %v, or not the data key GenerateDataKey gave", err)
	}
	v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(ids["K_SIGN"]), Message: pt, MessageType: types.MessageTypeRaw,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: read("ct/sig.bin")})
	if err != nil || !v.SignatureValid {
		t.Errorf("Verify of the old signature: %v", err)
	}
	m, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(ids["K_HMAC"]), Message: pt,
		MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Mac: read("ct/mac.bin")})
	if err != nil || !m.MacValid {
		t.Errorf("VerifyMac of the old MAC: %v", err)
	}

	// What the keys were, they are.
	states := map[string]types.KeyState{"K_DIS": types.KeyStateDisabled, "K_IMP": types.KeyStateEnabled}
	if pending {
		states["K_DEL"] = types.KeyStatePendingDeletion
	}
	for key, want := range states {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ids[key])})
		if err != nil || d.KeyMetadata.KeyState != want {
			t.Errorf("DescribeKey %s: %v; want %s", key, err, want)
		}
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	if err != nil || aws.ToString(d.KeyMetadata.KeyId) != ids["K_SYM"] {
		t.Errorf("alias/app: %v; want %s", err, ids["K_SYM"])
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(ids["K_SYM"])})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagValue) != "blue" {
		t.Errorf("tags: %+v, %v", tags, err)
	}
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(ids["K_ROT"])})
	if err != nil || !rot.KeyRotationEnabled {
		t.Errorf("rotation of K_ROT: %+v, %v", rot, err)
	}

	// alice may do what she could, and is refused what she was refused:
	// her identity policy, the key policy's Deny and the grant's
	// constraint all still apply.
	alice := readCredentials(t, filepath.Join(fixture, "alice.creds"))["default"]
	ac := kms.New(kms.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(alice["aws_access_key_id"], alice["aws_secret_access_key"], ""),
		HTTPClient:  testsupport.SDKHTTPClient(nil)})
	as := func(name string, err error) {
		t.Helper()
		got := "ok"
		if err != nil {
			got = "denied"
			if code := apiErrorCode(err); code != "AccessDeniedException" && code != "DisabledException" {
				t.Errorf("alice %s: %v", name, err)
			}
		}
		if want := ids["ALICE_"+name]; got != want {
			t.Errorf("alice %s: %s (%v), before the upgrade %s", name, got, err, want)
		}
	}
	enc := func(key string, ec map[string]string) error {
		_, err := ac.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(ids[key]), Plaintext: pt, EncryptionContext: ec})
		return err
	}
	as("SYM_ENCRYPT", enc("K_SYM", nil))
	as("DIS_ENCRYPT", enc("K_DIS", nil))
	as("GRANT_ENCRYPT", enc("K_ROT", map[string]string{"app": "grant"}))
	as("GRANT_NOCTX_ENCRYPT", enc("K_ROT", nil))
	as("POL_ENCRYPT", enc("K_POL", nil))
	_, err = ac.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: read("ct/pol.bin")})
	as("POL_DECRYPT", err)

	// The file kms encrypt wrote decrypts.
	out := filepath.Join(t.TempDir(), "file.out")
	id, secret := devCredentials(t, dir)
	env := baseEnv("AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION="+s.Region, "AWS_ENDPOINT_URL="+s.URL)
	if code, _, stderr := runToExit(t, env, "decrypt", "-o", out, filepath.Join(fixture, "file.enc")); code != 0 {
		t.Fatalf("kms decrypt of the old file: exit %d\n%s", code, stderr)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, read("file.txt")) {
		t.Errorf("kms decrypt of the old file: %v, or not the file encrypted", err)
	}

	// The old keys take new work, and it survives a kill.
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(ids["K_SYM"])})
	noErr(t, err, "RotateKeyOnDemand of the old key")
	e, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: pt})
	noErr(t, err, "Encrypt under the old key rotated")
	s.kill()
	s = startDev(t, dir)
	c = s.client(t)
	for _, blob := range [][]byte{e.CiphertextBlob, read("ct/rot-v1.bin")} {
		if out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}); err != nil || !bytes.Equal(out.Plaintext, pt) {
			t.Errorf("Decrypt after a kill: %v", err)
		}
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	// The old trail and the records the new server added to it are one
	// chain.
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.HasPrefix(stdout, "OK: ") {
		t.Fatalf("kms audit verify: exit %d\n%s%s", code, stdout, stderr)
	}
}

// copyDataDir copies the files of a fixture's data directory into dir,
// owned by this user and private, as the server requires of them.
func copyDataDir(t *testing.T, from, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readEnvFile reads NAME=value lines.
// fixtureDate reads a date the aws CLI printed into a fixture's ids.env:
// seconds since 1970, with a fraction.
func fixtureDate(t *testing.T, v string) time.Time {
	t.Helper()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("a date in ids.env: %q: %v", v, err)
	}
	return time.UnixMilli(int64(f * 1000))
}

// waitDeleted waits, for at most startTimeout, until DescribeKey says
// that the key id does not exist: the server's background work deletes
// a key past its deletion date at its start.
func waitDeleted(t *testing.T, c *kms.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := c.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if apiErrorCode(err) == "NotFoundException" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s past its deletion date: DescribeKey %v, want NotFoundException", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// kms migrate of a store written before keys had regions copies it whole
// but cannot use its keys, which only a server moves into a region: it
// says that it checked none of them, rather than that it checked none of
// a kind, and the copy serves them once a server has started on it.
func TestMigrateOfAStoreFromBeforeRegions(t *testing.T) {
	fixture := filepath.Join("testdata", "upgrade", "30e6731")
	from := filepath.Join(t.TempDir(), "data")
	copyDataDir(t, filepath.Join(fixture, "data"), from)
	to := filepath.Join(t.TempDir(), "copy")
	code, stdout, stderr := runToExit(t, baseEnv(), "migrate", "--from", from, "--to", to)
	if code != 0 {
		t.Fatalf("kms migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	want := "9 keys were not checked: the key store was written before keys had regions"
	if !strings.Contains(stdout, want) {
		t.Errorf("kms migrate does not say %q:\n%s", want, stdout)
	}

	s := startDev(t, to)
	ct, err := os.ReadFile(filepath.Join(fixture, "ct", "sym.bin"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.client(t).Decrypt(testCtx(t), &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"app": "orders"}})
	noErr(t, err, "Decrypt on the copy")
	if pt, _ := os.ReadFile(filepath.Join(fixture, "pt.txt")); !bytes.Equal(out.Plaintext, pt) {
		t.Errorf("Decrypt on the copy = %q, want %q", out.Plaintext, pt)
	}
}

// kms migrate and kms restore of a store from before its records were
// authenticated into PostgreSQL say that the first server there needs
// --authenticate-store, --dev or not: a --dev server on PostgreSQL refuses
// the copy without it, as it must.
func TestStoreFromBeforeCopiedIntoPostgres(t *testing.T) {
	fixture := filepath.Join("testdata", "upgrade", "30e6731")
	dir := filepath.Join(t.TempDir(), "data")
	copyDataDir(t, filepath.Join(fixture, "data"), dir)
	const advice = "once with --authenticate-store, --dev or not (docs/storage.md)."
	says := func(what, stdout string) {
		t.Helper()
		if !strings.Contains(stdout, advice) || strings.Contains(stdout, "does by itself") {
			t.Errorf("%s does not say that the first server needs --authenticate-store, --dev or not:\n%s", what, stdout)
		}
	}

	migrated := pgtest.Start(t)
	code, stdout, stderr := runToExit(t, baseEnv(), "migrate", "--from", dir, "--to", migrated)
	if code != 0 {
		t.Fatalf("kms migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	says("kms migrate", stdout)
	file := filepath.Join(t.TempDir(), "kms.kmsbak")
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", file, "--data-dir", dir); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runToExit(t, baseEnv(), "restore", "-i", file, "--storage", pgtest.Start(t), "--root-key-file", filepath.Join(dir, "root.key"))
	if code != 0 {
		t.Fatalf("kms restore: exit %d\n%s%s", code, stdout, stderr)
	}
	says("kms restore", stdout)

	code, _, stderr = runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", migrated)
	if code == 0 || !strings.Contains(stderr, "Start once with --authenticate-store") {
		t.Fatalf("a --dev server on the copy in PostgreSQL without --authenticate-store: exit %d\n%s", code, stderr)
	}
	s := startServer(t, dir, baseEnv(), "--dev", "--storage", migrated, "--authenticate-store")
	ct, err := os.ReadFile(filepath.Join(fixture, "ct", "sym.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.client(t).Decrypt(testCtx(t), &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"app": "orders"}})
	noErr(t, err, "Decrypt on the copy in PostgreSQL")
}
