package e2e_test

// End-to-end tests of the audit trail: the real handler with an audit log
// in a temp dir, called through the aws-sdk-go-v2 KMS and IAM clients. The
// trail must hold exactly one CloudTrail-shaped record per call, in order,
// naming the request id the client saw, and never a plaintext, data key,
// ciphertext, key material or secret.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// newAuditedEnv is newKMSEnv with an audit trail: it returns the
// environment and the path of its audit log.
func newAuditedEnv(t testing.TB) (*kmsEnv, string) {
	t.Helper()
	return newAuditedEnvWith(t, nil)
}

// newAuditedEnvWith is newAuditedEnv whose service and directory use the
// store wrap returns for the real one (nil: the real one).
func newAuditedEnvWith(t testing.TB, wrap func(store.Store) store.Store) (*kmsEnv, string) {
	t.Helper()
	dirPath := t.TempDir()
	logPath := filepath.Join(dirPath, "audit.log")
	trail, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	return newEnvOnTrail(t, dirPath, wrap, trail), logPath
}

// newEnvOnTrail is newAuditedEnvWith with its key store in dirPath and its
// audit trail the log trail.
func newEnvOnTrail(t testing.TB, dirPath string, wrap func(store.Store) store.Store, trail *audit.Log) *kmsEnv {
	t.Helper()
	rk := make([]byte, 32)
	if _, err := rand.Read(rk); err != nil {
		t.Fatal(err)
	}
	clock := testsupport.NewClock(e2eStart)
	root, err := keys.NewRootKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(dirPath, "kms.db"), root)
	t.Cleanup(func() { st.Close() })
	var served store.Store = st
	if wrap != nil {
		served = wrap(st)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := identity.New(identity.Config{Store: served, RootKey: root, Region: e2eRegion, Regions: e2eRegions, Logger: logger})
	recorder := audit.NewLogRecorder(trail)
	svc, err := service.New(service.Config{Store: served, RootKey: root, Region: e2eRegion, Regions: e2eRegions, Now: clock.Now, Logger: logger, PrincipalID: dir.PrincipalID,
		Trail: recorder})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := identity.BootstrapRoot(context.Background(), st, root, e2eAccount)
	if err != nil {
		t.Fatal(err)
	}
	guard := &leakGuard{next: api.NewHandler(svc, dir, logger).WithAudit(recorder, e2eRegion)}
	srv := httptest.NewServer(guard)
	t.Cleanup(srv.Close)
	e := &kmsEnv{svc: svc, store: st, path: filepath.Join(dirPath, "kms.db"), srv: srv, clock: clock, rootKey: rk, guard: guard, root: root, creds: creds}
	e.client = e.clientWith(creds.ID, creds.Secret, "")
	t.Cleanup(func() { e.checkNoLeaks(t); guard.checkResponsesConform(t) })
	return e
}

