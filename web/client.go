package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address a request came from, for the evidence and the rate limits.
// A request from one of the trusted proxies names its client in X-Forwarded-For, to which
// every proxy on the way appends the address it was reached from: the client is the
// right-most address there that is not a trusted proxy itself. Whatever stands left of it
// came from the client and proves nothing. An address that does not read ends the walk at
// the last proxy.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if peer = peer.Unmap().WithZone(""); !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := strings.Split(hops[i], ",")
		for j := len(list) - 1; j >= 0; j-- {
			hop, ok := parseHop(strings.TrimSpace(list[j]))
			if !ok {
				return peer.String()
			}
			if !isTrusted(hop, trusted) {
				return hop.String()
			}
			peer = hop
		}
	}
	return peer.String() // proxies all the way: the first of them
}

// parseHop reads one X-Forwarded-For entry: an address, which some proxies write with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"). IPv4 addresses in IPv6 form and zones
// are dropped, as trusted networks are written without them.
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey is what the link form's rate limit counts a client by: its address, or for
// IPv6 its /64, which one subscriber usually has whole.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() {
		return ip
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
