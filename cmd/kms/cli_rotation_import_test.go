package main_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireOpenSSL returns the path of the openssl command. Without one the
// test fails in CI (CI set) and is skipped elsewhere.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the openssl command is needed for this test and is not on PATH: %v", err)
		}
		t.Skipf("no openssl command on PATH: %v", err)
	}
	return bin
}

// openssl runs `openssl ARGS` in the aws CLI's working directory, as a user
// preparing files for fileb:// would, and fails the test if it fails.
func (a *awsCLI) openssl(bin string, args ...string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = baseEnv(), a.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// read returns the content of a file in the working directory.
func (a *awsCLI) read(name string) []byte {
	a.t.Helper()
	b, err := os.ReadFile(filepath.Join(a.dir, name))
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

// cliTime parses a timestamp as the aws CLI prints it in JSON: epoch
// seconds (v1's default) or an ISO 8601 string (v2's default).
func cliTime(t *testing.T, what string, raw json.RawMessage) time.Time {
	t.Helper()
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		t.Fatalf("%s: no timestamp", what)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9))
	}
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		if tm, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return tm
		}
	}
	t.Fatalf("%s: %s is not a timestamp", what, s)
	return time.Time{}
}

// near reports whether tm is within slack of want.
func near(tm, want time.Time, slack time.Duration) bool {
	d := tm.Sub(want)
	return d > -slack && d < slack
}

type cliKeyMetadataX struct {
	cliKeyMetadata
	Origin               string
	CurrentKeyMaterialId string
	ExpirationModel      string
	ValidTo              json.RawMessage
}

type cliRotationStatus struct {
	KeyRotationEnabled   bool
	KeyId                string
	RotationPeriodInDays int32
	NextRotationDate     json.RawMessage
}

type cliImportParams struct {
	KeyId             string
	ImportToken       []byte // base64 in JSON
	PublicKey         []byte // base64 in JSON: DER SubjectPublicKeyInfo
	ParametersValidTo json.RawMessage
}

type cliDecrypt struct {
	Plaintext           []byte // base64 in JSON
	KeyId               string
	EncryptionAlgorithm string
}