// auditRecords reads every record of the log at path, with the raw event
// bytes, after checking that the chain verifies.
func auditRecords(t testing.TB, path string) ([]*audit.Record, []json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, problem, err := audit.Verify(bytes.NewReader(b))
	if err != nil || problem != nil {
		t.Fatalf("audit.Verify: %d records, problem %+v, err %v", n, problem, err)
	}
	var recs []*audit.Record
	var raws []json.RawMessage
	err = audit.Read(bytes.NewReader(b), func(r *audit.Record, raw json.RawMessage) error {
		recs = append(recs, r)
		raws = append(raws, append(json.RawMessage(nil), raw...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("Read gave %d records, Verify %d", len(recs), n)
	}
	return recs, raws
}

// errRequestID is the x-amzn-RequestId of a failed SDK call.
func errRequestID(t testing.TB, err error) string {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Fatalf("no request id on error %v", err)
	}
	return re.ServiceRequestID()
}

// errMessage is the message of a failed SDK call.
func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// wantRecord is what one call must have left in the trail.
type wantRecord struct {
	name, source string
	reqID        string
	identity     string // "root" or "unknown:<akid>"
	errorCode    string
	errorMessage string // the message the client got
	resource     string // key ARN; "" none; "?<arn>" none or this one
	readOnly     bool
	params       map[string]any // members that must be present with these values (JSON-decoded)
	absent       []string       // members that must not be present
}

func TestAuditTrailRecordsEveryCall(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	started := time.Now().UTC().Add(-time.Second)
	var want []wantRecord
	secrets := map[string][]byte{} // what must never reach the log

	// CreateKey
	ck, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("audited key")})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(ck.KeyMetadata.KeyId)
	keyARN := e.keyARN(keyID)
	want = append(want, wantRecord{name: "CreateKey", reqID: requestID(ck.ResultMetadata), resource: keyARN,
		params: map[string]any{"description": "audited key"}})

	// CreateAlias
	ca, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/audited"), TargetKeyId: aws.String(keyID)})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantRecord{name: "CreateAlias", reqID: requestID(ca.ResultMetadata), resource: "?" + keyARN,
		params: map[string]any{"aliasName": "alias/audited", "targetKeyId": keyID}})

	// DescribeKey by alias
	dk, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/audited")})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantRecord{name: "DescribeKey", reqID: requestID(dk.ResultMetadata), resource: keyARN, readOnly: true,
		params: map[string]any{"keyId": "alias/audited"}})

	// Encrypt with an encryption context
	pt := []byte("attack at dawn " + hex.EncodeToString(mustRandom(t, 12)))
	secrets["plaintext"] = pt
	ec := map[string]string{"purpose": "audit-test", "tenant": "t-42"}
	enc, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	secrets["ciphertext"] = enc.CiphertextBlob
	want = append(want, wantRecord{name: "Encrypt", reqID: requestID(enc.ResultMetadata), resource: keyARN, readOnly: true,
		params: map[string]any{"keyId": keyID, "encryptionContext": map[string]any{"purpose": "audit-test", "tenant": "t-42"}},
		absent: []string{"plaintext", "Plaintext"}})

	// Decrypt
	dec, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, pt) {
		t.Fatal("Decrypt returned another plaintext")
	}
	want = append(want, wantRecord{name: "Decrypt", reqID: requestID(dec.ResultMetadata), resource: keyARN, readOnly: true,
		params: map[string]any{"encryptionContext": map[string]any{"purpose": "audit-test", "tenant": "t-42"}},
		absent: []string{"ciphertextBlob", "CiphertextBlob"}})

	// Decrypt with a wrong context fails
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	expectAPIErrorCode(t, err, "InvalidCiphertextException")
	want = append(want, wantRecord{name: "Decrypt", reqID: errRequestID(t, err), errorCode: "InvalidCiphertextException", errorMessage: errMessage(err), resource: "?" + keyARN, readOnly: true,
		params: map[string]any{"encryptionContext": map[string]any{"purpose": "other"}}, absent: []string{"ciphertextBlob"}})

	// GenerateDataKey through the alias
	gdk, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/audited"), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	secrets["data key"] = gdk.Plaintext
	secrets["data key ciphertext"] = gdk.CiphertextBlob
	want = append(want, wantRecord{name: "GenerateDataKey", reqID: requestID(gdk.ResultMetadata), resource: keyARN, readOnly: true,
		params: map[string]any{"keyId": "alias/audited", "keySpec": "AES_256"}, absent: []string{"plaintext"}})

	// DisableKey
	dis, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantRecord{name: "DisableKey", reqID: requestID(dis.ResultMetadata), resource: "?" + keyARN,
		params: map[string]any{"keyId": keyID}})

	// Encrypt on the disabled key fails
	pt2 := []byte("second secret " + hex.EncodeToString(mustRandom(t, 12)))
	secrets["plaintext 2"] = pt2
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: pt2})
	expectAPIErrorCode(t, err, "DisabledException")
	want = append(want, wantRecord{name: "Encrypt", reqID: errRequestID(t, err), errorCode: "DisabledException", errorMessage: errMessage(err), resource: keyARN, readOnly: true,
		params: map[string]any{"keyId": keyARN}, absent: []string{"plaintext"}})

	// An unknown access key fails authentication
	const strangerKey = "AKIAZZZZZZZZZZZZZZZZ"
	strangerSecret := "stranger-secret-" + hex.EncodeToString(mustRandom(t, 12))
	secrets["stranger secret"] = []byte(strangerSecret)
	_, err = e.clientWith(strangerKey, strangerSecret, "").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	expectAPIErrorCode(t, err, "UnrecognizedClientException")
	want = append(want, wantRecord{name: "DescribeKey", reqID: errRequestID(t, err), identity: "unknown:" + strangerKey,
		errorCode: "UnrecognizedClientException", errorMessage: errMessage(err), resource: "?" + keyARN, readOnly: true, params: map[string]any{"keyId": keyID}})

	// IAM: CreateUser and CreateAccessKey (whose secret must not be logged)
	rootIAM := e.iamClient(e.creds.ID, e.creds.Secret, "")
	cu, err := rootIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("audit-alice")})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantRecord{name: "CreateUser", source: "iam.amazonaws.com", reqID: requestID(cu.ResultMetadata),
		params: map[string]any{"userName": "audit-alice"}})
	cak, err := rootIAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("audit-alice")})
	if err != nil {
		t.Fatal(err)
	}
	secrets["new user's secret"] = []byte(aws.ToString(cak.AccessKey.SecretAccessKey))
	want = append(want, wantRecord{name: "CreateAccessKey", source: "iam.amazonaws.com", reqID: requestID(cak.ResultMetadata),
		params: map[string]any{"userName": "audit-alice"}, absent: []string{"secretAccessKey"}})
	uak, err := rootIAM.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("audit-alice"),
		AccessKeyId: cak.AccessKey.AccessKeyId, Status: "Inactive"})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantRecord{name: "UpdateAccessKey", source: "iam.amazonaws.com", reqID: requestID(uak.ResultMetadata),
		params: map[string]any{"userName": "audit-alice", "accessKeyId": aws.ToString(cak.AccessKey.AccessKeyId), "status": "Inactive"}})

	recs, raws := auditRecords(t, logPath)
	if len(recs) != len(want) {
		for i, r := range recs {
			t.Logf("record %d: %s %s %s", i+1, r.EventSource, r.EventName, r.ErrorCode)
		}
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	eventIDs := map[string]bool{}
	for i, w := range want {
		r, raw := recs[i], raws[i]
		at := func(format string, args ...any) {
			t.Helper()
			t.Errorf("record %d (%s): "+format, append([]any{i + 1, w.name}, args...)...)
		}
		if r.Sequence != uint64(i+1) {
			at("sequence %d, want %d", r.Sequence, i+1)
		}
		if r.EventName != w.name {
			at("eventName %q", r.EventName)
		}
		source := w.source
		if source == "" {
			source = "kms.amazonaws.com"
		}
		if r.EventSource != source {
			at("eventSource %q, want %q", r.EventSource, source)
		}
		if w.reqID == "" || r.RequestID != w.reqID {
			at("requestID %q, the client saw %q", r.RequestID, w.reqID)
		}
		if r.ErrorCode != w.errorCode {
			at("errorCode %q, want %q", r.ErrorCode, w.errorCode)
		}
		if r.ErrorMessage != w.errorMessage {
			at("errorMessage %q, the client got %q", r.ErrorMessage, w.errorMessage)
		}
		if r.ReadOnly != w.readOnly {
			at("readOnly %v, want %v", r.ReadOnly, w.readOnly)
		}
		// Who
		ui := r.UserIdentity
		if akid, ok := strings.CutPrefix(w.identity, "unknown:"); ok {
			if ui.Type != "Unknown" || ui.AccessKeyID != akid || ui.ARN != "" || ui.AccountID != "" {
				at("userIdentity %+v, want Unknown with accessKeyId %s only", ui, akid)
			}
			if r.RecipientAccountID != "" {
				at("recipientAccountId %q for an unauthenticated call", r.RecipientAccountID)
			}
		} else {
			if ui.Type != "Root" || ui.ARN != "arn:aws:iam::"+e2eAccount+":root" || ui.AccountID != e2eAccount || ui.AccessKeyID != e.creds.ID {
				at("userIdentity %+v, want Root %s with access key %s", ui, e2eAccount, e.creds.ID)
			}
			if r.RecipientAccountID != e2eAccount {
				at("recipientAccountId %q", r.RecipientAccountID)
			}
		}
		// Which key
		switch {
		case strings.HasPrefix(w.resource, "?"):
			if len(r.Resources) > 0 && (r.Resources[0].ARN != w.resource[1:] || r.Resources[0].Type != "AWS::KMS::Key") {
				at("resources %+v, want none or %s", r.Resources, w.resource[1:])
			}
		case w.resource == "":
			if len(r.Resources) != 0 {
				at("resources %+v, want none", r.Resources)
			}
		default:
			if len(r.Resources) != 1 || r.Resources[0].ARN != w.resource || r.Resources[0].Type != "AWS::KMS::Key" || r.Resources[0].AccountID != e2eAccount {
				at("resources %+v, want [%s]", r.Resources, w.resource)
			}
		}
		// The rest of the envelope
		if r.EventVersion == "" || r.EventType != "AwsApiCall" || r.EventCategory != "Management" || !r.ManagementEvent {
			at("envelope: eventVersion %q eventType %q eventCategory %q managementEvent %v", r.EventVersion, r.EventType, r.EventCategory, r.ManagementEvent)
		}
		if r.AWSRegion != e2eRegion {
			at("awsRegion %q", r.AWSRegion)
		}
		if r.SourceIPAddress != "127.0.0.1" {
			at("sourceIPAddress %q", r.SourceIPAddress)
		}
		if !strings.Contains(r.UserAgent, "aws-sdk-go-v2") {
			at("userAgent %q", r.UserAgent)
		}
		if tm, err := time.Parse(audit.TimeFormat, r.EventTime); err != nil || tm.Before(started) || tm.After(time.Now().Add(time.Second)) {
			at("eventTime %q (test started %s)", r.EventTime, started.Format(audit.TimeFormat))
		}
		if !uuidRE.MatchString(r.EventID) || eventIDs[r.EventID] {
			at("eventID %q not a fresh UUID", r.EventID)
		}
		eventIDs[r.EventID] = true
		if string(r.ResponseElements) != "null" {
			at("responseElements %s, want null", r.ResponseElements)
		}
		// What was asked
		var params map[string]any
		if err := json.Unmarshal(r.RequestParameters, &params); err != nil {
			at("requestParameters %s: %v", r.RequestParameters, err)
		}
		for k, v := range w.params {
			got, _ := json.Marshal(params[k])
			exp, _ := json.Marshal(v)
			if !bytes.Equal(got, exp) {
				at("requestParameters.%s = %s, want %s (all: %s)", k, got, exp, r.RequestParameters)
			}
		}
		for _, k := range w.absent {
			if _, ok := params[k]; ok {
				at("requestParameters has %q: %s", k, r.RequestParameters)
			}
		}
		if bytes.Contains(bytes.ToLower(raw), []byte(`"plaintext"`)) || bytes.Contains(bytes.ToLower(raw), []byte(`"ciphertextblob"`)) {
			at("the event names a plaintext or ciphertext member: %s", raw)
		}
	}

	// The log file is private.
	if fi, err := os.Stat(logPath); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("audit log mode %v, want no group or other access", fi.Mode().Perm())
	}

	// No secret, in any usual encoding, anywhere in the file.
	logBytes, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	secrets["root key"] = e.rootKey
	secrets["root access key secret"] = []byte(e.creds.Secret)
	for i, m := range e.materials(t) {
		secrets["key material "+string(rune('0'+i))] = m
	}
	for name, s := range secrets {
		if len(s) == 0 {
			t.Errorf("secret %q is empty: the test did not capture it", name)
			continue
		}
		forms := append(secretForms(s), []byte(base64.URLEncoding.EncodeToString(s)), []byte(strings.ToUpper(hex.EncodeToString(s))))
		for _, f := range forms {
			if bytes.Contains(logBytes, f) {
				t.Errorf("the audit log contains the %s (as %q)", name, f)
				break
			}
		}
	}
}

