package limits_test

// The cluster test lives here, not in internal/verify: it runs for a
// minute, and in verify's test binary that would pass controller-runtime's
// 30 s deadline for setting a logger before the envtest suite sets its own.

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// server is one verify server over HTTP on loopback, its own index and
// its own limits provider, as one Pod of the apiserver Deployment.
type server struct {
	url    string
	reg    *prometheus.Registry
	shared *limits.Shared
}

// startReplicas starts n verify servers sharing the Redis at redisURL,
// each holding the key tok (namespace "shop", name "checkout") limited
// to rate. Each one's local fallback enforces its share of n.
func startReplicas(t *testing.T, n int, redisURL, tok string, rate keysv1.RateLimitSpec) []server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	share := &atomic.Int32{}
	share.Store(int32(n))
	out := make([]server, n)
	for i := range out {
		reg := prometheus.NewRegistry()
		lo := limits.NewOptions()
		// A generous timeout, so that a stall of this busy test machine
		// does not turn on the fallback in the shared phases; with Redis
		// stopped the connection is refused at once anyway.
		lo.RedisURL, lo.RedisTimeout = redisURL, time.Second
		shared, err := limits.NewShared(lo, limits.Local{Replicas: share}, reg, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		ix := verify.NewIndexWithLimits(shared)
		ix.SetKey(testkit.IssuedKey("shop", "checkout", tok, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
			k.Spec.RateLimit = &rate
		}))
		o := verify.NewOptions()
		o.FailureRate = 0
		srv, err := verify.NewServerFromIndex(o, ix, verify.Deps{Registerer: reg, Log: &logr.Logger{}})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); _ = srv.Serve(ctx, ln) }()
		go func() { defer wg.Done(); _ = shared.Start(ctx) }()
		out[i] = server{url: "http://" + ln.Addr().String() + "/v1/auth?namespace=shop", reg: reg, shared: shared}
	}
	return out
}

// load sends forward-auth requests to every server for d, each from
// four clients pacing themselves at up to 100/s (so far above the limit
// in total, even on a busy machine), and counts the 200s and 429s. Any
// other answer fails the test.
func load(t *testing.T, rs []server, tok string, d time.Duration) (ok, limited int) {
	t.Helper()
	var okN, limN, other atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, r := range rs {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 5 * time.Second}
				for time.Now().Before(stop) {
					req, _ := http.NewRequest(http.MethodGet, r.url, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := c.Do(req)
					switch {
					case err != nil:
						other.Add(1)
					case resp.StatusCode == http.StatusOK:
						okN.Add(1)
					case resp.StatusCode == http.StatusTooManyRequests:
						limN.Add(1)
					default:
						other.Add(1)
					}
					if resp != nil {
						resp.Body.Close()
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d requests in %s, %d allowed", okN.Load()+limN.Load()+other.Load(), d, okN.Load())
	if other.Load() > 0 {
		t.Fatalf("%d answers were neither 200 nor 429 (or failed): verification must keep answering", other.Load())
	}
	return int(okN.Load()), int(limN.Load())
}

// within checks got against want ± 10 %.
func within(t *testing.T, what string, got, want int) {
	t.Helper()
	if float64(got) < 0.9*float64(want) || float64(got) > 1.1*float64(want) {
		t.Fatalf("%s: %d allowed, want %d ± 10 %%", what, got, want)
	} else {
		t.Logf("%s: %d allowed, want %d ± 10 %%", what, got, want)
	}
}

// A key limited to N/s is accepted at N/s ± 10 % in total over 10 s,
// whatever the number of verify replicas sharing one Redis; with Redis
// stopped, answers continue, each server sets the fallback metric and
// enforces its share (so the total stays about N/s); with Redis back,
// limits are shared again by themselves.
func TestClusterWideRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 70 s of load")
	}
	// A low rate, so that the clients' demand stays above it even on a
	// machine so busy that each request takes a few hundred milliseconds
	// (load averages of 30 on two cores were seen); a burst of two
	// seconds' worth, so that a stall of the test process loses no
	// tokens. Each window starts after a second of load has spent the
	// burst, so it measures the rate alone: N/s × the window.
	const perSecond, burst = 5, 10
	rate := keysv1.RateLimitSpec{RequestsPerSecond: perSecond, Burst: burst}
	for _, n := range []int{2, 3} {
		t.Run(map[int]string{2: "two replicas", 3: "three replicas"}[n], func(t *testing.T) {
			r := limitstest.StartRedis(t)
			tok, err := token.Mint("")
			if err != nil {
				t.Fatal(err)
			}
			rs := startReplicas(t, n, r.URL(), tok, rate)
			load(t, rs, tok, 2*time.Second)
			ok, limited := load(t, rs, tok, 10*time.Second)
			if limited == 0 {
				t.Fatal("no request was limited: the load did not reach the limit")
			}
			within(t, "shared through Redis over 10 s", ok, 10*perSecond)
			if n != 3 {
				return
			}

			r.Stop()
			load(t, rs, tok, 2*time.Second)
			ok, _ = load(t, rs, tok, 10*time.Second)
			for i, rep := range rs {
				if !rep.shared.FallingBack() || fallbackMetric(t, rep.reg) != 1 {
					t.Fatalf("server %d: apikey_limits_fallback not set with Redis down", i)
				}
			}
			within(t, "Redis down, each server its share, over 10 s", ok, 10*perSecond)

			r.MustStart(t)
			for i, rep := range rs {
				deadline := time.Now().Add(10 * time.Second)
				for rep.shared.FallingBack() {
					if time.Now().After(deadline) {
						t.Fatalf("server %d still falls back 10 s after Redis came back", i)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			load(t, rs, tok, 2*time.Second)
			ok, _ = load(t, rs, tok, 10*time.Second)
			within(t, "Redis back, shared again, over 10 s", ok, 10*perSecond)
		})
	}
}

func fallbackMetric(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	return metric(t, reg, "apikey_limits_fallback")
}
