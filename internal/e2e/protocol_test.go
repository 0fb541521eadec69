package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/api"
)

// The AWS JSON 1.1 protocol as seen with raw net/http: routing by
// X-Amz-Target, request decoding errors, the error body shape, headers and
// limits.

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	cases := []struct {
		name        string
		method      string
		path        string
		target      string // "" = header not sent
		contentType string // "" = header not sent
		body        string
		status      int
		typ         string
		msg         string // exact; "" = any non-empty
	}{
		{name: "unknown operation", target: "TrentService.Frobnicate", body: `{}`, status: 400, typ: "UnknownOperationException",
			msg: `Unknown operation "TrentService.Frobnicate".`},
		{name: "operation AWS does not have", target: "TrentService.CreateKeyStore", body: `{}`, status: 400, typ: "UnknownOperationException"},
		{name: "wrong target prefix", target: "DynamoDB_20120810.ListTables", body: `{}`, status: 400, typ: "UnknownOperationException"},
		{name: "operation without prefix", target: "Encrypt", body: `{}`, status: 400, typ: "UnknownOperationException"},
		{name: "target prefix only", target: "TrentService.", body: `{}`, status: 400, typ: "UnknownOperationException"},
		{name: "missing target", body: `{}`, status: 400, typ: "UnknownOperationException", msg: "The request has no X-Amz-Target header."},
		{name: "GET /", method: http.MethodGet, status: 400, typ: "UnknownOperationException"},
		{name: "GET / with target", method: http.MethodGet, target: "TrentService.ListKeys", status: 400, typ: "UnknownOperationException"},
		{name: "PUT /", method: http.MethodPut, target: "TrentService.ListKeys", body: `{}`, status: 400, typ: "UnknownOperationException"},
		{name: "GET /other", method: http.MethodGet, path: "/some/where", status: 400, typ: "UnknownOperationException"},
		{name: "malformed JSON", target: "TrentService.GenerateRandom", body: `{"NumberOfBytes": 4`, status: 400, typ: "SerializationException"},
		{name: "not JSON at all", target: "TrentService.GenerateRandom", body: `NumberOfBytes=4`, status: 400, typ: "SerializationException"},
		{name: "JSON array", target: "TrentService.GenerateRandom", body: `[{"NumberOfBytes":4}]`, status: 400, typ: "SerializationException"},
		{name: "JSON null", target: "TrentService.ListKeys", body: `null`, status: 400, typ: "SerializationException"},
		{name: "trailing garbage", target: "TrentService.GenerateRandom", body: `{"NumberOfBytes":4} x`, status: 400, typ: "SerializationException"},
		{name: "number as string", target: "TrentService.GenerateRandom", body: `{"NumberOfBytes":"4"}`, status: 400, typ: "SerializationException",
			msg: "Member 'NumberOfBytes' has the wrong type: expected a number, got a JSON string."},
		// The member's type is named as the API's model names it, not as Go does.
		{name: "list as string", target: "TrentService.CreateKey", body: `{"Tags":"x"}`, status: 400, typ: "SerializationException",
			msg: "Member 'Tags' has the wrong type: expected a list, got a JSON string."},
		{name: "map as list", target: "TrentService.Encrypt", body: `{"KeyId":"k","Plaintext":"AA==","EncryptionContext":[1]}`, status: 400, typ: "SerializationException",
			msg: "Member 'EncryptionContext' has the wrong type: expected a map, got a JSON array."},
		// A timestamp is epoch seconds, within the years an RFC 3339 date
		// can name.
		{name: "timestamp as string", target: "TrentService.ImportKeyMaterial",
			body:   `{"KeyId":"k","ImportToken":"AA==","EncryptedKeyMaterial":"AA==","ValidTo":"2030-01-01T00:00:00Z"}`,
			status: 400, typ: "SerializationException", msg: "Member 'ValidTo' has the wrong type: expected a timestamp (epoch seconds), got a JSON string."},
		{name: "timestamp past the year 9999", target: "TrentService.ImportKeyMaterial",
			body:   `{"KeyId":"k","ImportToken":"AA==","EncryptedKeyMaterial":"AA==","ValidTo":1e300}`,
			status: 400, typ: "SerializationException", msg: "Member 'ValidTo' has the wrong type: expected a timestamp (epoch seconds), got a JSON number 1e300."},
		{name: "fractional number", target: "TrentService.GenerateRandom", body: `{"NumberOfBytes":4.5}`, status: 400, typ: "SerializationException"},
		{name: "number overflowing int32", target: "TrentService.GenerateRandom", body: `{"NumberOfBytes":4294967297}`, status: 400, typ: "SerializationException"},
		{name: "string as number", target: "TrentService.DescribeKey", body: `{"KeyId":12}`, status: 400, typ: "SerializationException"},
		{name: "boolean as string", target: "TrentService.Encrypt", body: `{"KeyId":"x","Plaintext":"AA==","DryRun":"true"}`, status: 400, typ: "SerializationException"},
		{name: "map as list", target: "TrentService.Encrypt", body: `{"KeyId":"x","Plaintext":"AA==","EncryptionContext":["a"]}`, status: 400, typ: "SerializationException"},
		{name: "invalid base64", target: "TrentService.Encrypt", body: `{"KeyId":"x","Plaintext":"not*base64!"}`, status: 400, typ: "SerializationException"},
		{name: "base64 bad padding", target: "TrentService.Decrypt", body: `{"CiphertextBlob":"AAA"}`, status: 400, typ: "SerializationException"},
		{name: "text/plain", target: "TrentService.ListKeys", contentType: "text/plain", body: `{}`, status: 400, typ: "SerializationException"},
		{name: "form encoded", target: "TrentService.ListKeys", contentType: "application/x-www-form-urlencoded", body: `{}`, status: 400, typ: "SerializationException"},
		{name: "unparsable Content-Type", target: "TrentService.ListKeys", contentType: ";;", body: `{}`, status: 400, typ: "SerializationException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			path := c.path
			if path == "" {
				path = "/"
			}
			hdr := map[string]string{}
			if c.target != "" {
				hdr["X-Amz-Target"] = c.target
			}
			ct := c.contentType
			if ct == "" && method == http.MethodPost {
				ct = "application/x-amz-json-1.1"
			}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := e.rawRequest(t, method, path, hdr, body)
			expectRawError(t, r, c.status, c.typ, c.msg)
			if strings.Contains(strings.ToLower(string(r.body)), "<html") {
				t.Errorf("HTML error body: %s", r.body)
			}
		})
	}
}

