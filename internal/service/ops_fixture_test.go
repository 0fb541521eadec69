package service_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// The operation tests call the service directly, as the protocol layer
// does, through its exported API only. Each builds a fixture: a service on
// a fresh store, with a clock the test moves by hand.

const (
	acctA  = "111122223333"
	acctB  = "444455556666"
	region = "us-east-1"
)

type fixture struct {
	t   testing.TB
	ctx context.Context
	svc *service.Service
	st  store.Store
	rk  *keys.RootKey
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	bs, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	material := make([]byte, 32)
	rand.Read(material)
	rk, err := keys.NewRootKey(material)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), st: bs, rk: rk, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.svc = f.newService(service.Config{})
	return f
}

// newService builds another service on the fixture's store, root key and
// clock, with the other settings of cfg.
func (f *fixture) newService(cfg service.Config) *service.Service {
	f.t.Helper()
	cfg.Store, cfg.RootKey, cfg.Region = f.st, f.rk, region
	cfg.Now = func() time.Time { return f.now }
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := service.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

const day = 24 * time.Hour

func (f *fixture) advance(d time.Duration) { f.now = f.now.Add(d) }

// accountRoot is the root of an account.
func accountRoot(account string) service.Caller {
	arn := "arn:aws:iam::" + account + ":root"
	return service.Caller{AccountID: account, ARN: arn, Root: true,
		Principal: policy.Principal{ARN: arn, Account: account, UserID: account}}
}

// iamUser is an IAM user of an account with the given identity policies.
func iamUser(t *testing.T, account, name string, identityPolicies ...string) service.Caller {
	t.Helper()
	arn := "arn:aws:iam::" + account + ":user/" + name
	c := service.Caller{AccountID: account, ARN: arn,
		Principal: policy.Principal{ARN: arn, Account: account, UserID: "AIDA" + name, Username: name}}
	for _, doc := range identityPolicies {
		p, err := policy.ParseIdentity(doc)
		if err != nil {
			t.Fatalf("identity policy: %v", err)
		}
		c.Policies = append(c.Policies, p)
	}
	return c
}

// allowAll is an identity policy that allows every KMS action.
const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

func identityAllow(actions ...string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%s,"Resource":"*"}]}`, jsonList(actions))
}

func jsonList(items []string) string {
	s := "["
	for i, it := range items {
		if i > 0 {
			s += ","
		}
		s += `"` + it + `"`
	}
	return s + "]"
}

var rootA = accountRoot(acctA)

func keyARN(account, id string) string { return "arn:aws:kms:" + region + ":" + account + ":key/" + id }

func int32p(n int32) *int32 { return &n }
func strp(s string) *string { return &s }

// createKey creates a key as the root of account A and returns its id.
func (f *fixture) createKey(in kmsapi.CreateKeyInput) string {
	f.t.Helper()
	return f.createKeyAs(rootA, in)
}

func (f *fixture) createKeyAs(c service.Caller, in kmsapi.CreateKeyInput) string {
	f.t.Helper()
	out, err := f.svc.CreateKey(f.ctx, c, &in)
	if err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata.KeyID
}

func (f *fixture) describe(id string) *kmsapi.KeyMetadata {
	f.t.Helper()
	out, err := f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: id})
	if err != nil {
		f.t.Fatalf("DescribeKey: %v", err)
	}
	return out.KeyMetadata
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// must2 is must for calls that also return a result.
func (f *fixture) must2(_ any, err error) {
	f.t.Helper()
	f.must(err)
}

// snapshot is every record in the store, to show that a refused call
// changed nothing.
func (f *fixture) snapshot() map[string]string {
	f.t.Helper()
	m := map[string]string{}
	err := f.st.View(f.ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) { m[string(k)] = string(v); return true, nil })
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func sameRecords(a, b map[string]string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

var codeNames = map[fault.Code]string{
	fault.Internal: "Internal", fault.Validation: "Validation", fault.NotFound: "NotFound",
	fault.Disabled: "Disabled", fault.InvalidState: "InvalidState", fault.InvalidCiphertext: "InvalidCiphertext",
	fault.IncorrectKey: "IncorrectKey", fault.InvalidKeyUsage: "InvalidKeyUsage", fault.AlreadyExists: "AlreadyExists",
	fault.LimitExceeded: "LimitExceeded", fault.UnsupportedOperation: "UnsupportedOperation",
	fault.InvalidAliasName: "InvalidAliasName", fault.InvalidArn: "InvalidArn", fault.InvalidMarker: "InvalidMarker",
	fault.Tag: "Tag", fault.DryRun: "DryRun", fault.NotAuthorized: "NotAuthorized",
	fault.AccessDenied: "AccessDenied", fault.MalformedPolicyDocument: "MalformedPolicyDocument",
	fault.InvalidGrantToken: "InvalidGrantToken", fault.IncorrectKeyMaterial: "IncorrectKeyMaterial",
	fault.InvalidImportToken: "InvalidImportToken", fault.ExpiredImportToken: "ExpiredImportToken",
	fault.Conflict: "Conflict", fault.InvalidGrantID: "InvalidGrantID", fault.InvalidSignature: "InvalidSignature",
	fault.InvalidMac: "InvalidMac",
}

func codeName(c fault.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Code(%d)", c)
}

// wantErr fails unless err is a service error of code whose message is
// msg; msg "*" accepts any message.
func wantErr(t *testing.T, err error, code fault.Code, msg string) {
	t.Helper()
	var e *fault.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a %s error %q", err, codeName(code), msg)
	}
	if e.Code != code || (msg != "*" && e.Message != msg) {
		t.Fatalf("got %s %q\nwant %s %q", codeName(e.Code), e.Message, codeName(code), msg)
	}
}

// deniedMsg is AWS's AccessDeniedException message.
func deniedMsg(caller service.Caller, action, resource, why string) string {
	return "User: " + caller.ARN + " is not authorized to perform: " + action + " on resource: " + resource + " " + why
}

func noResourcePolicy(action string) string {
	return "because no resource-based policy allows the " + action + " action"
}

func noIdentityPolicy(action string) string {
	return "because no identity-based policy allows the " + action + " action"
}

const dryRunMsg = "The request would have succeeded, but the DryRun option is set."

// ciphertextKeyMsg is AWS's answer to a Decrypt whose key does not exist
// here or may not be used by the caller.
const ciphertextKeyMsg = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
