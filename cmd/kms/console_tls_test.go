package main_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConsoleOverTLS: with --dev --tls the console is served over https,
// and its session cookie is Secure and __Host- prefixed.
func TestConsoleOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--tls")
	if m := s.waitOutput(regexp.MustCompile(`web console at (\S+)\n`), startTimeout); m[1] != s.URL+"/console/" {
		t.Fatalf("the console's URL is printed as %s, want %s/console/", m[1], s.URL)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	resp, err := c.Get(s.URL + "/console/")
	noErr(t, err, "GET /console/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET /console/ over https: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	id, secret := devCredentials(t, dir)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/console/api/signin",
		strings.NewReader(`{"accessKeyId":"`+id+`","secretAccessKey":"`+secret+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	noErr(t, err, "sign in")
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("sign-in over https: %d, cookies %v", resp.StatusCode, cookies)
	}
	if ck := cookies[0]; !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Name != "__Host-kms-console" || ck.Path != "/" {
		t.Fatalf("the session cookie over https: %+v", ck)
	}
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/console/api/session", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	noErr(t, err, "session")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the session over https answers %d", resp.StatusCode)
	}
}

// TestNoConsole: --no-console serves no console and prints no URL for it.
func TestNoConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--no-console")
	resp, err := http.Get(s.URL + "/console/")
	noErr(t, err, "GET /console/")
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") {
		t.Fatalf("GET /console/ with --no-console: %d", resp.StatusCode)
	}
	s.waitOutput(regexp.MustCompile(`aws kms create-key\n`), startTimeout)
	if strings.Contains(s.stdout.String(), "console") {
		t.Fatalf("--no-console still prints the console:\n%s", s.stdout)
	}
}

// TestConsoleBehindTLSProxy: behind a trusted proxy that says the browser
// came over https, the session cookie is Secure and __Host- prefixed, as
// over the server's own TLS, so that the browser never sends it to an
// http:// address of the same host; a request the proxy says came over
// plain http gets the plain cookie.
func TestConsoleBehindTLSProxy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, baseEnv(), "--dev", "--trusted-proxies", "127.0.0.1")
	id, secret := devCredentials(t, dir)
	signIn := func(proto string) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/console/api/signin",
			strings.NewReader(`{"accessKeyId":"`+id+`","secretAccessKey":"`+secret+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("X-Forwarded-Proto", proto)
		resp, err := http.DefaultClient.Do(req)
		noErr(t, err, "sign in")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
			t.Fatalf("sign-in through the proxy (%s): %d, cookies %v", proto, resp.StatusCode, resp.Cookies())
		}
		return resp.Cookies()[0]
	}
	ck := signIn("https")
	if !ck.Secure || !ck.HttpOnly || ck.Name != "__Host-kms-console" || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("the session cookie behind a TLS proxy: %+v", ck)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/console/api/session", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	noErr(t, err, "session")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the session behind a TLS proxy answers %d", resp.StatusCode)
	}
	if ck := signIn("http"); ck.Secure || ck.Name != "kms-console" {
		t.Fatalf("the session cookie of a plain http request through the proxy: %+v", ck)
	}
}
