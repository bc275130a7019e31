package verify

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// BenchmarkVerifyLimit is the verify core with a key's rate limit counted
// in this process (local) and in a real redis-server on loopback
// (shared): what one Redis round trip (one EVALSHA) adds per
// verification. The local case is the same path as BenchmarkVerify's.
func BenchmarkVerifyLimit(b *testing.B) {
	rs := limitstest.StartRedis(b)
	o := limits.NewOptions()
	// A generous timeout: the benchmark measures Redis, not the fallback
	// a busy machine's stall would turn on.
	o.RedisURL, o.RedisTimeout = rs.URL(), time.Second
	shared, err := limits.NewShared(o, limits.Local{}, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = shared.Start(ctx) }()
	for _, c := range []struct {
		name string
		p    limits.Provider
	}{{"local", limits.Local{}}, {"shared", shared}} {
		ix := NewIndexWithLimits(c.p)
		tok := mint(b)
		ix.SetKey(testkit.IssuedKey("ns", "k", tok, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
			k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1_000_000, Burst: 1_000_000}
		}))
		v, err := NewVerifier(ix, prometheus.NewRegistry(), clock.RealClock{}, 0, 1)
		if err != nil {
			b.Fatal(err)
		}
		req := &Request{Token: tok, IP: netip.MustParseAddr("10.1.2.3"), Namespaces: []string{"ns"}}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var limited int
			for b.Loop() {
				limited += limitedOrValid(b, v.Verify(req).Code)
			}
			b.ReportMetric(float64(limited)/float64(b.N), "limited/op")
			if shared.FallingBack() {
				b.Fatal("the shared limiter fell back: Redis did not answer")
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var limited atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					limited.Add(int64(limitedOrValid(b, v.Verify(req).Code)))
				}
			})
			b.ReportMetric(float64(limited.Load())/float64(b.N), "limited/op")
		})
	}
}

// limitedOrValid accepts the two answers a limited key gets and returns 1
// for RateLimited. Both cost the same check; the local bucket refuses
// once this process verifies faster than the CRD's highest limit
// (1,000,000/s), which a core at ~600 ns/op on two cores does.
func limitedOrValid(b *testing.B, c Code) int {
	switch c {
	case Valid:
		return 0
	case RateLimited:
		return 1
	}
	b.Fatal(c)
	return 0
}