// A key named by its bare id or an alias is as much "known" as one named
// by its ARN: CloudTrail records the key's ARN in resources for every
// call about a key, and `kms audit events --key` depends on it to find
// who disabled, scheduled for deletion or re-policied a key.
func TestAuditResourceForKeyNamedByIDOrAlias(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	keyID := e.newKey(t)
	keyARN := e.keyARN(keyID)
	e.createAlias(t, "alias/by-name", keyID)
	if _, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/by-name"), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "DisabledException")
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	recs, _ := auditRecords(t, logPath)
	for _, r := range recs[1:] { // after CreateKey
		if len(r.Resources) != 1 || r.Resources[0].ARN != keyARN {
			t.Errorf("record %d %s (errorCode %q, requestParameters %s): resources %+v, want [%s]",
				r.Sequence, r.EventName, r.ErrorCode, r.RequestParameters, r.Resources, keyARN)
		}
	}
}

// A record names the keys the operation itself resolved, and no other: a
// call refused before it resolved a key names none, even when another
// identifier form would have named one, and ReEncrypt names both keys.
func TestAuditNamesOnlyResolvedKeys(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	a, b := e.newKey(t), e.newKey(t)
	e.createAlias(t, "alias/x", a)
	ct := e.encrypt(t, a, []byte("secret"), nil).CiphertextBlob
	first := len(mustRecords(t, logPath))

	// EnableKey takes no alias: refused without resolving one.
	_, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String("alias/x")})
	expectAPIErrorCode(t, err, "NotFoundException")
	// A key id that names no key.
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")})
	expectAPIErrorCode(t, err, "NotFoundException")
	// ReEncrypt from a (named by the blob) to b (named by alias-free id).
	if _, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: ct, DestinationKeyId: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	// Decrypt names the key of the blob.
	if _, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct}); err != nil {
		t.Fatal(err)
	}
	// A wrong KeyId on Decrypt: the named key was resolved, the blob's was not used.
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, KeyId: aws.String(b)})
	expectAPIErrorCode(t, err, "IncorrectKeyException")

	recs := mustRecords(t, logPath)[first:]
	want := []struct {
		op   string
		keys []string
	}{
		{"EnableKey", nil},
		{"DescribeKey", nil},
		{"ReEncrypt", []string{e.keyARN(b), e.keyARN(a)}},
		{"Decrypt", []string{e.keyARN(a)}},
		{"Decrypt", []string{e.keyARN(b)}},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r := recs[i]
		var got []string
		for _, res := range r.Resources {
			got = append(got, res.ARN)
			if res.AccountID != e2eAccount || res.Type != "AWS::KMS::Key" {
				t.Errorf("%s: resource %+v", r.EventName, res)
			}
		}
		if r.EventName != w.op || !slices.Equal(got, w.keys) {
			t.Errorf("record %d: %s names %v, want %s naming %v", i, r.EventName, got, w.op, w.keys)
		}
	}
}

