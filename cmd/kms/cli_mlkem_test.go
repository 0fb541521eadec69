package main_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/testsupport"
)

// TestAWSCLIEncapsulate drives Encapsulate and Decapsulate with the real aws
// command line, as the README shows them. The installed CLI's botocore
// predates ML-KEM, so the test gives it, through AWS_DATA_PATH (where
// botocore looks for service models before its own), its own KMS model
// with what internal/e2e/testdata/kms-model/newer.json adds: the model a
// CLI released after October 2026 carries.
func TestAWSCLIEncapsulate(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	models := newerCLIModel(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	a.env = append(a.env, "AWS_DATA_PATH="+models)
	start := time.Now()
	defer func() { t.Logf("%d aws CLI runs in %v", a.runs, time.Since(start)) }()

	var created struct{ KeyMetadata cliKeyMetadata }
	a.json(&created, "create-key", "--key-spec", "ML_KEM_768", "--key-usage", "ENCAPSULATE_DECAPSULATE")
	kk := created.KeyMetadata
	var pub struct {
		KeyId                   string
		EncapsulationAlgorithms []string
	}
	a.json(&pub, "get-public-key", "--key-id", kk.KeyId)
	if pub.KeyId != kk.Arn || !slices.Equal(pub.EncapsulationAlgorithms, []string{"ML_KEM"}) {
		t.Errorf("get-public-key: %+v", pub)
	}

	var enc struct {
		KeyId                      string
		SharedSecret               []byte // base64 in JSON
		SharedSecretCiphertextBlob []byte
		EncapsulationAlgorithm     string
	}
	a.json(&enc, "encapsulate", "--key-id", kk.KeyId, "--encapsulation-algorithm", "ML_KEM")
	if enc.KeyId != kk.Arn || len(enc.SharedSecret) != 32 || len(enc.SharedSecretCiphertextBlob) != 1088 || enc.EncapsulationAlgorithm != "ML_KEM" {
		t.Fatalf("encapsulate: KeyId %q, %d-byte secret, %d-byte ciphertext, %q", enc.KeyId, len(enc.SharedSecret), len(enc.SharedSecretCiphertextBlob), enc.EncapsulationAlgorithm)
	}
	ct := a.file("kem-ct.bin", enc.SharedSecretCiphertextBlob)
	got := a.blob("SharedSecret", "decapsulate", "--key-id", kk.KeyId, "--encapsulation-algorithm", "ML_KEM", "--shared-secret-ciphertext-blob", ct)
	if !bytes.Equal(got, enc.SharedSecret) {
		t.Fatalf("decapsulate gave %x, encapsulate's secret is %x", got, enc.SharedSecret)
	}
	cut := a.file("kem-cut.bin", enc.SharedSecretCiphertextBlob[1:])
	a.fails([]string{"InvalidCiphertextException"}, "decapsulate", "--key-id", kk.KeyId, "--encapsulation-algorithm", "ML_KEM",
		"--shared-secret-ciphertext-blob", cut)
}

// newerCLIModel writes, in a directory it returns, botocore's KMS model
// with the additions of newer.json, laid out as botocore's data path
// wants it (kms/2014-11-01/service-2.json).
func newerCLIModel(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Fatalf("python3 with botocore is needed to read the CLI's KMS model: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "data", "kms", "2014-11-01", "service-2.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := os.ReadFile("../../internal/e2e/testdata/kms-model/newer.json")
	if err != nil {
		t.Fatal(err)
	}
	if b, err = testsupport.WithNewerKMS(b, newer, false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "kms", "2014-11-01")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "service-2.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
