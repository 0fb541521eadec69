package console_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzConsoleAPI sends arbitrary console API requests: any route, body,
// session cookie, CSRF token and Origin. Whatever arrives, the answer is
// JSON and never a 5xx; a request without the session's cookie is never
// answered as a signed-in one, and one without its CSRF token changes
// nothing (only the session's own state is read).
func FuzzConsoleAPI(f *testing.F) {
	e := newEnv(f)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	var cookie string
	for _, c := range b.c.Jar.Cookies(mustURL(f, e.srv.URL)) {
		cookie = c.Value
	}
	if cookie == "" || b.csrf == "" {
		f.Fatal("signing in set no session cookie or CSRF token")
	}
	for _, s := range []struct {
		route, body          string
		realCookie, realCSRF bool
	}{
		{"session", "", true, false},
		{"call/kms/ListKeys", "{}", true, true},
		{"call/kms/CreateKey", `{"Description":"fuzz"}`, true, true},
		{"call/kms/DescribeKey", `{"KeyId":"alias/none"}`, true, true},
		{"call/iam/ListUsers", "", true, true},
		{"call/sts/GetCallerIdentity", "null", true, true},
		{"call/kms/ListKeys", "{}", true, false},
		{"call/kms/ListKeys", "{}", false, true},
		{"call/kms", "{}", true, true},
		{"call/kms/a/b", "{}", true, true},
		{"audit/verify", "{}", true, true},
		{"signin", `{"accessKeyId":"` + e.creds.ID + `","secretAccessKey":"wrong"}`, false, false},
		{"signin", `{"account":"111122223333","userName":"u","password":"p"}`, false, false},
		{"signin", `[`, false, false},
		{"nope", "{}", true, true},
	} {
		f.Add(s.route, []byte(s.body), s.realCookie, "forged", s.realCSRF, "")
	}
	f.Add("call/kms/ListKeys", []byte("{}"), true, "", true, "http://evil.example")
	f.Fuzz(func(t *testing.T, route string, body []byte, realCookie bool, otherCookie string, realCSRF bool, origin string) {
		if strings.Contains(route, "signout") || strings.Contains(strings.ToLower(route), "accesskey") {
			return // keep the session and the root's access key for the next input
		}
		req := httptest.NewRequest(http.MethodPost, e.srv.URL+"/console/api/", bytes.NewReader(body))
		req.URL.Path += route
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		c := otherCookie
		if realCookie {
			c = cookie
		}
		req.AddCookie(&http.Cookie{Name: "kms-console", Value: sanitizeCookie(c)})
		if realCSRF {
			req.Header.Set("X-CSRF-Token", b.csrf)
		} else {
			req.Header.Set("X-CSRF-Token", "forged")
		}
		rec := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", route, body, rec.Code, rec.Body)
		}
		if rec.Code/100 == 3 {
			return // the mux's redirect to a cleaned path
		}
		var out map[string]any
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("%s %q: status %d, %s %q", route, body, rec.Code, ct, rec.Body)
		}
		if rec.Code != http.StatusOK || route == "signin" {
			return
		}
		if !realCookie && c != cookie {
			t.Fatalf("%s %q answered 200 to the cookie %q: %s", route, body, otherCookie, rec.Body)
		}
		if !realCSRF && route != "session" {
			t.Fatalf("%s %q answered 200 without the CSRF token: %s", route, body, rec.Body)
		}
	})
}

func mustURL(tb testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// sanitizeCookie keeps the bytes a cookie value may hold, as a browser
// would send it.
func sanitizeCookie(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '"' || r == ';' || r == '\\' || r == ',' {
			return -1
		}
		return r
	}, s)
}
