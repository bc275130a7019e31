package verify

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	ps, err := parseProxies([]string{"127.0.0.1", "10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, xreal, want string
	}{
		{"untrusted peer: headers ignored", "192.0.2.1:1", "198.51.100.1", "198.51.100.2", "192.0.2.1"},
		{"trusted peer, no headers", "127.0.0.1:1", "", "", "127.0.0.1"},
		{"trusted peer, X-Forwarded-For", "127.0.0.1:1", "198.51.100.1", "", "198.51.100.1"},
		{"rightmost untrusted hop wins", "127.0.0.1:1", "203.0.113.9, 198.51.100.1, 10.1.1.1", "", "198.51.100.1"},
		{"all hops trusted: leftmost", "127.0.0.1:1", "10.1.1.1, 10.2.2.2", "", "10.1.1.1"},
		{"hop with port", "127.0.0.1:1", "198.51.100.1:4711", "", "198.51.100.1"},
		{"IPv6 hop with port", "[::1]:1", "[2001:db8::1]:4711", "", "2001:db8::1"},
		{"garbage hop: no address", "127.0.0.1:1", "198.51.100.1, nonsense", "", "invalid IP"},
		{"X-Forwarded-For before X-Real-IP", "127.0.0.1:1", "198.51.100.1", "198.51.100.2", "198.51.100.1"},
		{"X-Real-IP", "127.0.0.1:1", "", "198.51.100.2", "198.51.100.2"},
		{"v4-mapped peer", "[::ffff:192.0.2.1]:1", "", "", "192.0.2.1"},
		{"v4-mapped trusted peer", "[::ffff:127.0.0.1]:1", "198.51.100.1", "", "198.51.100.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/auth", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.xreal != "" {
				r.Header.Set("X-Real-IP", tc.xreal)
			}
			if got := ps.clientAddr(r).String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseAllowed(t *testing.T) {
	allowed, err := parseAllowed([]string{"192.0.2.10", "10.0.0.0/8", "2001:db8::/32", "::ffff:198.51.100.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.0.2.10": true, "192.0.2.11": false, "10.255.0.1": true, "::ffff:10.0.0.1": true,
		"2001:db8:1::1": true, "2001:db9::1": false, "198.51.100.77": true, "::ffff:198.51.100.77": true,
		"fe80::1%eth0": false,
	} {
		if got := ipAllowed(allowed, netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: got %v, want %v", addr, got, want)
		}
	}
	if ipAllowed(allowed, netip.Addr{}) {
		t.Error("a request without an address passed a key with allowedIPs")
	}
	if _, err := parseAllowed([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 parsed")
	}
}

// FuzzClientAddr: whatever the headers say, an untrusted peer is judged by
// its own address, and nothing panics.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:1", "198.51.100.1, 10.0.0.1", "203.0.113.1")
	f.Add("192.0.2.1:1", "[2001:db8::1]:80", "")
	f.Add("[::1]:1", ",,,", "::ffff:1.2.3.4")
	ps, _ := parseProxies([]string{"127.0.0.1", "::1", "10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, peer, xff, xreal string) {
		r := httptest.NewRequest("GET", "/v1/auth", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", xreal)
		got := ps.clientAddr(r)
		if p := peerAddr(r); !ps.trusted(p) && got != p {
			t.Fatalf("untrusted peer %q judged as %s", peer, got)
		}
		if got.IsValid() && got.Is4In6() {
			t.Fatalf("address %s not normalized", got)
		}
	})
}

// FuzzParsePrefix: allowedIPs parsing never panics, and what parses
// contains its own address.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.1", "::ffff:10.0.0.0/104", "2001:db8::/32", "fe80::1%eth0", "1.2.3.4/40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		if err != nil {
			return
		}
		if !p.Contains(p.Addr()) {
			t.Fatalf("%q parsed to %s, which does not contain its address", s, p)
		}
	})
}