func mustRecords(t testing.TB, path string) []*audit.Record {
	recs, _ := auditRecords(t, path)
	return recs
}

// Concurrent calls each get one record; the chain still verifies and the
// sequence numbers are dense.
func TestAuditConcurrentCalls(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	keyID := e.newKey(t)
	const workers, each = 8, 25
	ids := make(chan string, workers*each)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				out, err := e.client.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("p")})
				if err != nil {
					errs <- err
					return
				}
				ids <- requestID(out.ResultMetadata)
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	recs, _ := auditRecords(t, logPath)
	if len(recs) != 1+workers*each {
		t.Fatalf("%d records, want %d", len(recs), 1+workers*each)
	}
	logged := map[string]int{}
	for i, r := range recs {
		if r.Sequence != uint64(i+1) {
			t.Errorf("record %d has sequence %d", i+1, r.Sequence)
		}
		logged[r.RequestID]++
	}
	for id := range ids {
		if logged[id] != 1 {
			t.Errorf("request %s appears %d times in the trail", id, logged[id])
		}
	}
}

// A caller that is not even authenticated must not be able to make the
// server write (and fsync) arbitrarily large records: the trail is written
// before every answer, so unbounded attacker-chosen fields let anyone fill
// the disk at wire speed. CloudTrail logs failed authentications without
// their request parameters and bounds the other fields; here, a record of
// an unauthenticated call must stay small whatever the request held.
func TestAuditUnauthenticatedRecordIsBounded(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	big := strings.Repeat("A", 200<<10)
	for _, tc := range []struct {
		name   string
		target string
		ua     string
		body   string
	}{
		{"huge request member", "TrentService.CreateKey", "probe", `{"Description":"` + big + `","Tags":[{"TagKey":"k","TagValue":"` + big + `"}]}`},
		{"huge User-Agent", "TrentService.CreateKey", big, `{}`},
		{"huge X-Amz-Target", "TrentService." + big, "probe", `{}`},
	} {
		r := e.rawRequest(t, "POST", "/", map[string]string{"X-Unsigned": "1", "X-Amz-Target": tc.target,
			"Content-Type": "application/x-amz-json-1.1", "User-Agent": tc.ua}, strings.NewReader(tc.body))
		if r.status/100 != 4 {
			t.Errorf("%s: status %d, want a 4xx refusal", tc.name, r.status)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d records for 3 unauthenticated calls", len(lines))
	}
	const limit = 16 << 10
	for i, ln := range lines {
		if len(ln) > limit {
			t.Errorf("record %d of an unauthenticated call is %d bytes (limit %d): %.300s...", i+1, len(ln), limit, ln)
		}
	}
}

// docs/audit.md: "Every call the server answers ... is recorded". A form
// request (IAM/STS) that the server refuses before it has read an Action
// is answered, so it must be recorded too, as the KMS protocol's early
// refusals (unknown operation, bad Content-Type, oversized body) are.
func TestAuditRecordsRefusedFormRequests(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	form := map[string]string{"X-Unsigned": "1", "Content-Type": "application/x-www-form-urlencoded"}
	var reqIDs []string
	for _, body := range []string{
		"Action=CreateUser&UserName=%zz&Version=2010-05-08", // not a valid form
		"Action=NoSuchAction&Version=2010-05-08",            // an unknown action
	} {
		r := e.rawRequest(t, "POST", "/", form, strings.NewReader(body))
		if r.status/100 != 4 {
			t.Fatalf("%q: status %d, want 4xx", body, r.status)
		}
		reqIDs = append(reqIDs, r.header.Get("X-Amzn-Requestid"))
	}
	// And the KMS protocol, for comparison: an unknown operation.
	r := e.rawCall(t, "NoSuchOperation", `{}`)
	reqIDs = append(reqIDs, r.header.Get("X-Amzn-Requestid"))

	recs, _ := auditRecords(t, logPath)
	logged := map[string]bool{}
	for _, rec := range recs {
		logged[rec.RequestID] = true
	}
	for i, id := range reqIDs {
		if !logged[id] {
			t.Errorf("refused request %d (x-amzn-RequestId %s) has no record; the trail has %d records", i+1, id, len(recs))
		}
	}
}

// An unauthenticated request's access key id comes from its
// Authorization header, at whatever length the client sent: requests
// each with a 60 KB Credential= must not add more than a few KiB each to
// the trail. A hundred show it as well as thousands: one record that kept
// the id would be thirty times the bound.
func TestAuditHugeCredentialIsBounded(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	const n = 100
	akid := strings.Repeat("A", 60<<10)
	auth := "AWS4-HMAC-SHA256 Credential=" + akid + "/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00"
	before := fileSize(t, logPath)
	for i := 0; i < n; i++ {
		r := e.rawRequest(t, "POST", "/", map[string]string{"X-Unsigned": "1", "X-Amz-Target": "TrentService.ListKeys",
			"Content-Type": "application/x-amz-json-1.1", "Authorization": auth, "X-Amz-Date": "20260101T000000Z"}, strings.NewReader(`{}`))
		if r.status/100 != 4 {
			t.Fatalf("status %d, want a 4xx refusal", r.status)
		}
	}
	grown := fileSize(t, logPath) - before
	t.Logf("%d unsigned requests with a %d-byte Credential added %d bytes to the trail (%d per record)", n, len(akid), grown, grown/int64(n))
	if per := grown / int64(n); per > 2048 {
		t.Errorf("%d bytes per record of an unauthenticated call, want at most 2048", per)
	}
	recs, _ := auditRecords(t, logPath)
	// Nor is such an id, without the shape of one, recorded at all.
	if got := recs[len(recs)-1].UserIdentity.AccessKeyID; got != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("recorded access key id %.40q... of %d bytes, want HIDDEN_DUE_TO_SECURITY_REASONS", got, len(got))
	}
}

