package e2e_test

// End-to-end tests of what a hostile caller can do with the wire itself:
// replay a signature under another operation, or send text that is not
// Unicode. (Slow and unfinished bodies: body_test.go and the binary's
// tests in cmd/kms.)

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// A signature that leaves X-Amz-Target out could be replayed as any other
// operation on the same body: a DescribeKey as a DisableKey.
func TestAuthOperationMustBeSigned(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	keyID := aws.ToString(e.createKey(t, &kms.CreateKeyInput{}).KeyId)
	body := fmt.Sprintf(`{"KeyId":%q}`, keyID)

	t.Run("replayed under another target", func(t *testing.T) {
		// The SDK's signer signs what the request has: sign a request
		// without X-Amz-Target, then name the operation.
		req := e.kmsRequest(t, "DescribeKey", body)
		req.Header.Del("X-Amz-Target")
		signWith(t, req, body, e.rootSigning())
		req.Header.Set("X-Amz-Target", "TrentService.DisableKey")
		r := e.send(t, req)
		expectRawError(t, r, http.StatusBadRequest, "IncompleteSignatureException", "")
		if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "X-Amz-Target") {
			t.Errorf("message %q does not name the unsigned header", msg)
		}
	})
	t.Run("hand-signed without the target", func(t *testing.T) {
		req := e.kmsRequest(t, "DisableKey", body)
		handSign(t, req, body, e.rootSigning(), "content-type", "x-amz-date")
		expectRawError(t, e.send(t, req), http.StatusBadRequest, "IncompleteSignatureException", "")
	})
	t.Run("hand-signed without the content type", func(t *testing.T) {
		req := e.kmsRequest(t, "DisableKey", body)
		handSign(t, req, body, e.rootSigning(), "x-amz-date", "x-amz-target")
		expectRawError(t, e.send(t, req), http.StatusBadRequest, "IncompleteSignatureException", "")
	})
	t.Run("signed target, changed after signing", func(t *testing.T) {
		req := e.kmsRequest(t, "DescribeKey", body)
		signWith(t, req, body, e.rootSigning())
		req.Header.Set("X-Amz-Target", "TrentService.DisableKey")
		expectRawError(t, e.send(t, req), http.StatusBadRequest, "InvalidSignatureException", msgBadSignature)
	})
	t.Run("two targets, both signed", func(t *testing.T) {
		// The signature covers both, joined by a comma: read as the first,
		// they would name one operation here and another to a proxy in
		// front that reads the last. Joined, they name none.
		req := e.kmsRequest(t, "DisableKey", body)
		req.Header.Add("X-Amz-Target", "TrentService.DescribeKey")
		signWith(t, req, body, e.rootSigning())
		expectRawError(t, e.send(t, req), http.StatusBadRequest, "UnknownOperationException",
			`Unknown operation "TrentService.DisableKey,TrentService.DescribeKey".`)
	})
	t.Run("two content types, both signed", func(t *testing.T) {
		req := e.kmsRequest(t, "DisableKey", body)
		req.Header.Add("Content-Type", "application/x-amz-json-1.0")
		signWith(t, req, body, e.rootSigning())
		expectRawError(t, e.send(t, req), http.StatusBadRequest, "SerializationException", "")
	})
	out, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Errorf("key state %s after refused replays, want Enabled", out.KeyMetadata.KeyState)
	}
}

