package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/openkms/kms/internal/api"
)

// parseTrustedProxies reads --trusted-proxies: addresses and CIDR prefixes,
// comma-separated.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an IP address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// fromProxies serves next with each request's RemoteAddr set to its
// client's address when the request comes from one of the trusted proxies:
// the right-most address of its X-Forwarded-For headers that is not itself
// a trusted proxy. So the audit trail, aws:SourceIp and the console's
// sign-in limits see the client, not the proxy. A request from any other
// peer keeps its own address whatever headers it sends; so does one whose
// X-Forwarded-For holds something that is not an address where the client
// would be.
//
// A request from a trusted proxy whose last X-Forwarded-Proto is "https"
// reached the proxy over TLS (api.ViaTLSProxy); so does one without the
// header when tlsInFront (--insecure-http) says every proxy in front
// speaks TLS. With no trusted proxies, next is returned as it is.
func fromProxies(next http.Handler, trusted []netip.Prefix, tlsInFront bool) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !isTrusted(peer.Addr(), trusted) {
			next.ServeHTTP(w, r)
			return
		}
		if client, ok := forwardedClient(r.Header.Values("X-Forwarded-For"), trusted); ok {
			r.RemoteAddr = net.JoinHostPort(client.String(), "0")
		}
		switch proto := lastHop(r.Header.Values("X-Forwarded-Proto")); {
		case strings.EqualFold(proto, "https"), proto == "" && tlsInFront:
			r = api.ViaTLSProxy(r)
		}
		next.ServeHTTP(w, r)
	})
}

// lastHop is the right-most entry of a header's comma-separated values:
// the one the nearest proxy wrote.
func lastHop(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	return strings.TrimSpace(v[strings.LastIndexByte(v, ',')+1:])
}

// forwardedClient returns the client address that the X-Forwarded-For
// values hops, from a trusted proxy, name, if they name one.
func forwardedClient(hops []string, trusted []netip.Prefix) (netip.Addr, bool) {
	var client netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var hop string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				hop, list = list[j+1:], list[:j]
			} else {
				hop, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(hop))
			if err != nil {
				// Not an address: the proxies in front wrote nothing
				// trustworthy past this point.
				return client, client.IsValid()
			}
			// A zone names an interface of the proxy, not the client, and
			// would carry any text the header holds into the trail.
			client = a.Unmap().WithZone("")
			if !isTrusted(client, trusted) {
				return client, true
			}
		}
	}
	return client, client.IsValid()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
