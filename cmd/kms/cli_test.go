package main_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// awsCLI runs the real aws command line (v1 or v2) against one server, with
// nothing from the user's own AWS configuration.
type awsCLI struct {
	t    *testing.T
	bin  string
	url  string
	dir  string // working directory, where fileb:// paths are relative to
	env  []string
	runs int
}

// requireAWS returns the path of the aws command. Without one the test
// fails in CI (CI set) and is skipped elsewhere.
func requireAWS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the aws command line is needed for this test and is not on PATH: %v", err)
		}
		t.Skipf("no aws command line on PATH: %v", err)
	}
	return bin
}

func newAWSCLI(t *testing.T, bin string, s *server) *awsCLI {
	t.Helper()
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(
		"HOME="+home,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"),
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return &awsCLI{t: t, bin: bin, url: s.URL, dir: t.TempDir(), env: env}
}

// run runs `aws kms ARGS --endpoint-url URL` and returns its output and
// exit code.
func (a *awsCLI) run(args ...string) (stdout, stderr []byte, code int) {
	a.t.Helper()
	a.runs++
	cmd := exec.Command(a.bin, append(append([]string{"kms"}, args...), "--endpoint-url", a.url)...)
	cmd.Env, cmd.Dir = a.env, a.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("aws kms %s: %v", strings.Join(args, " "), err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		a.t.Fatalf("aws kms %s did not finish within a minute", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		a.t.Fatalf("aws kms %s: %v", strings.Join(args, " "), err)
	}
	return out.Bytes(), errb.Bytes(), cmd.ProcessState.ExitCode()
}

// ok runs an aws kms command that must succeed and returns its stdout.
func (a *awsCLI) ok(args ...string) []byte {
	a.t.Helper()
	out, errb, code := a.run(args...)
	if code != 0 {
		a.t.Fatalf("aws kms %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, errb)
	}
	return out
}

// json runs an aws kms command that must succeed and decodes its JSON output.
func (a *awsCLI) json(v any, args ...string) {
	a.t.Helper()
	out := a.ok(append(args, "--output", "json")...)
	if err := json.Unmarshal(out, v); err != nil {
		a.t.Fatalf("aws kms %s: output is not the JSON expected: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// blob runs an aws kms command with --output text --query QUERY and
// base64-decodes what it prints.
func (a *awsCLI) blob(query string, args ...string) []byte {
	a.t.Helper()
	out := a.ok(append(args, "--output", "text", "--query", query)...)
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		a.t.Fatalf("aws kms %s: %s is not base64: %v\n%s", strings.Join(args, " "), query, err, out)
	}
	return b
}

// fails runs an aws kms command that must fail with a service error whose
// stderr holds each of want.
func (a *awsCLI) fails(want []string, args ...string) {
	a.t.Helper()
	out, errb, code := a.run(args...)
	// aws CLI v1 exits 255 on a service error, v2 254.
	if code != 254 && code != 255 {
		a.t.Errorf("aws kms %s: exit %d, want 254 or 255 (a service error)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errb)
	}
	for _, w := range want {
		if !strings.Contains(string(errb), w) {
			a.t.Errorf("aws kms %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, errb)
		}
	}
}

// file writes b into the working directory and returns its fileb:// URL.
func (a *awsCLI) file(name string, b []byte) string {
	a.t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, name), b, 0o600); err != nil {
		a.t.Fatal(err)
	}
	return "fileb://" + name
}

type cliKeyMetadata struct {
	KeyId                 string
	Arn                   string
	AWSAccountId          string
	Description           string
	Enabled               bool
	KeyState              string
	KeySpec               string
	KeyUsage              string
	DeletionDate          *float64
	PendingDeletionWindow *int32 `json:"PendingDeletionWindowInDays"`
}

// TestAWSCLI drives the server with the real aws command line.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	start := time.Now()
	defer func() { t.Logf("%d aws CLI runs in %v", a.runs, time.Since(start)) }()

	var created struct{ KeyMetadata cliKeyMetadata }
	a.json(&created, "create-key", "--description", "cli key one")
	k1 := created.KeyMetadata
	if k1.KeyId == "" || !strings.HasSuffix(k1.Arn, ":key/"+k1.KeyId) || k1.KeyState != "Enabled" || !k1.Enabled ||
		k1.KeySpec != "SYMMETRIC_DEFAULT" || k1.KeyUsage != "ENCRYPT_DECRYPT" || k1.Description != "cli key one" || k1.AWSAccountId != "111122223333" {
		t.Fatalf("create-key: %+v", k1)
	}
	a.json(&created, "create-key", "--description", "cli key two")
	k2 := created.KeyMetadata

	const alias = "alias/cli-test"
	if out := a.ok("create-alias", "--alias-name", alias, "--target-key-id", k1.KeyId); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("create-alias printed %q", out)
	}

	// encrypt / decrypt of random binary content, through fileb://.
	secret := randBytes(t, 300)
	ptFile := a.file("secret.txt", secret)
	ct := a.blob("CiphertextBlob", "encrypt", "--key-id", alias, "--plaintext", ptFile)
	ctFile := a.file("ct.bin", ct)
	if got := a.blob("Plaintext", "decrypt", "--ciphertext-blob", ctFile); !bytes.Equal(got, secret) {
		t.Errorf("decrypt gave other bytes than were encrypted (%d vs %d bytes)", len(got), len(secret))
	}

	// With an encryption context.
	ctxCT := a.blob("CiphertextBlob", "encrypt", "--key-id", k1.KeyId, "--plaintext", ptFile,
		"--encryption-context", "purpose=cli,team=e2e")
	ctxFile := a.file("ct-ctx.bin", ctxCT)
	var dec struct {
		Plaintext           []byte // base64 in JSON
		KeyId               string
		EncryptionAlgorithm string
	}
	a.json(&dec, "decrypt", "--ciphertext-blob", ctxFile, "--encryption-context", "team=e2e,purpose=cli", "--key-id", k1.KeyId)
	if !bytes.Equal(dec.Plaintext, secret) || dec.KeyId != k1.Arn || dec.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
		t.Errorf("decrypt with the encryption context: %d bytes (same: %v), KeyId %q, algorithm %q; want %s SYMMETRIC_DEFAULT",
			len(dec.Plaintext), bytes.Equal(dec.Plaintext, secret), dec.KeyId, dec.EncryptionAlgorithm, k1.Arn)
	}
	a.fails([]string{"InvalidCiphertextException"}, "decrypt", "--ciphertext-blob", ctxFile)
	// A dry run that tests the permission to decrypt, without a ciphertext.
	a.fails([]string{"DryRunOperationException", "The request would have succeeded, but the DryRun option is set."},
		"decrypt", "--key-id", alias, "--dry-run", "--dry-run-modifiers", "IGNORE_CIPHERTEXT")

	// re-encrypt to the second key, then decrypt.
	var re struct {
		CiphertextBlob string
		SourceKeyId    string
		KeyId          string
	}
	a.json(&re, "re-encrypt", "--ciphertext-blob", ctxFile, "--source-encryption-context", "purpose=cli,team=e2e",
		"--destination-key-id", k2.KeyId, "--destination-encryption-context", "stage=two")
	if re.SourceKeyId != k1.Arn || re.KeyId != k2.Arn {
		t.Errorf("re-encrypt: SourceKeyId %q KeyId %q, want %s and %s", re.SourceKeyId, re.KeyId, k1.Arn, k2.Arn)
	}
	reCT, err := base64.StdEncoding.DecodeString(re.CiphertextBlob)
	noErr(t, err, "re-encrypt CiphertextBlob")
	reFile := a.file("ct-re.bin", reCT)
	a.json(&dec, "decrypt", "--ciphertext-blob", reFile, "--encryption-context", "stage=two")
	if dec.KeyId != k2.Arn || !bytes.Equal(dec.Plaintext, secret) {
		t.Errorf("the re-encrypted blob decrypts under %s (want %s) to the same bytes: %v", dec.KeyId, k2.Arn, bytes.Equal(dec.Plaintext, secret))
	}

	// Data keys.
	var dk struct {
		CiphertextBlob string
		Plaintext      string
		KeyId          string
	}
	a.json(&dk, "generate-data-key", "--key-id", alias, "--key-spec", "AES_256")
	dkPT, err1 := base64.StdEncoding.DecodeString(dk.Plaintext)
	dkCT, err2 := base64.StdEncoding.DecodeString(dk.CiphertextBlob)
	if err1 != nil || err2 != nil || len(dkPT) != 32 || dk.KeyId != k1.Arn {
		t.Fatalf("generate-data-key: %d-byte plaintext, KeyId %q (%v, %v)", len(dkPT), dk.KeyId, err1, err2)
	}
	if got := a.blob("Plaintext", "decrypt", "--ciphertext-blob", a.file("dk.bin", dkCT)); !bytes.Equal(got, dkPT) {
		t.Errorf("the data key's CiphertextBlob does not decrypt to its Plaintext")
	}
	dk = struct {
		CiphertextBlob string
		Plaintext      string
		KeyId          string
	}{}
	a.json(&dk, "generate-data-key-without-plaintext", "--key-id", k2.KeyId, "--key-spec", "AES_256")
	if dk.Plaintext != "" || dk.CiphertextBlob == "" || dk.KeyId != k2.Arn {
		t.Errorf("generate-data-key-without-plaintext: %+v", dk)
	}
	wpCT, err := base64.StdEncoding.DecodeString(dk.CiphertextBlob)
	noErr(t, err, "CiphertextBlob")
	if got := a.blob("Plaintext", "decrypt", "--ciphertext-blob", a.file("dkwp.bin", wpCT)); len(got) != 32 {
		t.Errorf("the data key without plaintext decrypts to %d bytes, want 32", len(got))
	}

	if rnd := a.blob("Plaintext", "generate-random", "--number-of-bytes", "64"); len(rnd) != 64 {
		t.Errorf("generate-random --number-of-bytes 64 gave %d bytes", len(rnd))
	}

	// Reading.
	var desc struct{ KeyMetadata cliKeyMetadata }
	a.json(&desc, "describe-key", "--key-id", alias)
	if desc.KeyMetadata.KeyId != k1.KeyId || desc.KeyMetadata.Arn != k1.Arn {
		t.Errorf("describe-key %s: %+v", alias, desc.KeyMetadata)
	}
	var lk struct {
		Keys []struct{ KeyId, KeyArn string }
	}
	a.json(&lk, "list-keys")
	for _, k := range []cliKeyMetadata{k1, k2} {
		if !slices.ContainsFunc(lk.Keys, func(e struct{ KeyId, KeyArn string }) bool { return e.KeyId == k.KeyId && e.KeyArn == k.Arn }) {
			t.Errorf("list-keys lacks %s: %+v", k.KeyId, lk.Keys)
		}
	}
	var la struct {
		Aliases []struct{ AliasName, AliasArn, TargetKeyId string }
	}
	a.json(&la, "list-aliases")
	found := false
	for _, e := range la.Aliases {
		if e.AliasName == alias {
			found = true
			if e.TargetKeyId != k1.KeyId || e.AliasArn != "arn:aws:kms:us-east-1:111122223333:"+alias {
				t.Errorf("list-aliases entry %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("list-aliases lacks %s: %+v", alias, la.Aliases)
	}

	// Tags and description.
	a.ok("tag-resource", "--key-id", k1.KeyId, "--tags", "TagKey=env,TagValue=test", "TagKey=team,TagValue=e2e")
	var tags struct {
		Tags []struct{ TagKey, TagValue string }
	}
	a.json(&tags, "list-resource-tags", "--key-id", k1.KeyId)
	got := map[string]string{}
	for _, tg := range tags.Tags {
		got[tg.TagKey] = tg.TagValue
	}
	if len(got) != 2 || got["env"] != "test" || got["team"] != "e2e" {
		t.Errorf("list-resource-tags: %+v", tags.Tags)
	}
	a.ok("update-key-description", "--key-id", k1.KeyId, "--description", "described again")
	a.json(&desc, "describe-key", "--key-id", k1.KeyId)
	if desc.KeyMetadata.Description != "described again" {
		t.Errorf("description after update-key-description: %q", desc.KeyMetadata.Description)
	}

	// Disable, and the key refuses to encrypt; enable, and it works again.
	a.ok("disable-key", "--key-id", k1.KeyId)
	a.fails([]string{"DisabledException", "is disabled."}, "encrypt", "--key-id", alias, "--plaintext", ptFile)
	a.ok("enable-key", "--key-id", k1.KeyId)
	if again := a.blob("CiphertextBlob", "encrypt", "--key-id", alias, "--plaintext", ptFile); len(again) == 0 {
		t.Errorf("encrypt after enable-key gave an empty blob")
	}

	// Deletion: scheduled, then cancelled (the key comes back disabled).
	var sched struct {
		KeyId               string
		KeyState            string
		DeletionDate        float64
		PendingWindowInDays int32
	}
	a.json(&sched, "schedule-key-deletion", "--key-id", k2.KeyId, "--pending-window-in-days", "7")
	if sched.KeyState != "PendingDeletion" || sched.KeyId != k2.Arn || sched.PendingWindowInDays != 7 {
		t.Errorf("schedule-key-deletion: %+v", sched)
	}
	if d := time.Until(time.Unix(int64(sched.DeletionDate), 0)); d < 6*24*time.Hour || d > 8*24*time.Hour {
		t.Errorf("schedule-key-deletion: DeletionDate %v from now, want about 7 days", d)
	}
	a.json(&desc, "describe-key", "--key-id", k2.KeyId)
	if desc.KeyMetadata.KeyState != "PendingDeletion" || desc.KeyMetadata.Enabled || desc.KeyMetadata.DeletionDate == nil {
		t.Errorf("describe-key after schedule-key-deletion: %+v", desc.KeyMetadata)
	}
	a.fails([]string{"KMSInvalidStateException", "pending deletion"}, "decrypt", "--ciphertext-blob", reFile, "--encryption-context", "stage=two")
	var cancel struct{ KeyId string }
	a.json(&cancel, "cancel-key-deletion", "--key-id", k2.KeyId)
	if cancel.KeyId != k2.Arn {
		t.Errorf("cancel-key-deletion: KeyId %q, want %s", cancel.KeyId, k2.Arn)
	}
	desc = struct{ KeyMetadata cliKeyMetadata }{}
	a.json(&desc, "describe-key", "--key-id", k2.KeyId)
	if desc.KeyMetadata.KeyState != "Disabled" || desc.KeyMetadata.Enabled || desc.KeyMetadata.DeletionDate != nil {
		t.Errorf("describe-key after cancel-key-deletion: %+v", desc.KeyMetadata)
	}

	// A corrupted blob.
	bad := slices.Clone(ct)
	bad[len(bad)/2] ^= 0x01
	a.fails([]string{"InvalidCiphertextException"}, "decrypt", "--ciphertext-blob", a.file("bad.bin", bad))
	// An unknown key.
	a.fails([]string{"NotFoundException"}, "describe-key", "--key-id", "alias/does-not-exist")
}