// A signed caller's request parameters are bounded too: each string at
// 2 KiB, a key policy at 32 KiB.
func TestAuditSignedParamsAreBounded(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	big := strings.Repeat("d", 100<<10)
	r := e.rawCall(t, "CreateKey", `{"Description":"`+big+`","Tags":[{"TagKey":"k","TagValue":"`+big+`"}]}`)
	_ = r
	recs, raws := auditRecords(t, logPath)
	last := raws[len(raws)-1]
	if len(last) > 8<<10 {
		t.Errorf("record of a call with 200 KB of parameters is %d bytes, want under 8 KiB", len(last))
	}
	var p struct{ Description string }
	if err := json.Unmarshal(recs[len(recs)-1].RequestParameters, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Description) != 2048+len(audit.Truncated) || !strings.HasSuffix(p.Description, audit.Truncated) {
		t.Errorf("description recorded with %d bytes, want 2048 and the mark of the cut", len(p.Description))
	}
}

// A body near the 1 MiB limit, refused by validation, gives a record of at
// most 64 KiB of parameters whatever it holds: an array keeps its first 50
// elements and says how many it left out, a member too large for what is
// left is marked in its place, and invalid UTF-8 (six bytes each as
// written) does not multiply the size. An ordinary call's parameters are
// as they were.
func TestAuditParamsBoundedAsAWhole(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	key := e.newKey(t)
	ctx := context.Background()
	grantee := "arn:aws:iam::" + e2eAccount + ":root"
	if _, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(grantee),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt}}); err != nil {
		t.Fatal(err)
	}
	e.encrypt(t, key, []byte("x"), map[string]string{"purpose": "<test> & more"})

	token := `"` + strings.Repeat("\xff", 60) + `"`
	var sb strings.Builder
	sb.WriteString(`{"KeyId":"` + key + `","GrantTokens":[`)
	n := 0
	for sb.Len()+len(token)+3 < api.MaxBodyBytes {
		if n > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(token)
		n++
	}
	sb.WriteString(`]}`)
	tokensBody := sb.String()
	expectRawError(t, e.rawCall(t, "DescribeKey", tokensBody), http.StatusBadRequest, "ValidationException", "")

	sb.Reset()
	sb.WriteString(`{"KeyId":"` + key + `","Plaintext":"AA==","EncryptionContext":{`)
	for i := 0; sb.Len() < api.MaxBodyBytes-200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strconv.Itoa(i) + `":` + token)
	}
	sb.WriteString(`}}`)
	contextBody := sb.String()
	e.rawCall(t, "Encrypt", contextBody)

	recs, raws := auditRecords(t, logPath)
	if len(recs) < 4 {
		t.Fatalf("%d records", len(recs))
	}
	recs, raws = recs[len(recs)-4:], raws[len(raws)-4:]

	// The ordinary calls.
	if got, want := string(recs[0].RequestParameters), `{"keyId":"`+key+`","granteePrincipal":"`+grantee+`","operations":["Encrypt","Decrypt"]}`; got != want {
		t.Errorf("CreateGrant parameters %s, want %s", got, want)
	}
	if got, want := string(recs[1].RequestParameters), `{"keyId":"`+key+`","encryptionContext":{"purpose":"<test> & more"}}`; got != want {
		t.Errorf("Encrypt parameters %s, want %s", got, want)
	}

	// The grant tokens: the first 50, each as sent (invalid bytes as
	// U+FFFD), then how many were left out.
	t.Logf("a %d-byte body of %d grant tokens: a %d-byte record", len(tokensBody), n, len(raws[2]))
	if recs[2].ErrorCode != "ValidationException" || len(recs[2].RequestParameters) > 64<<10 || len(raws[2]) > 66<<10 {
		t.Errorf("record of %s (%s): %d bytes of parameters in %d bytes, want at most 64 KiB", recs[2].EventName, recs[2].ErrorCode, len(recs[2].RequestParameters), len(raws[2]))
	}
	var p struct {
		KeyID       string   `json:"keyId"`
		GrantTokens []string `json:"grantTokens"`
	}
	if err := json.Unmarshal(recs[2].RequestParameters, &p); err != nil {
		t.Fatal(err)
	}
	if p.KeyID != key || len(p.GrantTokens) != 51 || p.GrantTokens[50] != audit.MoreItems(n-50) || p.GrantTokens[0] != strings.Repeat("\ufffd", 60) {
		t.Errorf("keyId %q, %d grant tokens recorded, the first %q, the last %.40q; want %q, 51, 60 U+FFFD, %q",
			p.KeyID, len(p.GrantTokens), p.GrantTokens[0], p.GrantTokens[len(p.GrantTokens)-1], key, audit.MoreItems(n-50))
	}

	// An encryption context of 1 MiB: too large to keep, marked.
	t.Logf("a %d-byte body with an encryption context: a %d-byte record", len(contextBody), len(raws[3]))
	if len(raws[3]) > 66<<10 {
		t.Errorf("record of %s: %d bytes, want at most 66 KiB", recs[3].EventName, len(raws[3]))
	}
	if got, want := string(recs[3].RequestParameters), `{"keyId":"`+key+`","encryptionContext":"`+audit.Truncated+`"}`; got != want {
		t.Errorf("parameters %.300s, want %s", got, want)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Invalid UTF-8 and lone surrogates from any caller, signed or not, must
// not reach the trail as such: the record would not read back as written
// (a JSON string on the wire replaces invalid bytes), and verify over the
// endpoint would report a break that is not one.
func TestAuditInvalidUTF8IsCleaned(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	for _, body := range []string{
		"{\"KeyId\":\"k\",\"Plaintext\":\"AA==\",\"EncryptionContext\":{\"a\":\"\xff\xfe\"}}",
		`{"KeyId":"k","Plaintext":"AA==","EncryptionContext":{"a":"\ud800"}}`,
	} {
		e.rawRequest(t, "POST", "/", map[string]string{"X-Unsigned": "1", "X-Amz-Target": "TrentService.Encrypt",
			"Content-Type": "application/x-amz-json-1.1"}, strings.NewReader(body))
		e.rawCall(t, "Encrypt", body)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) || bytes.Contains(b, []byte(`\ud800`)) {
		t.Fatalf("the trail holds invalid UTF-8 or a lone surrogate:\n%s", b)
	}
	recs, _ := auditRecords(t, logPath)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for i, r := range recs {
		if string(r.RequestParameters) != "null" && !bytes.Contains(r.RequestParameters, []byte(`\ufffd`)) {
			t.Errorf("record %d: parameters %s, want the bad text as U+FFFD", i+1, r.RequestParameters)
		}
	}
}

// TestAuditRecordsMembersHoweverSpelled: a member name the operation
// decodes as KeyId (encoding/json folds the Kelvin sign to K, the long s
// to S) is recorded as keyId, so that a caller cannot keep what it asked
// for out of requestParameters by its spelling.
func TestAuditRecordsMembersHoweverSpelled(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	id := e.newKey(t)
	for _, body := range []string{
		`{"\u212aeyId":"` + id + `"}`,
		"{\"\xe2\x84\xaaeyId\":\"" + id + "\"}",
		`{"keyid":"` + id + `"}`,
	} {
		if r := e.rawCall(t, "DescribeKey", body); r.status != http.StatusOK {
			t.Fatalf("DescribeKey %s: %d %s", body, r.status, r.body)
		}
	}
	if r := e.rawCall(t, "TagResource", `{"KeyId":"`+id+`","Tag\u017f":[{"TagKey":"k","TagValue":"v"}]}`); r.status != http.StatusOK {
		t.Fatalf("TagResource: %d %s", r.status, r.body)
	}
	recs, _ := auditRecords(t, logPath)
	n := 0
	for _, r := range recs {
		var p struct {
			KeyID string            `json:"keyId"`
			Tags  []json.RawMessage `json:"tags"`
		}
		json.Unmarshal(r.RequestParameters, &p)
		switch r.EventName {
		case "DescribeKey":
			n++
			if p.KeyID != id {
				t.Errorf("DescribeKey record's requestParameters %s, want keyId %s", r.RequestParameters, id)
			}
		case "TagResource":
			n++
			if len(p.Tags) != 1 {
				t.Errorf("TagResource record's requestParameters %s, want its tag", r.RequestParameters)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d records of the 4 calls", n)
	}
}

// RetireGrant retires the grant of its token. A KeyId and GrantId sent
// beside the token, which the trail records, must name that grant:
// otherwise the record would show one grant retired while another was.
// A grant retired by its token names its key in the record's resources.
func TestAuditRetireGrantNamesTheGrantRetired(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	k1, k2 := e.newKey(t), e.newKey(t)
	grantee := "arn:aws:iam::" + e2eAccount + ":root"
	g1, tok1 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k1), GranteePrincipal: aws.String(grantee), Operations: grOps(types.GrantOperationEncrypt)})
	g2, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(grantee), Operations: grOps(types.GrantOperationEncrypt)})

	const msg = "The KeyId and GrantId must name the grant of the GrantToken, or be left out."
	for _, in := range []*kms.RetireGrantInput{
		{GrantToken: aws.String(tok1), KeyId: aws.String(k2), GrantId: aws.String(g2)},
		{GrantToken: aws.String(tok1), GrantId: aws.String(g2)},
		{GrantToken: aws.String(tok1), KeyId: aws.String(e.keyARN(k2)), GrantId: aws.String(g1)},
	} {
		_, err := e.client.RetireGrant(ctx, in)
		expectAPIError(t, err, "ValidationException", msg)
	}
	for _, k := range []string{k1, k2} {
		out, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k)})
		if err != nil || len(out.Grants) != 1 {
			t.Fatalf("grants of %s after refused retirements: %+v (%v), want 1", k, out, err)
		}
	}

	if _, err := e.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1), KeyId: aws.String(k1), GrantId: aws.String(g1)}); err != nil {
		t.Fatalf("RetireGrant with its own key and id: %v", err)
	}
	_, tok3 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k2), GranteePrincipal: aws.String(grantee), Operations: grOps(types.GrantOperationDecrypt)})
	if _, err := e.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok3)}); err != nil {
		t.Fatalf("RetireGrant by token alone: %v", err)
	}
	recs, _ := auditRecords(t, logPath)
	var retired []*audit.Record
	for _, r := range recs {
		if r.EventName == "RetireGrant" && r.ErrorCode == "" {
			retired = append(retired, r)
		}
	}
	if len(retired) != 2 {
		t.Fatalf("%d successful RetireGrant records, want 2", len(retired))
	}
	for i, want := range []string{e.keyARN(k1), e.keyARN(k2)} {
		if res := retired[i].Resources; len(res) != 1 || res[0].ARN != want {
			t.Errorf("RetireGrant %d: resources %+v, want %s", i+1, res, want)
		}
	}
}

