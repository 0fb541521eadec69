package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// consoleClient is a console session driven over HTTP, without a browser.
type consoleClient struct {
	t    *testing.T
	url  string
	c    *http.Client
	csrf string
}

func signInConsole(t *testing.T, s *server, akid, secret string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cc := &consoleClient{t: t, url: s.URL + "/console/api/", c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var me struct{ CSRFToken string }
	if status := cc.post("signin", map[string]string{"accessKeyId": akid, "secretAccessKey": secret}, &me); status != http.StatusOK {
		t.Fatalf("sign-in: %d", status)
	}
	cc.csrf = me.CSRFToken
	return cc
}

func (cc *consoleClient) post(path string, in, out any) int {
	cc.t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, cc.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", cc.csrf)
	resp, err := cc.c.Do(req)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type verifyAnswer struct {
	Verified bool
	Chains   []struct {
		Records  uint64
		Digests  int
		Problems []string
	}
}

// TestConsoleAuditBanner: the Audit page's banner verifies the log file
// and its signed digests, and reports an edited record.
func TestConsoleAuditBanner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startDev(t, dir)
	id, secret := devCredentials(t, dir)
	cc := signInConsole(t, s, id, secret)
	for range 3 {
		if status := cc.post("call/kms/ListKeys", nil, nil); status != http.StatusOK {
			t.Fatalf("ListKeys: %d", status)
		}
	}
	// The server signs its trail's head every few seconds.
	deadline := time.Now().Add(15 * time.Second)
	var v verifyAnswer
	for {
		v = verifyAnswer{}
		if status := cc.post("audit/verify", nil, &v); status != http.StatusOK {
			t.Fatalf("audit/verify: %d", status)
		}
		if len(v.Chains) == 1 && v.Chains[0].Digests > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signed digest within 15 s: %+v", v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !v.Verified || v.Chains[0].Records < 4 || len(v.Chains[0].Problems) != 0 {
		t.Fatalf("an untouched trail: %+v", v)
	}

	// Edit one record in place: the banner must say so.
	path := filepath.Join(dir, "audit.log")
	log, err := os.ReadFile(path)
	noErr(t, err, "read the log")
	i := bytes.Index(log, []byte(`"eventName":"ListKeys"`))
	if i < 0 {
		t.Fatalf("no ListKeys record in the log")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	noErr(t, err, "open the log")
	_, err = f.WriteAt([]byte(`"eventName":"ListKeyz"`), int64(i))
	f.Close()
	noErr(t, err, "edit the log")
	v = verifyAnswer{}
	cc.post("audit/verify", nil, &v)
	if v.Verified || len(v.Chains) != 1 || len(v.Chains[0].Problems) == 0 {
		t.Fatalf("an edited record passes: %+v", v)
	}

	// And a digest whose signature was changed.
	path = filepath.Join(dir, "audit-digests.log")
	digests, err := os.ReadFile(path)
	noErr(t, err, "read the digests")
	i = bytes.Index(digests, []byte(`"signature":"`)) + len(`"signature":"`)
	digests[i] ^= 0x01
	noErr(t, os.WriteFile(path, digests, 0o600), "edit a digest")
	v = verifyAnswer{}
	cc.post("audit/verify", nil, &v)
	if len(v.Chains) != 1 || !strings.Contains(strings.Join(v.Chains[0].Problems, "\n"), "digest 1 has a signature that does not verify") {
		t.Fatalf("an edited digest passes: %+v", v)
	}
}