func TestProtocolContentTypes(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	for _, ct := range []string{"", "application/x-amz-json-1.1", "application/x-amz-json-1.1; charset=utf-8", "application/x-amz-json-1.0", "application/json", "APPLICATION/X-AMZ-JSON-1.1"} {
		t.Run(ct, func(t *testing.T) {
			hdr := map[string]string{"X-Amz-Target": "TrentService.GenerateRandom"}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			r := e.rawRequest(t, http.MethodPost, "/", hdr, strings.NewReader(`{"NumberOfBytes":8}`))
			if r.status != 200 {
				t.Fatalf("Content-Type %q: %d %s", ct, r.status, r.body)
			}
			if got := r.header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
				t.Errorf("response Content-Type %q", got)
			}
		})
	}
}

func TestProtocolSuccessResponses(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newKey(t)

	r := e.rawCall(t, "DescribeKey", `{"KeyId":"`+id+`"}`)
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-amz-json-1.1" || r.header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("DescribeKey: %d, Content-Type %q, request id %q", r.status, r.header.Get("Content-Type"), r.header.Get("X-Amzn-Requestid"))
	}
	if r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("Content-Length %q for %d bytes", r.header.Get("Content-Length"), len(r.body))
	}

	// Operations without output members answer 200 with an empty body.
	for _, op := range []string{"DisableKey", "EnableKey"} {
		r := e.rawCall(t, op, `{"KeyId":"`+id+`"}`)
		if r.status != 200 || len(r.body) != 0 || r.header.Get("Content-Type") != "application/x-amz-json-1.1" || r.header.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s: %d %q Content-Type %q request id %q", op, r.status, r.body, r.header.Get("Content-Type"), r.header.Get("X-Amzn-Requestid"))
		}
	}

	// Lists always carry Truncated, and NextMarker only when truncated.
	r = e.rawCall(t, "ListKeys", `{}`)
	m := r.json(t)
	if m["Truncated"] != false || m["Keys"] == nil {
		t.Errorf("ListKeys: %s", r.body)
	}
	if _, ok := m["NextMarker"]; ok {
		t.Errorf("NextMarker in an untruncated list: %s", r.body)
	}
	r = e.rawCall(t, "ListAliases", `{}`)
	if m := r.json(t); m["Truncated"] != false || m["Aliases"] == nil {
		t.Errorf("ListAliases of none: %s", r.body)
	}
	r = e.rawCall(t, "ListResourceTags", `{"KeyId":"`+id+`"}`)
	if m := r.json(t); m["Truncated"] != false || m["Tags"] == nil {
		t.Errorf("ListResourceTags of none: %s", r.body)
	}

	// Unknown members are ignored, as AWS does.
	r = e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":4,"Bogus":{"x":[1,2]}}`)
	if r.status != 200 {
		t.Errorf("unknown member: %d %s", r.status, r.body)
	}

	// HEAD and GET /healthz.
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r := e.rawRequest(t, method, "/healthz", nil, nil)
		if r.status != 200 {
			t.Errorf("%s /healthz: %d %s", method, r.status, r.body)
		}
	}
}

