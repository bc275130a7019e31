package verify

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// BenchmarkVerify measures the verify core on the path of a valid key:
// checksum, SHA-256, lookup, enabled, expiry, allowed IPs, permissions,
// rate limit and the lastUsedAt note. Run with -benchmem; the target is
// under 1 µs and 0 allocs/op at both sizes. APIKEY_BENCH_KEYS=<n> measures
// one other size instead (make bench-scale's growth table).
func BenchmarkVerify(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if v := os.Getenv("APIKEY_BENCH_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("APIKEY_BENCH_KEYS=%q: want a number of keys", v)
		}
		sizes = []int{n}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			f, req := benchIndex(b, n)
			v := f.srv.Verifier()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if res := v.Verify(req); !passed(res.Code) {
					b.Fatal(res.Code)
				}
			}
		})
		b.Run(fmt.Sprintf("keys=%d/parallel", n), func(b *testing.B) {
			f, req := benchIndex(b, n)
			v := f.srv.Verifier()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res := v.Verify(req); !passed(res.Code) {
						b.Error(res.Code)
						return
					}
				}
			})
		})
	}
}

// BenchmarkVerifyRefused measures refusals that reach the index.
func BenchmarkVerifyRefused(b *testing.B) {
	f, req := benchIndex(b, 10_000)
	v := f.srv.Verifier()
	unknown := *req
	unknown.Token = mint(b)
	unknown.Source = netip.Addr{} // no guard: measure the lookup alone
	unknown.IP = netip.Addr{}
	b.ReportAllocs()
	for b.Loop() {
		v.Verify(&unknown)
	}
}

// passed: a key at the end of its bucket has gone through every check,
// so RateLimited is a full-path run too. (The core can outrun the API's
// largest limit, a million a second.)
func passed(c Code) bool { return c == Valid || c == RateLimited }

var benchIndexes = map[int]*fixture{}

// benchIndex is an index of n keys, one of them real and the rest filler
// sums, with a request the real one passes. Filler keys share one Key so
// that a million of them fit in memory; lookups cost the same.
func benchIndex(b *testing.B, n int) (*fixture, *Request) {
	b.Helper()
	tok := mint(b)
	f := benchIndexes[n]
	if f == nil {
		f = newFixture(b)
		// Real time, so the rate limit refills as it would in production.
		f.srv.verifier.clock = clock.RealClock{}
		filler := &Key{Namespace: "ns", Name: "filler", Enabled: true, use: &usage{}}
		for range n - 1 {
			var s Sum
			_, _ = rand.Read(s[:])
			f.ix.put(s, entry{key: filler})
		}
		benchIndexes[n] = f
	}
	f.ix.DeleteKey(types.NamespacedName{Namespace: "ns", Name: "real"})
	f.ix.SetKey(apiKey("ns", "real", tok, func(k *keysv1.ApiKey) {
		k.Spec.Permissions = perms("invoices:read", "reports:*", "tenant.apiKey:read")
		k.Spec.AllowedIPs = ips("192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32")
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1_000_000, Burst: 1_000_000}
		k.Spec.Audiences = []keysv1.Audience{"reports"}
	}))
	// The gateway names two namespaces and an audience, as a shared
	// gateway would: the scope checks run in full.
	return f, &Request{Token: tok, Permissions: []string{"reports:monthly"}, IP: netip.MustParseAddr("10.1.2.3"),
		Namespaces: []string{"other", "ns"}, Audiences: []string{"billing", "reports"}}
}

// BenchmarkForwardAuthHandler is one /v1/auth request through the
// handler, without the network: what the gateway path costs on top of the
// core.
func BenchmarkForwardAuthHandler(b *testing.B) {
	f, req := benchIndex(b, 10_000)
	h := f.srv.Handler()
	r := httptest.NewRequest(http.MethodGet, "/v1/auth?permission=reports:monthly&namespace=ns&audience=reports", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("Authorization", "Bearer "+req.Token)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the handler and not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }
