package verify

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseAllowed reads spec.allowedIPs. An IPv4-mapped IPv6 entry
// (::ffff:192.0.2.0/120) becomes the IPv4 block it names, so that it and
// the plain IPv4 form match the same clients.
func parseAllowed(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		p, err := parsePrefix(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("allowed IP %q: %w", s, err)
		}
		a = a.WithZone("").Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("allowed CIDR %q: %w", s, err)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// normalizeAddr makes a client address comparable with parseAllowed's
// blocks: no zone, and IPv4-mapped IPv6 as plain IPv4.
func normalizeAddr(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// NormalizeAddr drops an address's zone and unmaps an IPv4-mapped IPv6
// address, so ::ffff:192.0.2.1 and 192.0.2.1 are the same client.
func NormalizeAddr(a netip.Addr) netip.Addr { return normalizeAddr(a) }

// ipAllowed tells whether the client address is in one of the blocks; an
// empty list allows any address. It allocates nothing.
func ipAllowed(allowed []netip.Prefix, a netip.Addr) bool {
	if len(allowed) == 0 {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = normalizeAddr(a)
	for _, p := range allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