func TestProtocolEmptyBody(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	for _, body := range []string{"", "  \n", "{}"} {
		// An empty body is {}: CreateKey makes a default key ...
		r := e.rawCall(t, "CreateKey", body)
		if r.status != 200 {
			t.Fatalf("CreateKey with body %q: %d %s", body, r.status, r.body)
		}
		km, _ := r.json(t)["KeyMetadata"].(map[string]any)
		if km["KeySpec"] != "SYMMETRIC_DEFAULT" || km["KeyState"] != "Enabled" {
			t.Errorf("CreateKey with body %q: %s", body, r.body)
		}
		// ... and GenerateRandom misses its NumberOfBytes.
		expectRawError(t, e.rawCall(t, "GenerateRandom", body), 400, "ValidationException", "NumberOfBytes is required.")
		expectRawError(t, e.rawCall(t, "DescribeKey", body), 400, "ValidationException",
			"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	// No body at all (no Content-Length either).
	r := e.rawRequest(t, http.MethodPost, "/", map[string]string{"X-Amz-Target": "TrentService.ListKeys"}, nil)
	if r.status != 200 {
		t.Errorf("ListKeys without a body: %d %s", r.status, r.body)
	}
}

// onlyReader hides the length of a reader, so the request is chunked.
type onlyReader struct{ io.Reader }

func TestProtocolBodyLimit(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	hdr := map[string]string{"X-Amz-Target": "TrentService.GenerateRandom", "Content-Type": "application/x-amz-json-1.1"}
	// Exactly MaxBodyBytes is accepted: a valid request padded with spaces.
	valid := `{"NumberOfBytes":4}`
	exact := valid + strings.Repeat(" ", api.MaxBodyBytes-len(valid))
	if r := e.rawRequest(t, http.MethodPost, "/", hdr, strings.NewReader(exact)); r.status != 200 {
		t.Errorf("body of exactly %d bytes: %d %s", api.MaxBodyBytes, r.status, r.body)
	}
	if r := e.rawRequest(t, http.MethodPost, "/", hdr, onlyReader{strings.NewReader(exact)}); r.status != 200 {
		t.Errorf("chunked body of exactly %d bytes: %d %s", api.MaxBodyBytes, r.status, r.body)
	}
	over := exact + " "
	for name, body := range map[string]io.Reader{
		"one byte over":          strings.NewReader(over),
		"one byte over, chunked": onlyReader{strings.NewReader(over)},
		"2 MiB":                  bytes.NewReader(bytes.Repeat([]byte(" "), 2<<20)),
		"2 MiB, chunked":         onlyReader{bytes.NewReader(bytes.Repeat([]byte(" "), 2<<20))},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.rawRequest(t, http.MethodPost, "/", hdr, body)
			expectRawError(t, r, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "")
		})
	}
	// The server still works afterwards.
	if r := e.rawCall(t, "GenerateRandom", valid); r.status != 200 {
		t.Errorf("after oversized requests: %d %s", r.status, r.body)
	}
}

