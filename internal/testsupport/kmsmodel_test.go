package testsupport_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/testsupport"
)

func TestWithNewerKMS(t *testing.T) {
	base := `{"version":"2.0","operations":{"Sign":{"name":"Sign","input":{"shape":"SignRequest"}}},
		"shapes":{"SignRequest":{"type":"structure","members":{"KeyId":{"shape":"KeyIdType"}}},"KeySpec":{"type":"string","enum":["RSA_2048"]}}}`
	newer := `{"operations":{"Encapsulate":{"input":{"shape":"EncapsulateRequest"}}},
		"shapes":{"EncapsulateRequest":{"type":"structure","members":{}}},
		"enumValues":{"KeySpec":["ML_KEM_768"]},
		"members":{"SignRequest":{"DryRun":{"shape":"NullableBooleanType"}}}}`
	b, err := testsupport.WithNewerKMS([]byte(base), []byte(newer), true)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Version    string
		Operations map[string]struct {
			Name string
			HTTP struct{ Method, RequestURI string } `json:"http"`
		}
		Shapes map[string]struct {
			Enum    []string
			Members map[string]any
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	op := m.Operations["Encapsulate"]
	if m.Version != "2.0" || op.Name != "Encapsulate" || op.HTTP.Method != "POST" || op.HTTP.RequestURI != "/" || m.Operations["Sign"].Name != "Sign" {
		t.Errorf("operations: %+v, version %q", m.Operations, m.Version)
	}
	if strings.Join(m.Shapes["KeySpec"].Enum, ",") != "RSA_2048,ML_KEM_768" || m.Shapes["SignRequest"].Members["DryRun"] == nil ||
		m.Shapes["SignRequest"].Members["KeyId"] == nil || m.Shapes["EncapsulateRequest"].Members == nil {
		t.Errorf("shapes: %+v", m.Shapes)
	}

	// What the model has already: an error when strict, kept otherwise.
	again := `{"enumValues":{"KeySpec":["RSA_2048"]},"operations":{"Sign":{"input":{"shape":"Other"}}}}`
	if _, err := testsupport.WithNewerKMS([]byte(base), []byte(again), true); err == nil {
		t.Error("strict: an addition the model has already was taken")
	}
	b, err = testsupport.WithNewerKMS([]byte(base), []byte(again), false)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Count(s, "RSA_2048") != 1 || strings.Contains(s, "Other") {
		t.Errorf("lenient: the model's own changed: %s", s)
	}
	if _, err := testsupport.WithNewerKMS([]byte(base), []byte(`{"enumValues":{"SignRequest":["x"]}}`), false); err == nil {
		t.Error("values added to a structure")
	}
}
