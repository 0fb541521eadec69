package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store/boltstore"
)

// FuzzHandler sends arbitrary operations and bodies to the real handler:
// whatever arrives, the answer is a well-formed AWS JSON response, a 200
// with a JSON object or empty body, or an error with a __type, and never a
// panic or a 5xx.
func FuzzHandler(f *testing.F) {
	st, err := boltstore.Open(filepath.Join(f.TempDir(), "kms.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, _ := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	caller := rootCaller
	key, err := svc.CreateKey(context.Background(), caller, &kmsapi.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	id := key.KeyMetadata.KeyID
	svc.CreateAlias(context.Background(), caller, &kmsapi.AliasInput{AliasName: "alias/fuzz", TargetKeyID: id})
	enc, _ := svc.Encrypt(context.Background(), caller, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("seed"), EncryptionContext: map[string]string{"a": "b"}})
	blob, _ := json.Marshal(enc.CiphertextBlob)
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	if benchCreds, err = identity.BootstrapRoot(context.Background(), st, root, "111122223333"); err != nil {
		f.Fatal(err)
	}
	h := api.NewHandler(svc, dir, log)

	for _, seed := range []struct{ op, body string }{
		{"Encrypt", `{"KeyId":"` + id + `","Plaintext":"aGVsbG8="}`},
		{"Encrypt", `{"KeyId":"alias/fuzz","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`},
		{"Decrypt", `{"CiphertextBlob":` + string(blob) + `,"EncryptionContext":{"a":"b"}}`},
		{"ReEncrypt", `{"CiphertextBlob":` + string(blob) + `,"SourceEncryptionContext":{"a":"b"},"DestinationKeyId":"alias/fuzz"}`},
		{"GenerateDataKey", `{"KeyId":"` + id + `","NumberOfBytes":16}`},
		{"DescribeKey", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/fuzz"}`},
		{"ListKeys", `{"Limit":1,"Marker":"bTE6"}`},
		{"ListAliases", `{"KeyId":"` + id + `"}`},
		{"TagResource", `{"KeyId":"` + id + `","Tags":[{"TagKey":"k","TagValue":"v"}]}`},
		{"ListResourceTags", `{"KeyId":"` + id + `","Limit":1}`},
		{"CreateAlias", `{"AliasName":"alias/x","TargetKeyId":"` + id + `"}`},
		{"GenerateRandom", `{"NumberOfBytes":8}`},
		{"Nope", `{}`},
		{"Encrypt", `[1,2,3]`},
		{"Encrypt", `{"Plaintext":12}`},
	} {
		f.Add(seed.op, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if op == "CreateKey" || op == "ScheduleKeyDeletion" || op == "DisableKey" {
			return // keep the fuzzing key usable and the store small
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header = signedHeaders(t, op, body)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get("x-amzn-RequestId") == "" {
			t.Fatal("no request id")
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", op, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s: invalid JSON response %q", op, rec.Body)
			}
			return
		}
		var e struct {
			Type string `json:"__type"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type == "" {
			t.Fatalf("%s %q: status %d with body %q", op, body, rec.Code, rec.Body)
		}
	})
}