// TestProtocolConcurrentCrypto hammers Encrypt and Decrypt from 16
// goroutines through the SDK (100 round trips, 200 requests, each) over a
// few keys and checks that every ciphertext decrypts to its plaintext under
// its key and context.
func TestProtocolConcurrentCrypto(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const workers, rounds = 16, 100
	keyIDs := []string{e.newKey(t), e.newKey(t), e.newKey(t)}
	e.createAlias(t, "alias/hot", keyIDs[0])
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				key := keyIDs[(w+i)%len(keyIDs)]
				ident := key
				if i%4 == 0 && key == keyIDs[0] {
					ident = "alias/hot"
				}
				pt := []byte(fmt.Sprintf("worker %d round %d", w, i))
				ec := map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)}
				enc, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(ident), Plaintext: pt, EncryptionContext: ec})
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: Encrypt: %w", w, i, err)
					return
				}
				if aws.ToString(enc.KeyId) != e.keyARN(key) {
					errs <- fmt.Errorf("worker %d round %d: encrypted under %s, want %s", w, i, aws.ToString(enc.KeyId), key)
					return
				}
				in := &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}
				if i%2 == 1 {
					in.KeyId = aws.String(key)
				}
				dec, err := e.client.Decrypt(ctx, in)
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: Decrypt: %w", w, i, err)
					return
				}
				if !bytes.Equal(dec.Plaintext, pt) || aws.ToString(dec.KeyId) != e.keyARN(key) {
					errs <- fmt.Errorf("worker %d round %d: decrypted %q under %s", w, i, dec.Plaintext, aws.ToString(dec.KeyId))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.guard.count(); n < workers*rounds*2 {
		t.Errorf("server saw %d requests, want at least %d", n, workers*rounds*2)
	}
}

// A storage failure is KMSInternalException with HTTP 500 (which SDKs
// retry) and a generic message that tells nothing of the cause.
func TestProtocolInternalError(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	warm := e.newKey(t)
	blob := e.encrypt(t, warm, []byte("cached"), nil).CiphertextBlob
	e.storeClosed = true
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	const msg = "An internal error occurred. Retry the request."
	r := e.rawCall(t, "CreateKey", `{}`)
	expectRawError(t, r, http.StatusInternalServerError, "KMSInternalException", msg)
	for _, word := range []string{"bolt", "closed", "database", "store"} {
		if strings.Contains(strings.ToLower(string(r.body)), word) {
			t.Errorf("internal error body reveals %q: %s", word, r.body)
		}
	}

	before := e.guard.count()
	_, err := e.client.ListKeys(context.Background(), &kms.ListKeysInput{})
	var ie *types.KMSInternalException
	if !errors.As(err, &ie) || ie.ErrorMessage() != msg {
		t.Errorf("ListKeys on a closed store: %v, want KMSInternalException %q", err, msg)
	}
	if s := httpStatus(err); s != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", s)
	}
	if n := e.guard.count() - before; n != 1 {
		t.Errorf("the client sent %d requests with RetryMaxAttempts 1", n)
	}
	// Keys already in memory keep working for cryptography.
	if got := e.decrypt(t, blob, nil).Plaintext; string(got) != "cached" {
		t.Errorf("decrypt from the cache: %q", got)
	}
}

