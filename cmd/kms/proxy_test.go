package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// forwardingTransport adds an X-Forwarded-For header to every request, as a
// proxy in front would (it is not signed, as a proxy's is not).
type forwardingTransport struct{ client, proto string }

func (f forwardingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.client)
	if f.proto != "" {
		r.Header.Set("X-Forwarded-Proto", f.proto)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestTrustedProxies: behind a proxy named by --trusted-proxies, the client
// address of X-Forwarded-For is the one aws:SourceIp and the audit trail
// see, and a request the proxy received over TLS (X-Forwarded-Proto: https)
// has aws:SecureTransport; without the flag, both headers are the caller's
// word and are ignored.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--trusted-proxies", "127.0.0.1,::1")
	direct := kmsOver(t, s, &http.Client{Timeout: 10 * time.Second})
	proxied := kmsOver(t, s, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7, 127.0.0.1", "https"}})
	ctx := testCtx(t)

	key, err := direct.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	account := aws.ToString(key.KeyMetadata.AWSAccountId)
	// Encrypt only from 198.51.100.0/24.
	policy := `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"198.51.100.0/24"}}},
	  {"Effect":"Deny","Principal":"*","Action":"kms:DescribeKey","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	if _, err := direct.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	in := &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")}
	if _, err := proxied.Encrypt(ctx, in); err != nil {
		t.Fatalf("Encrypt through the trusted proxy from 198.51.100.7: %v", err)
	}
	if _, err := direct.Encrypt(ctx, in); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("Encrypt from 127.0.0.1 itself: %v, want AccessDeniedException", err)
	}
	// The forged hop left of the client does not count.
	forged := kmsOver(t, s, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.8, 203.0.113.9", "https"}})
	if _, err := forged.Encrypt(ctx, in); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("Encrypt with a forged hop before 203.0.113.9: %v, want AccessDeniedException", err)
	}
	// DescribeKey only over TLS: to the proxy, as its header says.
	describe := &kms.DescribeKeyInput{KeyId: aws.String(keyID)}
	if _, err := proxied.DescribeKey(ctx, describe); err != nil {
		t.Fatalf("DescribeKey through the trusted proxy, over https: %v", err)
	}
	for name, c := range map[string]*kms.Client{
		"in plain HTTP to the server":    direct,
		"in plain HTTP to the proxy":     kmsOver(t, s, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7", "http"}}),
		"through the proxy, not telling": kmsOver(t, s, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7", ""}}),
	} {
		if _, err := c.DescribeKey(ctx, describe); apiErrorCode(err) != "AccessDeniedException" {
			t.Errorf("DescribeKey %s: %v, want AccessDeniedException", name, err)
		}
	}
	_, err = proxied.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	s.stop(syscall.SIGTERM)
	var ips []string
	for _, line := range auditLines(t, dir) {
		var ln struct {
			Event auditEvent `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &ln); err != nil {
			t.Fatal(err)
		}
		ev := ln.Event
		if ev.EventName == "Encrypt" || ev.EventName == "ListKeys" {
			ips = append(ips, ev.EventName+" "+ev.ErrorCode+" "+ev.SourceIPAddress)
		}
	}
	want := "Encrypt  198.51.100.7|Encrypt AccessDeniedException 127.0.0.1|Encrypt AccessDeniedException 203.0.113.9|ListKeys  198.51.100.7"
	if got := strings.Join(ips, "|"); got != want {
		t.Errorf("audit trail sources:\n got %s\nwant %s", got, want)
	}

	// Without --trusted-proxies the header is ignored.
	s2 := startServer(t, dir, baseEnv(), "--dev")
	p2 := kmsOver(t, s2, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7", "https"}})
	if _, err := p2.Encrypt(ctx, in); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("Encrypt claiming 198.51.100.7 with no trusted proxy: %v, want AccessDeniedException", err)
	}
	if _, err := p2.DescribeKey(ctx, describe); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("DescribeKey claiming https with no trusted proxy: %v, want AccessDeniedException", err)
	}
	s2.stop(syscall.SIGTERM)

	// With --insecure-http, a trusted proxy that does not say is taken to
	// speak TLS; one that says http is believed.
	s3 := startServer(t, dir, baseEnv(), "--dev", "--insecure-http", "--trusted-proxies", "127.0.0.1")
	silent := kmsOver(t, s3, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7", ""}})
	if _, err := silent.DescribeKey(ctx, describe); err != nil {
		t.Fatalf("DescribeKey through a proxy declared by --insecure-http: %v", err)
	}
	plain := kmsOver(t, s3, &http.Client{Timeout: 10 * time.Second, Transport: forwardingTransport{"198.51.100.7", "http"}})
	if _, err := plain.DescribeKey(ctx, describe); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("DescribeKey through a proxy that says http: %v, want AccessDeniedException", err)
	}
}