// A record names only the members its operation reads: DryRun sent to
// an operation without a dry run (DisableKey, ScheduleKeyDeletion) must
// not show a key disabled or scheduled for deletion as a dry run, nor a
// KeyId sent to CreateKey an existing key as touched.
func TestAuditRecordsOnlyWhatTheOperationReads(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	id, victim := e.newKey(t), e.newKey(t)
	for _, c := range []struct{ op, body string }{
		{"DisableKey", `{"KeyId":"` + id + `","DryRun":true}`},
		{"ScheduleKeyDeletion", `{"KeyId":"` + id + `","PendingWindowInDays":7,"dryrun":true}`},
		{"CreateKey", `{"Description":"d","KeyId":"` + victim + `"}`},
		{"Encrypt", `{"KeyId":"` + victim + `","Plaintext":"AAAA","DryRun":true}`},
	} {
		if r := e.rawCall(t, c.op, c.body); r.status != http.StatusOK && !(c.op == "Encrypt" && r.status == http.StatusBadRequest) {
			t.Fatalf("%s: %d %s", c.op, r.status, r.body)
		}
	}
	if md := e.describe(t, id); md.KeyState != types.KeyStatePendingDeletion {
		t.Fatalf("key state %s: the calls were not dry runs", md.KeyState)
	}
	recs, _ := auditRecords(t, logPath)
	want := map[string]string{
		"DisableKey":          `{"keyId":"` + id + `"}`,
		"ScheduleKeyDeletion": `{"keyId":"` + id + `","pendingWindowInDays":7}`,
		"CreateKey":           `{"description":"d"}`,
		"Encrypt":             `{"keyId":"` + victim + `","dryRun":true}`,
	}
	for _, r := range recs {
		w, ok := want[r.EventName]
		if !ok || (r.EventName == "CreateKey" && !strings.Contains(string(r.RequestParameters), "description")) {
			continue
		}
		delete(want, r.EventName)
		if string(r.RequestParameters) != w {
			t.Errorf("%s record's requestParameters %s, want %s", r.EventName, r.RequestParameters, w)
		}
	}
	if len(want) != 0 {
		t.Errorf("no record of %v", want)
	}
}

