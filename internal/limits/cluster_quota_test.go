package limits_test

// A key's quota across verify servers over HTTP sharing one real
// redis-server (issue 14, done-when: "a quota of M lets exactly M
// verifications through across replicas"). Its own file: cluster_test.go
// is the rate limit's.

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/quota"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// startQuotaReplicas starts n verify servers wired as operator.Build wires
// them with --limits-redis-url: one limits.Shared each and the quota
// provider over it. load fills each one's index (namespace shop) with
// keys and consumers that have a quota and no rate limit, so only the
// quota refuses. It returns their forward-auth URLs.
func startQuotaReplicas(t *testing.T, n int, redisURL string, load func(*verify.Index)) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	share := &atomic.Int32{}
	share.Store(int32(n))
	out := make([]string, n)
	for i := range out {
		reg := prometheus.NewRegistry()
		lo := limits.NewOptions()
		lo.RedisURL, lo.RedisTimeout = redisURL, time.Second
		shared, err := limits.NewShared(lo, limits.Local{Replicas: share}, reg, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		quotas, err := quota.NewShared(shared, share, reg)
		if err != nil {
			t.Fatal(err)
		}
		// The quota provider before the key: a key's counter comes
		// from the provider the index has when the key is set.
		ix := verify.NewIndexWithLimits(shared).WithQuotas(quotas)
		load(ix)
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
		out[i] = "http://" + ln.Addr().String() + "/v1/auth?namespace=shop"
	}
	return out
}

// spend sends each server perClient forward-auth requests from each of
// four concurrent clients, the clients taking turns with toks, and counts the answers by kind: 200, and 429
// with the quota's own code. Anything else fails the test: past its quota
// a key is refused as QuotaExceeded, never as rate limited or an error.
func spend(t *testing.T, urls []string, toks []string, perClient int) (ok, exceeded int) {
	t.Helper()
	var okN, exN atomic.Int64
	var mu sync.Mutex
	var other []string
	var wg sync.WaitGroup
	for _, u := range urls {
		for j := range 4 {
			tok := toks[j%len(toks)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 5 * time.Second}
				for range perClient {
					req, _ := http.NewRequest(http.MethodGet, u, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := c.Do(req)
					switch {
					case err != nil:
						mu.Lock()
						other = append(other, err.Error())
						mu.Unlock()
						continue
					case resp.StatusCode == http.StatusOK:
						okN.Add(1)
					case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-Apikey-Code") == "QuotaExceeded":
						exN.Add(1)
					default:
						mu.Lock()
						other = append(other, resp.Status+" "+resp.Header.Get("X-Apikey-Code"))
						mu.Unlock()
					}
					resp.Body.Close()
				}
			}()
		}
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d answers were neither 200 nor QuotaExceeded, first: %s", len(other), other[0])
	}
	return int(okN.Load()), int(exN.Load())
}

// A quota of M lets exactly M verifications through in total, whatever
// the number of verify servers sharing one Redis, however the requests
// fall on them and however many race at once; every request past it is
// refused as QuotaExceeded.
func TestClusterWideQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server twice")
	}
	const m = 150
	for _, n := range []int{2, 3} {
		t.Run(map[int]string{2: "two replicas", 3: "three replicas"}[n], func(t *testing.T) {
			r := limitstest.StartRedis(t)
			tok, err := token.Mint("")
			if err != nil {
				t.Fatal(err)
			}
			urls := startQuotaReplicas(t, n, r.URL(), func(ix *verify.Index) {
				ix.SetKey(testkit.IssuedKey("shop", "metered", tok, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
					k.Spec.Quota = &keysv1.QuotaSpec{Limit: m}
				}))
			})
			// 4 clients per server, 40 requests each: at least 320 in
			// all, more than twice the quota, 12 to 16 in flight at once.
			ok, exceeded := spend(t, urls, []string{tok}, 40)
			t.Logf("%d servers: %d allowed, %d QuotaExceeded", n, ok, exceeded)
			if ok != m {
				t.Fatalf("%d verifications allowed across %d servers, want exactly the quota, %d", ok, n, m)
			}
			if ok+exceeded != n*4*40 {
				t.Fatalf("%d answers, want %d", ok+exceeded, n*4*40)
			}
			// Spent is spent: a second round finds nothing left on any server.
			if ok, _ := spend(t, urls, []string{tok}, 5); ok != 0 {
				t.Fatalf("%d more allowed after the quota was spent", ok)
			}
		})
	}
}

// An ApiConsumer's quota is one count for all its keys across the verify
// servers: two keys of one consumer, requests racing on three servers,
// exactly M pass in all.
func TestClusterWideConsumerQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	const m = 120
	r := limitstest.StartRedis(t)
	a, err := token.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := token.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	urls := startQuotaReplicas(t, 3, r.URL(), func(ix *verify.Index) {
		ix.SetConsumer(&keysv1.ApiConsumer{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "acme", UID: "acme-1"},
			Spec: keysv1.ApiConsumerSpec{Quota: &keysv1.QuotaSpec{Limit: m}}})
		for name, tok := range map[string]string{"a": a, "b": b} {
			ix.SetKey(testkit.IssuedKey("shop", name, tok, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
				k.Spec.ConsumerRef = &keysv1.ConsumerReference{Name: "acme"}
			}))
		}
	})
	ok, exceeded := spend(t, urls, []string{a, b}, 40)
	t.Logf("3 servers, 2 keys: %d allowed, %d QuotaExceeded", ok, exceeded)
	if ok != m || ok+exceeded != 3*4*40 {
		t.Fatalf("%d allowed and %d refused across 3 servers and 2 keys, want exactly the consumer's quota, %d, of %d", ok, exceeded, m, 3*4*40)
	}
	if ok, _ := spend(t, urls, []string{b, a}, 5); ok != 0 {
		t.Fatalf("%d more allowed after the consumer's quota was spent", ok)
	}
}
