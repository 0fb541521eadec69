package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// rewritingEndpoint forwards every request to the server and passes the
// answers of operation op through rewrite: a broken or hostile KMS
// endpoint, as kms encrypt and decrypt see it.
func rewritingEndpoint(t *testing.T, s *server, op string, rewrite func(map[string]any)) string {
	t.Helper()
	target, err := url.Parse(s.URL)
	noErr(t, err, "parse URL")
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // signed by the client
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Header.Get("X-Amz-Target") != "TrentService."+op || resp.StatusCode != http.StatusOK {
				return nil
			}
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return err
			}
			resp.Body.Close()
			rewrite(body)
			b, _ := json.Marshal(body)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestEnvelopeHostileAnswers: kms encrypt and decrypt through an endpoint
// that alters KMS's answers. A GenerateDataKey answer without a KeyId
// fails the encryption with one line (it crashed the program); a Decrypt
// answer for another key than the one the message names fails the
// decryption, as the AWS Encryption SDK's KMS keyring requires. Neither
// writes the output.
func TestEnvelopeHostileAnswers(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain, enc := f.sealed(t, 1000)
	other, err := f.s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	otherARN := aws.ToString(other.KeyMetadata.Arn)

	noKeyID := rewritingEndpoint(t, f.s, "GenerateDataKey", func(b map[string]any) { delete(b, "KeyId") })
	otherKey := rewritingEndpoint(t, f.s, "Decrypt", func(b map[string]any) { b["KeyId"] = otherARN })
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	noErr(t, os.WriteFile(plainFile, plain, 0o600), "write")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"encrypt", "--endpoint", noKeyID, "--key", f.arn, plainFile}, `answered KeyId "", not a key ARN`},
		{[]string{"decrypt", "--endpoint", otherKey, enc}, "answered for " + strconv.Quote(otherARN)},
		{[]string{"decrypt", "--endpoint", otherKey, "--key", f.arn, enc}, "answered for " + strconv.Quote(otherARN)},
	} {
		out := filepath.Join(dir, "out")
		args := append(append([]string{}, tc.args[:len(tc.args)-1]...), "-o", out, tc.args[len(tc.args)-1])
		code, _, stderr := runToExit(t, f.env, args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("kms %s: exit %d, want 1 and one line with %q\n%s", strings.Join(args, " "), code, tc.want, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("kms %s wrote the output", strings.Join(args, " "))
		}
	}
	// Through the same endpoints, untouched answers still work.
	out := filepath.Join(dir, "out")
	f.run(t, "decrypt", "--endpoint", noKeyID, "-o", out, enc)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, plain) {
		t.Fatal("decrypt through the endpoint that alters GenerateDataKey only: wrong plaintext")
	}
}