// A body is JSON, whose only white space is space, tab, CR and LF: one
// that starts or ends with other white space (a vertical tab, a form
// feed, U+0085, U+00A0) is refused, as AWS refuses it, and changes
// nothing. Taken as the object inside it, the call would be made while
// its record, which reads the body as JSON, named none of its members:
// a key disabled with requestParameters null.
func TestAuditBodyWithOtherSpaceIsRefused(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	id := e.newKey(t)
	object := `{"KeyId":"` + id + `"}`
	for _, body := range []string{"\v" + object, "\f" + object, "\u0085" + object, "\u00a0" + object, object + "\v", object + "\u00a0"} {
		r := e.rawCall(t, "DisableKey", body)
		var refusal struct {
			Type string `json:"__type"`
		}
		if json.Unmarshal(r.body, &refusal); r.status != http.StatusBadRequest || refusal.Type != "SerializationException" {
			t.Errorf("DisableKey %q: %d %s, want SerializationException", body, r.status, r.body)
		}
	}
	if md := e.describe(t, id); md.KeyState != types.KeyStateEnabled {
		t.Fatalf("key state %s after refused calls", md.KeyState)
	}
	if r := e.rawCall(t, "DescribeKey", " \t\r\n"+object+"\n "); r.status != http.StatusOK {
		t.Fatalf("DescribeKey with JSON white space around its body: %d %s", r.status, r.body)
	}
	recs, _ := auditRecords(t, logPath)
	for _, r := range recs {
		if r.EventName == "DisableKey" && r.ErrorCode != "SerializationException" {
			t.Errorf("DisableKey record %s %s: the call was made", r.ErrorCode, r.RequestParameters)
		}
	}
}

