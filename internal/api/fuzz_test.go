package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store/boltstore"
)

// FuzzHandler sends arbitrary operations and bodies to the real handler,
// seeded with every operation it serves:
// whatever arrives, the answer is a well-formed AWS JSON response, a 200
// with a JSON object or empty body, or an error with a __type, and never a
// panic or a 5xx.
func FuzzHandler(f *testing.F) {
	h, id, blob := newFuzzHandler(f)

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
		{"Encapsulate", `{"KeyId":"alias/fuzz-kem","EncapsulationAlgorithm":"ML_KEM"}`},
		{"Decapsulate", `{"KeyId":"alias/fuzz-kem","EncapsulationAlgorithm":"ML_KEM","SharedSecretCiphertextBlob":"` +
			base64.StdEncoding.EncodeToString(make([]byte, 1088)) + `"}`},
		{"Nope", `{}`},
		{"Encrypt", `[1,2,3]`},
		{"Encrypt", `{"Plaintext":12}`},
	} {
		f.Add(seed.op, []byte(seed.body))
	}
	// Every operation the handler serves, each with its own decoding of
	// the body: with nothing, and with the fuzzing key.
	for _, op := range h.Operations() {
		f.Add(op, []byte(`{}`))
		f.Add(op, []byte(`{"KeyId":"`+id+`","Limit":1}`))
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

// newFuzzHandler is the real handler over a fresh store with one key
// (alias/fuzz) and the root access key of account 111122223333 in
// benchCreds; it returns the handler, the key's id and a ciphertext blob
// of "seed" under it (as JSON) with the context {"a":"b"}.
func newFuzzHandler(f *testing.F) (h *api.Handler, id string, blob []byte) {
	st, err := boltstore.Open(filepath.Join(f.TempDir(), "kms.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
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
	id = key.KeyMetadata.KeyID
	svc.CreateAlias(context.Background(), caller, &kmsapi.AliasInput{AliasName: "alias/fuzz", TargetKeyID: id})
	kem, err := svc.CreateKey(context.Background(), caller, &kmsapi.CreateKeyInput{KeySpec: "ML_KEM_768", KeyUsage: "ENCAPSULATE_DECAPSULATE"})
	if err != nil {
		f.Fatal(err)
	}
	svc.CreateAlias(context.Background(), caller, &kmsapi.AliasInput{AliasName: "alias/fuzz-kem", TargetKeyID: kem.KeyMetadata.KeyID})
	enc, _ := svc.Encrypt(context.Background(), caller, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("seed"), EncryptionContext: map[string]string{"a": "b"}})
	blob, _ = json.Marshal(enc.CiphertextBlob)
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	if benchCreds, err = identity.BootstrapRoot(context.Background(), st, root, "111122223333"); err != nil {
		f.Fatal(err)
	}
	h = api.NewHandler(svc, dir, log)
	return h, id, blob
}

// FuzzQueryHandler sends arbitrary form bodies, signed for IAM or STS, to
// the real handler: whatever arrives, the answer is well-formed XML, a 200
// with the action's <ActionResponse> or an <ErrorResponse> with a code,
// never a panic or a 5xx, and it carries the request id.
func FuzzQueryHandler(f *testing.F) {
	h, _, _ := newFuzzHandler(f)
	role := "arn:aws:iam::111122223333:role/fuzz"
	trust := url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`)
	allow := url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)
	for _, seed := range []struct{ service, body string }{
		{"iam", "Action=CreateUser&Version=2010-05-08&UserName=fuzz&Path=%2Fteam%2F"},
		{"iam", "Action=GetUser&Version=2010-05-08&UserName=fuzz"},
		{"iam", "Action=ListUsers&Version=2010-05-08"},
		{"iam", "Action=CreateAccessKey&Version=2010-05-08&UserName=fuzz"},
		{"iam", "Action=ListAccessKeys&Version=2010-05-08&UserName=fuzz"},
		{"iam", "Action=CreateLoginProfile&Version=2010-05-08&UserName=fuzz&Password=Correct-horse-9&PasswordResetRequired=true"},
		{"iam", "Action=PutUserPolicy&Version=2010-05-08&UserName=fuzz&PolicyName=p&PolicyDocument=" + allow},
		{"iam", "Action=GetUserPolicy&Version=2010-05-08&UserName=fuzz&PolicyName=p"},
		{"iam", "Action=ListUserPolicies&Version=2010-05-08&UserName=fuzz"},
		{"iam", "Action=CreateRole&Version=2010-05-08&RoleName=fuzz&AssumeRolePolicyDocument=" + trust + "&MaxSessionDuration=3600"},
		{"iam", "Action=PutRolePolicy&Version=2010-05-08&RoleName=fuzz&PolicyName=p&PolicyDocument=" + allow},
		{"iam", "Action=ListRoles&Version=2010-05-08"},
		{"iam", "Action=Nope&Version=2010-05-08"},
		{"iam", "Action=CreateUser&UserName=%ff%fe"},
		{"iam", "%zz"},
		{"sts", "Action=GetCallerIdentity&Version=2011-06-15"},
		{"sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=" + url.QueryEscape(role) + "&RoleSessionName=fuzz-session&DurationSeconds=900"},
		{"sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=" + url.QueryEscape(role) + "&RoleSessionName=fuzz-session&DurationSeconds=9999999999999"},
	} {
		f.Add(seed.service == "sts", []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, sts bool, body []byte) {
		if locksOut(body) {
			return // keep the root access key the harness signs with
		}
		service := "iam"
		if sts {
			service = "sts"
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchCreds.ID, SecretAccessKey: benchCreds.Secret},
			req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get("x-amzn-RequestId") == "" {
			t.Fatal("no request id")
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", service, body, rec.Code, rec.Body)
		}
		root, err := xmlRoot(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("%s %q: status %d with a body that is not XML (%v): %q", service, body, rec.Code, err, rec.Body)
		}
		if rec.Code == http.StatusOK {
			if !strings.HasSuffix(root, "Response") || root == "ErrorResponse" {
				t.Fatalf("%s %q: 200 with <%s>", service, body, root)
			}
			return
		}
		var e struct {
			Error struct{ Code string }
		}
		if root != "ErrorResponse" || xml.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" {
			t.Fatalf("%s %q: status %d with body %q", service, body, rec.Code, rec.Body)
		}
	})
}

// locksOut reports whether a form would disable or delete an access key,
// which could be the one the fuzzing harness signs with.
func locksOut(body []byte) bool {
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	return action == "DeleteAccessKey" || action == "UpdateAccessKey"
}

// xmlRoot reads a whole XML document and returns the name of its root
// element.
func xmlRoot(b []byte) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	root, depth := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if root == "" || depth != 0 {
				return "", io.ErrUnexpectedEOF
			}
			return root, nil
		}
		if err != nil {
			return "", err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if root != "" {
					return "", errors.New("two root elements")
				}
				root = el.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
}