// Observed wire details that differ from AWS are recorded in the report;
// these pin down what the server does with odd but valid JSON.
func TestProtocolJSONDetails(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	// A repeated number or string: the last one wins, as with most JSON
	// parsers (a repeated map or structure is refused:
	// TestRepeatedMembersRefused).
	r := e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":1025,"NumberOfBytes":3}`)
	if r.status != 200 {
		t.Errorf("duplicate member: %d %s", r.status, r.body)
	}
	// Escaped strings are decoded.
	id := e.newKey(t)
	r = e.rawCall(t, "DescribeKey", `{"KeyId":"`+strings.ReplaceAll(id, "-", `\u002d`)+`"}`)
	if r.status != 200 {
		t.Errorf("escaped key id: %d %s", r.status, r.body)
	}
	// Blobs accept standard base64 with padding.
	r = e.rawCall(t, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"aGk="}`)
	if r.status != 200 {
		t.Fatalf("Encrypt: %d %s", r.status, r.body)
	}
	ct, _ := r.json(t)["CiphertextBlob"].(string)
	r = e.rawCall(t, "Decrypt", `{"CiphertextBlob":"`+ct+`"}`)
	if p, _ := r.json(t)["Plaintext"].(string); r.status != 200 || p != "aGk=" {
		t.Errorf("Decrypt: %d %s", r.status, r.body)
	}
}

// State changes are visible to every request that starts after the change
// returned, even while other goroutines keep the key hot in the cache.
func TestProtocolStateChangesUnderLoad(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.createAlias(t, "alias/busy", id)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Errors are expected while the key is disabled.
				e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/busy"), Plaintext: []byte("x")})
			}
		}()
	}
	for round := range 10 {
		e.disable(t, id)
		_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/busy"), Plaintext: []byte("x")})
		if err == nil {
			t.Errorf("round %d: Encrypt succeeded after DisableKey returned", round)
		}
		if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/busy"), Plaintext: []byte("x")}); err != nil {
			t.Errorf("round %d: Encrypt failed after EnableKey returned: %v", round, err)
		}
	}
	close(stop)
	wg.Wait()
}

// Racing writers: exactly one of several identical CreateAlias or
// ScheduleKeyDeletion requests wins.
func TestProtocolConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const n = 8
	targets := make([]string, n)
	for i := range targets {
		targets[i] = e.newKey(t)
	}
	run := func(call func(i int) error) (wins int, codes map[string]int) {
		codes = map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := call(i)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
					return
				}
				var ae interface{ ErrorCode() string }
				if errors.As(err, &ae) {
					codes[ae.ErrorCode()]++
				} else {
					codes[err.Error()]++
				}
			}()
		}
		wg.Wait()
		return wins, codes
	}
	wins, codes := run(func(i int) error {
		_, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/race"), TargetKeyId: aws.String(targets[i])})
		return err
	})
	if wins != 1 || codes["AlreadyExistsException"] != n-1 {
		t.Errorf("CreateAlias race: %d wins, errors %v", wins, codes)
	}
	if l := e.listAllAliases(t, nil); len(l) != 1 {
		t.Errorf("%d aliases after the race", len(l))
	}
	wins, codes = run(func(int) error {
		_, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(targets[0]), PendingWindowInDays: aws.Int32(7)})
		return err
	})
	if wins != 1 || codes["KMSInvalidStateException"] != n-1 {
		t.Errorf("ScheduleKeyDeletion race: %d wins, errors %v", wins, codes)
	}
	wins, codes = run(func(i int) error {
		_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(targets[1]), Tags: nTags(1, fmt.Sprintf("w%d-", i))})
		return err
	})
	tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(targets[1])})
	if err != nil {
		t.Fatal(err)
	}
	if wins != n || len(tags.Tags) != n {
		t.Errorf("concurrent TagResource: %d wins (%v), %d tags kept; no update may be lost", wins, codes, len(tags.Tags))
	}
}