// An encryption context binds exactly one string per value: text that is
// not Unicode is refused rather than read as U+FFFD.
func TestEncryptionContextMustBeUnicode(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	keyID := aws.ToString(e.createKey(t, &kms.CreateKeyInput{}).KeyId)
	pt := base64.StdEncoding.EncodeToString([]byte("secret"))

	rawEncrypt := func(t *testing.T, context string) rawResponse {
		body := fmt.Sprintf(`{"KeyId":%q,"Plaintext":%q,"EncryptionContext":{"a":%s}}`, keyID, pt, context)
		req := e.kmsRequest(t, "Encrypt", body)
		signWith(t, req, body, e.rootSigning())
		return e.send(t, req)
	}
	const want = "1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Member must contain only valid Unicode text (UTF-8, with no unpaired surrogate escapes)"
	for _, tc := range []struct{ name, value string }{
		{"lone high surrogate", `"\ud800"`},
		{"lone low surrogate", `"\udfff"`},
		{"high surrogate then a letter", `"\ud800x"`},
		{"high surrogate then a non-surrogate escape", `"\ud800\u0041"`},
		{"raw 0xff", "\"\xff\""},
		{"raw 0xff 0xfe", "\"\xff\xfe\""},
		{"a cut UTF-8 sequence", "\"\xe2\x82\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectRawError(t, rawEncrypt(t, tc.value), http.StatusBadRequest, "ValidationException", want)
		})
	}

	// A real U+FFFD and a surrogate pair are text like any other, and bind
	// as themselves.
	for _, tc := range []struct{ name, wire, value string }{
		{"U+FFFD itself", `"\ufffd"`, "\ufffd"},
		{"a surrogate pair", `"\ud83d\ude00"`, "😀"},
		{"escaped backslash before u", `"\\ud800"`, `\ud800`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawEncrypt(t, tc.wire)
			if r.status != http.StatusOK {
				t.Fatalf("Encrypt: %d %s", r.status, r.body)
			}
			blob, err := base64.StdEncoding.DecodeString(r.json(t)["CiphertextBlob"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": tc.value}}); err != nil {
				t.Errorf("Decrypt with the same text: %v", err)
			}
			if tc.value != "\ufffd" {
				_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "\ufffd"}})
				expectAPIError(t, err, "InvalidCiphertextException", "")
			}
		})
	}
	// A context made of U+FFFD does not open with a lone surrogate in its
	// place.
	out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x"), EncryptionContext: map[string]string{"a": "\ufffd"}})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"CiphertextBlob":%q,"EncryptionContext":{"a":"\udfff"}}`, base64.StdEncoding.EncodeToString(out.CiphertextBlob))
	req := e.kmsRequest(t, "Decrypt", body)
	signWith(t, req, body, e.rootSigning())
	expectRawError(t, e.send(t, req), http.StatusBadRequest, "ValidationException", want)
}

// encoding/json reads a member given twice into what it decoded the first
// time: maps gain the second's pairs, structures keep what the second
// leaves out. A ciphertext would be bound to a context, a grant
// constrained, a key tagged, by more than the trail (which keeps a
// member's last value) shows; and a null after a value left the value in
// place (a lockout check bypassed that the trail records as null). Such a
// body is refused and changes nothing; a repeated string or number, none
// null, is still read as its last value.
func TestRepeatedMembersRefused(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	id := e.newKey(t)
	key := `"KeyId":"` + id + `"`
	for _, c := range []struct{ op, body, member string }{
		{"Encrypt", `{` + key + `,"Plaintext":"AAAA","EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}}`, "EncryptionContext"},
		{"Encrypt", `{` + key + `,"Plaintext":"AAAA","EncryptionContext":{"a":"1"},"encryptioncontext":{"b":"2"}}`, "encryptioncontext"},
		{"TagResource", `{` + key + `,"Tags":[{"TagKey":"a","TagValue":"v"}],"Tags":[{"TagKey":"b"}]}`, "Tags"},
		{"TagResource", `{` + key + `,"Tags":[{"TagKey":"a","TagValue":"v"}],"Tag\u017f":[{"TagKey":"b"}]}`, "Tag\u017f"},
		{"PutKeyPolicy", `{` + key + `,"Policy":"{}","BypassPolicyLockoutSafetyCheck":true,"BypassPolicyLockoutSafetyCheck":null}`, "BypassPolicyLockoutSafetyCheck"},
		{"DisableKey", `{"KeyId":null,` + key + `}`, "KeyId"},
		{"Encrypt", `{` + key + `,"Plaintext":"AAAA","EncryptionContext":{"a":"1","a":null}}`, "a"},
		{"CreateGrant", `{` + key + `,"GranteePrincipal":"arn:aws:iam::` + e2eAccount + `:root","Operations":["Decrypt"],` +
			`"Constraints":{"EncryptionContextSubset":{"a":"1"}},"Constraints":{"EncryptionContextSubset":{"b":"2"}}}`, "Constraints"},
	} {
		r := e.rawCall(t, c.op, c.body)
		expectRawError(t, r, http.StatusBadRequest, "SerializationException", "The request body has the member '"+c.member+"' more than once.")
	}
	// A context key in two cases is two keys, as on AWS.
	if r := e.rawCall(t, "Encrypt", `{`+key+`,"Plaintext":"AAAA","EncryptionContext":{"a":"1","A":"2"}}`); r.status != http.StatusOK {
		t.Fatalf("Encrypt with keys a and A: %d %s", r.status, r.body)
	}

	e.expectNoTagsOrGrants(t, id)
	if md := e.describe(t, id); md.KeyState != types.KeyStateEnabled {
		t.Errorf("key state %s, want Enabled", md.KeyState)
	}
	recs, _ := auditRecords(t, logPath)
	refused := 0
	for _, r := range recs {
		if r.ErrorCode == "SerializationException" {
			refused++
		}
	}
	if refused != 8 {
		t.Errorf("%d refusals in the trail, want 8", refused)
	}
}
