package api_test

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/api"
)

// TestEveryModelOperationIsServed walks the operation list of the AWS KMS
// API model that botocore ships and checks that the handler serves each
// one, so that none answers UnknownOperationException. It needs python3
// with botocore to find the model: it is skipped without them, and fails
// without them when CI is set.
func TestEveryModelOperationIsServed(t *testing.T) {
	model := botocoreKMSModel(t)
	served := api.NewHandler(nil, nil, nil).Operations()
	var names []string
	for name := range model.Operations {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) < 54 {
		t.Fatalf("the model lists %d operations; want at least 54", len(names))
	}
	for _, name := range names {
		if !slices.Contains(served, name) {
			t.Errorf("operation %s of the model is not served", name)
		}
	}
	for _, name := range served {
		if _, ok := model.Operations[name]; !ok && !slices.Contains(newerThanBotocore, name) {
			t.Errorf("the handler serves %s, which the model does not have", name)
		}
	}
}

// newerThanBotocore are the operations the KMS API gained after the
// botocore of the test machines (1.43.11): the ML-KEM operations of
// October 2026, which aws-sdk-go-v2/service/kms has since v1.62.0.
var newerThanBotocore = []string{"Decapsulate", "Encapsulate"}

type serviceModel struct {
	Operations map[string]json.RawMessage `json:"operations"`
}

// botocoreKMSModel reads botocore's kms/2014-11-01/service-2.json.gz.
func botocoreKMSModel(t *testing.T) *serviceModel {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		unavailable("python3 with botocore is needed to read the AWS KMS model: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	matches, _ := filepath.Glob(filepath.Join(dir, "data", "kms", "*", "service-2.json*"))
	if len(matches) == 0 {
		unavailable("botocore in %s has no KMS model", dir)
	}
	slices.Sort(matches)
	path := matches[len(matches)-1]
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m serviceModel
	dec := json.NewDecoder(f)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		dec = json.NewDecoder(zr)
	}
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &m
}
