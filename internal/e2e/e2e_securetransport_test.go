package e2e_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/testsupport"
)

// TestE2ESecureTransport: aws:SecureTransport is true for a request that
// came over TLS, or through the TLS-terminating proxy the operator
// declared (WithTLSInFront), and false for one in plain HTTP, so the common
// "deny unless SecureTransport" key policy lets TLS callers in and keeps
// plain-HTTP callers out.
func TestE2ESecureTransport(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, key, `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"`+kpRootARN+`"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Deny","Principal":"*","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
	   "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false)

	over := func(srv *httptest.Server) *kms.Client {
		return kms.New(kms.Options{Region: e2eRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: testsupport.SDKHTTPClient(srv.Client()), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(e.creds.ID, e.creds.Secret, "")})
	}
	tlsSrv := httptest.NewTLSServer(e.guard)
	t.Cleanup(tlsSrv.Close)
	e.guard.next.(*api.Handler).WithTLSInFront(false)

	// Over TLS the Deny does not apply.
	out, err := over(tlsSrv).Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("over tls")})
	if err != nil {
		t.Fatalf("Encrypt over TLS: %v", err)
	}
	if _, err := over(tlsSrv).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt over TLS: %v", err)
	}

	// In plain HTTP it does, and the error names the resource policy.
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("plain")})
	kpDenied(t, err, kpRootARN, "kms:Encrypt", e.keyARN(key), kpDenyRes)
	_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
	kpDenied(t, err, kpRootARN, "kms:Decrypt", e.keyARN(key), kpDenyRes)

	// A plain-HTTP request behind a declared TLS proxy counts as secure.
	e.guard.next.(*api.Handler).WithTLSInFront(true)
	if _, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt behind a declared TLS proxy: %v", err)
	}
}
