package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestForwardedClient(t *testing.T) {
	trusted, err := parseTrustedProxies("10.0.0.0/8, 192.0.2.1,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string // RemoteAddr seen by the handler
	}{
		{"an untrusted peer keeps its address", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5:4000"},
		{"a trusted proxy names the client", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"the right-most untrusted hop is the client", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1:0"},
		{"hops in several headers", "192.0.2.1:80", []string{"6.6.6.6", "198.51.100.1", "10.9.9.9"}, "198.51.100.1:0"},
		{"a forged hop left of the client is ignored", "10.1.2.3:4000", []string{"10.0.0.1, 198.51.100.1"}, "198.51.100.1:0"},
		{"garbage where the client would be", "10.1.2.3:4000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3:4000"},
		{"garbage left of the client", "10.1.2.3:4000", []string{"not-an-ip, 198.51.100.1"}, "198.51.100.1:0"},
		{"only proxies: the left-most", "10.1.2.3:4000", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7:0"},
		{"no header", "10.1.2.3:4000", nil, "10.1.2.3:4000"},
		{"IPv6", "[2001:db8::1]:4000", []string{"2001:db9::5"}, "[2001:db9::5]:0"},
		{"IPv4 in IPv6", "[::ffff:10.1.2.3]:4000", []string{"::ffff:198.51.100.1"}, "198.51.100.1:0"},
		{"a port in the header is not an address", "10.1.2.3:4000", []string{"198.51.100.1:5555"}, "10.1.2.3:4000"},
	}
	for _, tt := range tests {
		var got string
		h := fromProxies(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }), trusted, false)
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != tt.want {
			t.Errorf("%s: RemoteAddr %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1-10.0.0.9"} {
		if _, err := parseTrustedProxies(bad); err == nil {
			t.Errorf("parseTrustedProxies(%q) accepted it", bad)
		}
	}
}