// TestAWSCLIRotationAndImport drives key rotation and the import of key
// material with the real aws command line and openssl, as the AWS
// documentation tells a user to, then checks that all of it survives a
// SIGKILL of the server.
func TestAWSCLIRotationAndImport(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	ossl := requireOpenSSL(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	a := newAWSCLI(t, bin, s)
	start := time.Now()
	defer func() { t.Logf("%d aws CLI runs in %v", a.runs, time.Since(start)) }()

	secret := randBytes(t, 200)
	ptFile := a.file("secret.txt", secret)

	// decrypts checks that the blob in file ctFile decrypts under arn to
	// secret.
	decrypts := func(what, ctFile, arn string) {
		t.Helper()
		var dec cliDecrypt
		a.json(&dec, "decrypt", "--ciphertext-blob", ctFile)
		if !bytes.Equal(dec.Plaintext, secret) || dec.KeyId != arn || dec.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
			t.Errorf("%s: decrypt gave %d bytes (same as encrypted: %v) under %q with %q; want %d bytes under %s, SYMMETRIC_DEFAULT",
				what, len(dec.Plaintext), bytes.Equal(dec.Plaintext, secret), dec.KeyId, dec.EncryptionAlgorithm, len(secret), arn)
		}
	}
	rotationStatus := func(keyID string) cliRotationStatus {
		t.Helper()
		var st cliRotationStatus
		a.json(&st, "get-key-rotation-status", "--key-id", keyID)
		return st
	}

	// ---- 1. Rotation ----
	var created struct{ KeyMetadata cliKeyMetadataX }
	a.json(&created, "create-key", "--description", "cli rotation key")
	rk := created.KeyMetadata
	if rk.KeyId == "" || rk.KeyState != "Enabled" || rk.Origin != "AWS_KMS" || rk.CurrentKeyMaterialId == "" {
		t.Fatalf("create-key: %+v", rk)
	}
	if st := rotationStatus(rk.KeyId); st.KeyRotationEnabled || st.RotationPeriodInDays != 0 || len(st.NextRotationDate) != 0 || st.KeyId != rk.Arn {
		t.Errorf("get-key-rotation-status of a new key: %+v, want disabled, no period or date, KeyId %s", st, rk.Arn)
	}
	if out := a.ok("enable-key-rotation", "--key-id", rk.KeyId, "--rotation-period-in-days", "180"); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("enable-key-rotation printed %q", out)
	}
	enabledAt := time.Now()
	st := rotationStatus(rk.KeyId)
	if !st.KeyRotationEnabled || st.RotationPeriodInDays != 180 || st.KeyId != rk.Arn {
		t.Errorf("get-key-rotation-status after enable-key-rotation --rotation-period-in-days 180: %+v", st)
	}
	if next := cliTime(t, "NextRotationDate", st.NextRotationDate); !near(next, enabledAt.Add(180*24*time.Hour), time.Hour) {
		t.Errorf("NextRotationDate %v, want about 180 days after %v", next, enabledAt)
	}

	rotCT := a.blob("CiphertextBlob", "encrypt", "--key-id", rk.KeyId, "--plaintext", ptFile)
	rotCTFile := a.file("rot-ct.bin", rotCT)

	var rot struct{ KeyId string }
	a.json(&rot, "rotate-key-on-demand", "--key-id", rk.KeyId)
	rotatedAt := time.Now()
	if rot.KeyId != rk.Arn {
		t.Errorf("rotate-key-on-demand: KeyId %q, want %s", rot.KeyId, rk.Arn)
	}
	var lr struct {
		Rotations []struct {
			KeyId, KeyMaterialId, KeyMaterialState, RotationType string
			RotationDate                                         json.RawMessage
		}
		Truncated bool
	}
	a.json(&lr, "list-key-rotations", "--key-id", rk.KeyId)
	if len(lr.Rotations) != 1 || lr.Truncated {
		t.Fatalf("list-key-rotations after one rotate-key-on-demand: %+v, want one entry", lr)
	}
	e := lr.Rotations[0]
	if e.RotationType != "ON_DEMAND" || (e.KeyId != rk.KeyId && e.KeyId != rk.Arn) || e.KeyMaterialId == "" || e.KeyMaterialId == rk.CurrentKeyMaterialId {
		t.Errorf("list-key-rotations entry %+v, want ON_DEMAND for %s with new material (not %s)", e, rk.KeyId, rk.CurrentKeyMaterialId)
	}
	if e.KeyMaterialState != "" && e.KeyMaterialState != "CURRENT" {
		t.Errorf("list-key-rotations: the only rotation's KeyMaterialState is %q, want CURRENT", e.KeyMaterialState)
	}
	if d := cliTime(t, "RotationDate", e.RotationDate); !near(d, rotatedAt, 5*time.Minute) {
		t.Errorf("RotationDate %v, want about %v", d, rotatedAt)
	}
	decrypts("the ciphertext from before rotate-key-on-demand", rotCTFile, rk.Arn)
	var desc struct{ KeyMetadata cliKeyMetadataX }
	a.json(&desc, "describe-key", "--key-id", rk.KeyId)
	if cur := desc.KeyMetadata.CurrentKeyMaterialId; cur == "" || cur == rk.CurrentKeyMaterialId || cur != e.KeyMaterialId {
		t.Errorf("describe-key after rotate-key-on-demand: CurrentKeyMaterialId %q; before it was %q, list-key-rotations says %q",
			cur, rk.CurrentKeyMaterialId, e.KeyMaterialId)
	}
	a.ok("disable-key-rotation", "--key-id", rk.KeyId)
	if st := rotationStatus(rk.KeyId); st.KeyRotationEnabled || st.RotationPeriodInDays != 0 || len(st.NextRotationDate) != 0 {
		t.Errorf("get-key-rotation-status after disable-key-rotation: %+v", st)
	}
	// Enable again, with the default period, to carry across the SIGKILL.
	a.ok("enable-key-rotation", "--key-id", rk.KeyId)
	enabledAt = time.Now()
	rotBefore := rotationStatus(rk.KeyId)
	if !rotBefore.KeyRotationEnabled || rotBefore.RotationPeriodInDays != 365 {
		t.Errorf("get-key-rotation-status after enable-key-rotation without a period: %+v, want enabled, 365 days", rotBefore)
	}
	rotNext := cliTime(t, "NextRotationDate", rotBefore.NextRotationDate)
	if !near(rotNext, enabledAt.Add(365*24*time.Hour), time.Hour) {
		t.Errorf("NextRotationDate %v, want about 365 days after %v", rotNext, enabledAt)
	}

	// ---- 2. Import with openssl, RSAES_OAEP_SHA_256 ----
	oaep := []string{"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"}
	// getParams runs get-parameters-for-import and writes the public key
	// and the import token to pubFile and tokenFile, as binary.
	getParams := func(keyID, arn, alg, pubFile, tokenFile string) {
		t.Helper()
		var p cliImportParams
		a.json(&p, "get-parameters-for-import", "--key-id", keyID, "--wrapping-algorithm", alg, "--wrapping-key-spec", "RSA_2048")
		if p.KeyId != arn || len(p.PublicKey) == 0 || len(p.ImportToken) == 0 {
			t.Fatalf("get-parameters-for-import %s: KeyId %q, %d-byte public key, %d-byte token", alg, p.KeyId, len(p.PublicKey), len(p.ImportToken))
		}
		if to := cliTime(t, "ParametersValidTo", p.ParametersValidTo); !near(to, time.Now().Add(24*time.Hour), time.Hour) {
			t.Errorf("get-parameters-for-import: ParametersValidTo %v, want about 24 hours from now", to)
		}
		a.file(pubFile, p.PublicKey)
		a.file(tokenFile, p.ImportToken)
	}
	importMaterial := func(keyID, encFile, tokenFile string) string {
		t.Helper()
		var im struct{ KeyId, KeyMaterialId string }
		a.json(&im, "import-key-material", "--key-id", keyID, "--encrypted-key-material", "fileb://"+encFile,
			"--import-token", "fileb://"+tokenFile, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
		if !strings.HasSuffix(im.KeyId, keyID) {
			t.Errorf("import-key-material: KeyId %q, want %s", im.KeyId, keyID)
		}
		return im.KeyMaterialId
	}

	created = struct{ KeyMetadata cliKeyMetadataX }{} // json.Unmarshal keeps fields the output lacks
	a.json(&created, "create-key", "--origin", "EXTERNAL", "--description", "cli imported key (OAEP)")
	ek := created.KeyMetadata
	if ek.KeyState != "PendingImport" || ek.Enabled || ek.Origin != "EXTERNAL" || ek.CurrentKeyMaterialId != "" {
		t.Fatalf("create-key --origin EXTERNAL: %+v, want PendingImport, not enabled, no material", ek)
	}
	getParams(ek.KeyId, ek.Arn, "RSAES_OAEP_SHA_256", "PublicKey.der", "token.bin")
	a.openssl(ossl, "rand", "-out", "material.bin", "32")
	a.openssl(ossl, append([]string{"pkeyutl", "-encrypt", "-in", "material.bin", "-out", "encrypted.bin",
		"-inkey", "PublicKey.der", "-keyform", "DER", "-pubin"}, oaep...)...)
	matID := importMaterial(ek.KeyId, "encrypted.bin", "token.bin")
	desc = struct{ KeyMetadata cliKeyMetadataX }{}
	a.json(&desc, "describe-key", "--key-id", ek.KeyId)
	if m := desc.KeyMetadata; m.KeyState != "Enabled" || !m.Enabled || m.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE" ||
		len(m.ValidTo) != 0 || m.CurrentKeyMaterialId == "" || (matID != "" && m.CurrentKeyMaterialId != matID) {
		t.Errorf("describe-key after import-key-material: %+v, want Enabled, KEY_MATERIAL_DOES_NOT_EXPIRE, no ValidTo, material %q", m, matID)
	}
	extCT := a.blob("CiphertextBlob", "encrypt", "--key-id", ek.KeyId, "--plaintext", ptFile)
	extCTFile := a.file("ext-ct.bin", extCT)
	decrypts("the imported key's ciphertext", extCTFile, ek.Arn)

	// Delete the material: the key waits for an import and cannot decrypt.
	var del struct{ KeyId, KeyMaterialId string }
	a.json(&del, "delete-imported-key-material", "--key-id", ek.KeyId)
	if del.KeyId != ek.Arn || (del.KeyMaterialId != "" && matID != "" && del.KeyMaterialId != matID) {
		t.Errorf("delete-imported-key-material: %+v, want KeyId %s, material %q", del, ek.Arn, matID)
	}
	desc = struct{ KeyMetadata cliKeyMetadataX }{}
	a.json(&desc, "describe-key", "--key-id", ek.KeyId)
	if m := desc.KeyMetadata; m.KeyState != "PendingImport" || m.Enabled || m.ExpirationModel != "" {
		t.Errorf("describe-key after delete-imported-key-material: %+v, want PendingImport, no ExpirationModel", m)
	}
	a.fails([]string{"KMSInvalidStateException", "pending import"}, "decrypt", "--ciphertext-blob", extCTFile)

	// Import the same material again, under new parameters: the old
	// ciphertext decrypts again.
	getParams(ek.KeyId, ek.Arn, "RSAES_OAEP_SHA_256", "PublicKey2.der", "token2.bin")
	a.openssl(ossl, append([]string{"pkeyutl", "-encrypt", "-in", "material.bin", "-out", "encrypted2.bin",
		"-inkey", "PublicKey2.der", "-keyform", "DER", "-pubin"}, oaep...)...)
	if again := importMaterial(ek.KeyId, "encrypted2.bin", "token2.bin"); again != matID {
		t.Errorf("re-importing the same material: KeyMaterialId %q, the first import said %q", again, matID)
	}
	decrypts("the imported key's ciphertext after re-importing its material", extCTFile, ek.Arn)

	// ---- 2b. Import with openssl, RSA_AES_KEY_WRAP_SHA_256 ----
	created = struct{ KeyMetadata cliKeyMetadataX }{} // json.Unmarshal keeps fields the output lacks
	a.json(&created, "create-key", "--origin", "EXTERNAL", "--description", "cli imported key (RSA AES key wrap)")
	wk := created.KeyMetadata
	if wk.KeyState != "PendingImport" || wk.Origin != "EXTERNAL" {
		t.Fatalf("create-key --origin EXTERNAL: %+v", wk)
	}
	getParams(wk.KeyId, wk.Arn, "RSA_AES_KEY_WRAP_SHA_256", "PublicKey3.der", "token3.bin")
	a.openssl(ossl, "rand", "-out", "kek.bin", "32")
	a.openssl(ossl, "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(a.read("kek.bin")), "-iv", "A65959A6",
		"-in", "material.bin", "-out", "wrapped-material.bin")
	a.openssl(ossl, append([]string{"pkeyutl", "-encrypt", "-in", "kek.bin", "-out", "kek.enc",
		"-inkey", "PublicKey3.der", "-keyform", "DER", "-pubin"}, oaep...)...)
	kekEnc, wrapped := a.read("kek.enc"), a.read("wrapped-material.bin")
	if len(kekEnc) != 256 || len(wrapped) != 40 {
		t.Fatalf("openssl made a %d-byte kek.enc (want 256) and a %d-byte wrapped-material.bin (want 40)", len(kekEnc), len(wrapped))
	}
	a.file("encrypted3.bin", append(kekEnc, wrapped...)) // cat kek.enc wrapped-material.bin > encrypted3.bin
	importMaterial(wk.KeyId, "encrypted3.bin", "token3.bin")
	wrapCT := a.blob("CiphertextBlob", "encrypt", "--key-id", wk.KeyId, "--plaintext", ptFile)
	wrapCTFile := a.file("wrap-ct.bin", wrapCT)
	decrypts("the key-wrap imported key's ciphertext", wrapCTFile, wk.Arn)

	// ---- 3. SIGKILL, restart on the same data dir ----
	s.kill()
	s = startDev(t, dir)
	a.url = s.URL

	decrypts("after SIGKILL, the rotated key's ciphertext from before the rotation", rotCTFile, rk.Arn)
	decrypts("after SIGKILL, the imported key's ciphertext", extCTFile, ek.Arn)
	decrypts("after SIGKILL, the key-wrap imported key's ciphertext", wrapCTFile, wk.Arn)
	after := rotationStatus(rk.KeyId)
	if after.KeyRotationEnabled != rotBefore.KeyRotationEnabled || after.RotationPeriodInDays != rotBefore.RotationPeriodInDays ||
		after.KeyId != rotBefore.KeyId || !cliTime(t, "NextRotationDate", after.NextRotationDate).Equal(rotNext) {
		t.Errorf("get-key-rotation-status changed across SIGKILL:\nbefore %+v (next %s)\nafter  %+v (next %s)",
			rotBefore, rotBefore.NextRotationDate, after, after.NextRotationDate)
	}
}
