package kmskeyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/esdk"
)

// answeringKMS is a KMS endpoint that answers every call of an operation
// with the body it is given, as a broken or hostile server would, and
// counts the calls; the keyring reaches it through aws-sdk-go-v2.
type answeringKMS struct {
	answers map[string]map[string]any // operation -> JSON body
	calls   map[string]int
}

func (a *answeringKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	a.calls[op]++
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	body, ok := a.answers[op]
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"InvalidCiphertextException","message":""}`))
		return
	}
	json.NewEncoder(w).Encode(body)
}

func answeringClient(t *testing.T, answers map[string]map[string]any) (*kms.Client, *answeringKMS) {
	t.Helper()
	a := &answeringKMS{answers: answers, calls: map[string]int{}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	c := kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   srv.Client(),
	})
	return c, a
}

const otherARN = "arn:aws:kms:us-east-1:111122223333:key/0000aaaa-12ab-34cd-56ef-1234567890ab"

// TestDecryptAnswerForAnotherKey: a Decrypt answer whose KeyId is not the
// key asked (another key, an alias, none at all) is refused, its data key
// zeroed, as the specification's KMS keyring requires ("The KeyId field
// in the response MUST equal the configured AWS KMS key identifier"), and
// the next encrypted data key is tried; the keyring's failure matches
// esdk.ErrNoDataKey, as the Keyring contract says.
func TestDecryptAnswerForAnotherKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name  string
		keyID any
	}{
		{"another key", otherARN},
		{"an alias", "arn:aws:kms:us-east-1:111122223333:alias/mine"},
		{"the key id alone", "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"no KeyId", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"Plaintext": key, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
			if tc.keyID != nil {
				body["KeyId"] = tc.keyID
			}
			c, a := answeringClient(t, map[string]map[string]any{"Decrypt": body})
			edks := []esdk.EncryptedDataKey{{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: []byte("blob")}}
			for _, kr := range []*Keyring{New(c), New(c, arn)} {
				got, err := kr.DecryptDataKey(context.Background(), esdk.SuiteCommitKey, edks, nil)
				if err == nil || !errors.Is(err, esdk.ErrNoDataKey) || !strings.Contains(err.Error(), "answered for") {
					t.Errorf("keys %v: DecryptDataKey = %x, %v; want a refusal matching ErrNoDataKey", kr.keys, got, err)
				}
			}
			if a.calls["Decrypt"] != 2 {
				t.Errorf("Decrypt called %d times, want 2", a.calls["Decrypt"])
			}
		})
	}

	// The same answer for the key asked is taken.
	c, _ := answeringClient(t, map[string]map[string]any{"Decrypt": {"KeyId": arn, "Plaintext": key}})
	edks := []esdk.EncryptedDataKey{{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: []byte("blob")}}
	if got, err := New(c).DecryptDataKey(context.Background(), esdk.SuiteCommitKey, edks, nil); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("answer for the key asked: %x, %v", got, err)
	}
}

// TestDiscoveryAsksOnlyKeyARNs: without keys, the keyring sends KMS only
// the data keys whose provider info is a key ARN; a message naming an
// alias, a bare key id or anything else makes no call, as the
// specification's discovery keyring requires, and fails with
// esdk.ErrNoDataKey.
func TestDiscoveryAsksOnlyKeyARNs(t *testing.T) {
	c, a := answeringClient(t, map[string]map[string]any{"Decrypt": {"KeyId": "alias/mine", "Plaintext": make([]byte, 32)}})
	for _, info := range []string{"alias/mine", "arn:aws:kms:us-east-1:111122223333:alias/mine", "1234abcd-12ab-34cd-56ef-1234567890ab", "", "arn:aws:kms:us-east-1:111122223333:key/"} {
		edks := []esdk.EncryptedDataKey{{ProviderID: ProviderID, ProviderInfo: info, Ciphertext: []byte("blob")}}
		if _, err := New(c).DecryptDataKey(context.Background(), esdk.SuiteCommitKey, edks, nil); !errors.Is(err, esdk.ErrNoDataKey) {
			t.Errorf("provider info %q: %v, want ErrNoDataKey", info, err)
		}
	}
	if a.calls["Decrypt"] != 0 {
		t.Fatalf("Decrypt called %d times for provider info that is no key ARN", a.calls["Decrypt"])
	}
}

// TestEncryptAnswerWithoutKeyARN: a GenerateDataKey or Encrypt answer
// without a KeyId, or with one that is not a key ARN, fails the
// encryption (the specification: the response's KeyId "MUST be a valid
// AWS KMS key ARN"): the message would name a key no decrypter could
// match. It must not crash the program.
func TestEncryptAnswerWithoutKeyARN(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, keyID := range []any{nil, "", "alias/mine", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		gen := map[string]any{"Plaintext": key, "CiphertextBlob": []byte("blob")}
		enc := map[string]any{"CiphertextBlob": []byte("blob2")}
		if keyID != nil {
			gen["KeyId"], enc["KeyId"] = keyID, keyID
		}
		c, _ := answeringClient(t, map[string]map[string]any{"GenerateDataKey": gen, "Encrypt": {"KeyId": otherARN, "CiphertextBlob": []byte("blob2")}})
		if _, _, err := New(c, arn).GenerateDataKey(context.Background(), esdk.SuiteCommitKey, nil); err == nil || !strings.Contains(err.Error(), "key ARN") {
			t.Errorf("GenerateDataKey answering KeyId %v: %v, want a refusal", keyID, err)
		}
		c, _ = answeringClient(t, map[string]map[string]any{"GenerateDataKey": {"KeyId": arn, "Plaintext": key, "CiphertextBlob": []byte("blob")}, "Encrypt": enc})
		if _, _, err := New(c, arn, otherARN).GenerateDataKey(context.Background(), esdk.SuiteCommitKey, nil); err == nil || !strings.Contains(err.Error(), "key ARN") {
			t.Errorf("Encrypt answering KeyId %v: %v, want a refusal", keyID, err)
		}
	}
}

// resolvingKMS answers Decrypt as KMS does: the blob names the key it is
// under, and a KeyId asked (key ARN, key id, alias name or alias ARN)
// that resolves to another key is refused with IncorrectKeyException.
// It records the KeyId of every Decrypt.
type resolvingKMS struct {
	aliases map[string]string // alias name, alias ARN or key id -> key ARN
	blobs   map[string]string // ciphertext blob -> key ARN it is under
	asked   []string
}

func (f *resolvingKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CiphertextBlob []byte
		KeyId          string
	}
	json.NewDecoder(r.Body).Decode(&in)
	f.asked = append(f.asked, in.KeyId)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	under := f.blobs[string(in.CiphertextBlob)]
	want := in.KeyId
	if a, ok := f.aliases[want]; ok {
		want = a
	}
	if want != under {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"IncorrectKeyException","message":"The key ID in the request does not identify a CMK that can perform this operation."}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"KeyId": under, "Plaintext": bytes.Repeat([]byte{9}, 32)})
}

// TestDecryptWithAliasOnlyThatKey: a keyring of an alias name, an alias
// ARN or a key id decrypts only a data key under the key it names: each
// is given to KMS as the KeyId, which KMS resolves and refuses for a data
// key under another key, rather than accepting whatever key the message
// names. A keyring of key ARNs asks only for its own ARNs.
func TestDecryptWithAliasOnlyThatKey(t *testing.T) {
	f := &resolvingKMS{
		aliases: map[string]string{
			"alias/mine": arn, "arn:aws:kms:us-east-1:111122223333:alias/mine": arn,
			"1234abcd-12ab-34cd-56ef-1234567890ab": arn,
		},
		blobs: map[string]string{"mine": arn, "theirs": otherARN},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: aws.AnonymousCredentials{}, HTTPClient: srv.Client()})
	theirs := esdk.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: otherARN, Ciphertext: []byte("theirs")}
	mine := esdk.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: arn, Ciphertext: []byte("mine")}
	for _, id := range []string{"alias/mine", "arn:aws:kms:us-east-1:111122223333:alias/mine", "1234abcd-12ab-34cd-56ef-1234567890ab", arn} {
		f.asked = nil
		kr := New(c, id)
		if key, err := kr.DecryptDataKey(context.Background(), esdk.SuiteCommitKey, []esdk.EncryptedDataKey{theirs}, nil); !errors.Is(err, esdk.ErrNoDataKey) {
			t.Errorf("keyring of %s: a data key under another key gave %x, %v", id, key, err)
		}
		for _, asked := range f.asked {
			if asked != id {
				t.Errorf("keyring of %s asked KMS for KeyId %s", id, asked)
			}
		}
		if key, err := kr.DecryptDataKey(context.Background(), esdk.SuiteCommitKey, []esdk.EncryptedDataKey{theirs, mine}, nil); err != nil || len(key) != 32 {
			t.Errorf("keyring of %s: its own data key after another's: %x, %v", id, key, err)
		}
	}
}

// TestEncryptAnswerWithoutCiphertext: a GenerateDataKey or Encrypt answer
// without a CiphertextBlob fails the encryption: the message would hold
// a data key no one could ever decrypt, and its plaintext would be lost.
func TestEncryptAnswerWithoutCiphertext(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c, _ := answeringClient(t, map[string]map[string]any{"GenerateDataKey": {"KeyId": arn, "Plaintext": key}})
	if _, _, err := New(c, arn).GenerateDataKey(context.Background(), esdk.SuiteCommitKey, nil); err == nil || !strings.Contains(err.Error(), "no CiphertextBlob") {
		t.Errorf("GenerateDataKey answering no CiphertextBlob: %v, want a refusal", err)
	}
	c, _ = answeringClient(t, map[string]map[string]any{
		"GenerateDataKey": {"KeyId": arn, "Plaintext": key, "CiphertextBlob": []byte("blob")},
		"Encrypt":         {"KeyId": otherARN},
	})
	if _, _, err := New(c, arn, otherARN).GenerateDataKey(context.Background(), esdk.SuiteCommitKey, nil); err == nil || !strings.Contains(err.Error(), "no CiphertextBlob") {
		t.Errorf("Encrypt answering no CiphertextBlob: %v, want a refusal", err)
	}
}
