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
	if resp.StatusCode == http.StatusOK || resp.Header.Get("Content-Security-Policy") != "" {
		t.Fatalf("GET /console/ with --no-console: %d", resp.StatusCode)
	}
	s.waitOutput(regexp.MustCompile(`aws kms create-key\n`), startTimeout)
	if strings.Contains(s.stdout.String(), "console") {
		t.Fatalf("--no-console still prints the console:\n%s", s.stdout)
	}
}