// The settings that decide what a call does are in its record: the key
// spec of a CreateKey given by the deprecated CustomerMasterKeySpec, the
// dry-run modifiers of a Decrypt, whether a login profile's password must
// be reset.
func TestAuditRecordsEverySetting(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String("Alice-Pass-1234"), PasswordResetRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	id := e.newKey(t)
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), DryRun: aws.Bool(true),
		DryRunModifiers: []types.DryRunModifierType{types.DryRunModifierTypeIgnoreCiphertext}})
	expectAPIErrorCode(t, err, "DryRunOperationException")
	recs, _ := auditRecords(t, logPath)
	want := map[string]string{
		"CreateKey": `"customerMasterKeySpec":"RSA_2048"`,
		"Decrypt":   `"dryRunModifiers":["IGNORE_CIPHERTEXT"]`,
		// whether the new password must be changed at its first use
		"CreateLoginProfile": `"passwordResetRequired":"true"`,
	}
	for _, r := range recs {
		if w, ok := want[r.EventName]; ok && strings.Contains(string(r.RequestParameters), w) {
			delete(want, r.EventName)
		}
	}
	if len(want) != 0 {
		t.Errorf("no record with %v", want)
	}
}

// A member within a structure must be spelled exactly: the operation
// would read "Tag\u212aey" (a Kelvin sign for the K) as TagKey, and tag
// the key, while the record keeps the tag as sent, where a reader of the
// trail finds no TagKey. Top-level members may still be spelled in any
// case: their records name them canonically.
func TestAuditNestedMembersSpelledExactly(t *testing.T) {
	t.Parallel()
	e, _ := newAuditedEnv(t)
	id := e.newKey(t)
	for _, c := range []struct{ op, body, member string }{
		{"TagResource", `{"KeyId":"` + id + `","Tags":[{"Tag\u212aey":"team","TagValue":"red"}]}`, "Tag\u212aey"},
		{"TagResource", `{"KeyId":"` + id + `","Tags":[{"tagkey":"team","TagValue":"red"}]}`, "tagkey"},
		{"CreateKey", `{"Tags":[{"TagKey":"team","tagValue":"red"}]}`, "tagValue"},
		{"CreateGrant", `{"KeyId":"` + id + `","GranteePrincipal":"arn:aws:iam::` + e2eAccount + `:root","Operations":["Decrypt"],` +
			`"Constraints":{"EncryptionContextSub\u017fet":{"a":"1"}}}`, "EncryptionContextSub\u017fet"},
	} {
		r := e.rawCall(t, c.op, c.body)
		expectRawError(t, r, http.StatusBadRequest, "SerializationException",
			"The request body has the member '"+c.member+"' within a structure: such members must be spelled exactly.")
	}
	e.expectNoTagsOrGrants(t, id)
	if r := e.rawCall(t, "TagResource", `{"keyid":"`+id+`","tags":[{"TagKey":"team","TagValue":"red"}]}`); r.status != http.StatusOK {
		t.Errorf("top-level members in lower case: %d %s", r.status, r.body)
	}
}

// A caller whose access key id and secret are swapped (in its environment
// or credentials file) sends its secret access key where the id goes, and
// more often than not (one with no '/') the request parses: its record,
// of a call whose authentication failed, keeps the access key id only if
// it has the shape of one (AKIA or ASIA and 16 upper-case letters or
// digits, as every id this server issues), else HIDDEN_DUE_TO_SECURITY_REASONS,
// as the console's sign-in records keep the names tried.
func TestAuditHidesASecretSentAsTheAccessKeyID(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	secret := strings.NewReplacer("/", "x", "+", "y").Replace(e.creds.Secret)
	_, err := e.clientWith(secret, e.creds.ID, "").ListKeys(ctx, &kms.ListKeysInput{})
	expectAPIErrorCode(t, err, "UnrecognizedClientException")
	var ae smithy.APIError
	_, err = e.iamClient(secret, e.creds.ID, "").ListUsers(ctx, &iam.ListUsersInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidClientTokenId" {
		t.Fatalf("ListUsers with the secret as the access key id: %v", err)
	}
	_, err = e.stsClient(secret, e.creds.ID, "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidClientTokenId" {
		t.Fatalf("GetCallerIdentity with the secret as the access key id: %v", err)
	}
	const stranger = "AKIAZZZZZZZZZZZZZZZZ"
	_, err = e.clientWith(stranger, secret, "").ListKeys(ctx, &kms.ListKeysInput{})
	expectAPIErrorCode(t, err, "UnrecognizedClientException")

	recs, raws := auditRecords(t, logPath)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for i, r := range recs {
		want := "HIDDEN_DUE_TO_SECURITY_REASONS"
		if i == 3 {
			want = stranger
		}
		if r.UserIdentity.Type != "Unknown" || r.UserIdentity.AccessKeyID != want {
			t.Errorf("record %d (%s): identity %+v, want accessKeyId %s", i, r.EventName, r.UserIdentity, want)
		}
		if bytes.Contains(bytes.ToLower(raws[i]), bytes.ToLower([]byte(secret))) {
			t.Errorf("record %d (%s) holds the secret access key", i, r.EventName)
		}
	}
}
