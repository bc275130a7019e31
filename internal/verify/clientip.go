package verify

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how much of X-Forwarded-For is read.
const maxForwardedHops = 32

// proxies are the peers whose X-Forwarded-For and X-Real-IP are believed.
type proxies []netip.Prefix

// parseProxies reads --trusted-proxies: IPs and CIDR blocks.
func parseProxies(entries []string) (proxies, error) {
	var out proxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		p, err := parsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (ps proxies) trusted(a netip.Addr) bool {
	return len(ps) > 0 && ipAllowed(ps, a)
}

// peerAddr is the address of the connection's other end.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return normalizeAddr(ap.Addr())
}

// clientAddr is the address a request came from. Forwarding headers count
// only when the peer is a trusted proxy; otherwise anyone could claim any
// address. From X-Forwarded-For it takes the rightmost address that is not
// itself a trusted proxy: entries left of it were written by the client and
// prove nothing. An entry that does not parse ends the walk with no address,
// which refuses keys that have allowedIPs.
func (ps proxies) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !ps.trusted(peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return ps.fromForwardedFor(xff)
	}
	if xr := r.Header.Get("X-Real-IP"); xr != "" {
		a, err := netip.ParseAddr(strings.TrimSpace(xr))
		if err != nil {
			return netip.Addr{}
		}
		return normalizeAddr(a)
	}
	return peer
}

func (ps proxies) fromForwardedFor(headers []string) netip.Addr {
	hops := 0
	for i := len(headers) - 1; i >= 0; i-- {
		h := headers[i]
		for h != "" && hops < maxForwardedHops {
			hops++
			var hop string
			if j := strings.LastIndexByte(h, ','); j >= 0 {
				h, hop = h[:j], h[j+1:]
			} else {
				h, hop = "", h
			}
			a, ok := parseHop(hop)
			if !ok {
				return netip.Addr{}
			}
			if !ps.trusted(a) {
				return a
			}
		}
	}
	// Every hop was a trusted proxy: the leftmost one is the client.
	return ps.leftmost(headers)
}

func (ps proxies) leftmost(headers []string) netip.Addr {
	first, _, _ := strings.Cut(headers[0], ",")
	a, _ := parseHop(first)
	return a
}

// parseHop reads one X-Forwarded-For entry; some proxies add a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return normalizeAddr(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalizeAddr(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// TrustedProxy tells whether a peer is in --trusted-proxies, so that its
// word on the client's address is believed. The gRPC ext_authz server asks
// it before it believes Envoy's source.address.
func (s *Server) TrustedProxy(peer netip.Addr) bool {
	return s.proxies.trusted(NormalizeAddr(peer))
}
