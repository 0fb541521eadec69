package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/api"
)

// TestAnswersAreNotDocuments: the API shares its origin with the web
// console, and its answers quote what a caller sent. A browser that
// another site's form or link sends to the API must not read an answer
// as HTML, nor run or load anything from it as the console's origin:
// each answer, JSON, XML or text, forbids sniffing and carries a
// sandboxing Content-Security-Policy.
func TestAnswersAreNotDocuments(t *testing.T) {
	srv := httptest.NewServer(api.NewHandler(nil, nil, nil))
	t.Cleanup(srv.Close)
	const markup = "<html><script>alert(1)</script>"
	for _, c := range []struct {
		what, method, contentType, target, body string
	}{
		{"a JSON call naming an operation in markup", http.MethodPost, "application/x-amz-json-1.1", "TrentService." + markup, "{}"},
		{"a query call naming an action in markup", http.MethodPost, "application/x-www-form-urlencoded", "", "Version=2010-05-08&Action=" + markup},
		{"a form of another site", http.MethodPost, "text/plain", "", markup},
		{"a link", http.MethodGet, "", "", ""},
		{"the health check", http.MethodGet, "", "", ""},
	} {
		path := "/"
		if c.what == "the health check" {
			path = "/healthz"
		}
		req, _ := http.NewRequest(c.method, srv.URL+path, strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.target != "" {
			req.Header.Set("X-Amz-Target", c.target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", c.what, got)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "sandbox"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", c.what, csp, d)
			}
		}
		if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "html") || ct == "" {
			t.Errorf("%s: Content-Type %q", c.what, ct)
		}
	}
}
