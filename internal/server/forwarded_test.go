package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
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
		{"a zone is dropped", "10.1.2.3:4000", []string{"fe80::1%any text at all"}, "[fe80::1]:0"},
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

// Whatever X-Forwarded-For headers a trusted proxy passes on, the handler
// sees a RemoteAddr that is an address and port without a zone: the
// peer's own, or an address the headers name.
func FuzzForwardedClient(f *testing.F) {
	trusted, err := parseTrustedProxies("10.0.0.0/8, 2001:db8::/32")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("6.6.6.6, 198.51.100.1, 10.9.9.9", "", "10.1.2.3:4000")
	f.Add("fe80::1%eth0", "10.0.0.1", "[2001:db8::1]:80")
	f.Add("not-an-ip", "::ffff:198.51.100.1", "10.1.2.3:4000")
	f.Fuzz(func(t *testing.T, h1, h2, peer string) {
		var got string
		h := fromProxies(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }), trusted, false)
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = peer
		r.Header["X-Forwarded-For"] = []string{h1, h2}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got == peer {
			return
		}
		ap, err := netip.ParseAddrPort(got)
		if err != nil || ap.Addr().Zone() != "" || ap.Port() != 0 {
			t.Fatalf("RemoteAddr %q from headers %q, %q", got, h1, h2)
		}
		named := false
		for _, hop := range strings.Split(h1+","+h2, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap().WithZone("") == ap.Addr() {
				named = true
			}
		}
		if !named {
			t.Fatalf("RemoteAddr %q is not in headers %q, %q", got, h1, h2)
		}
	})
}
