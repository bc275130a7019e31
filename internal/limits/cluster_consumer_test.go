package limits_test

// Keys of one ApiConsumer share its rate limit across verify servers over
// HTTP sharing one real redis-server (issue 14, done-when: "keys of one
// consumer share its limit"). Its own file: cluster_test.go is the key's.

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
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// consumerKey is one key of the test: its namespace, name, token and the
// consumer it names.
type consumerKey struct{ ns, name, tok, consumer string }

// startConsumerReplicas starts n verify servers sharing the Redis at
// redisURL, each holding every consumer (namespace, name) limited to rate
// and every key. It returns each server's base URL.
func startConsumerReplicas(t *testing.T, n int, redisURL string, consumers []consumerID, rate keysv1.RateLimitSpec, keys []consumerKey) []string {
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
		ix := verify.NewIndexWithLimits(shared)
		for _, c := range consumers {
			ix.SetConsumer(&keysv1.ApiConsumer{
				ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: c.name},
				Spec:       keysv1.ApiConsumerSpec{RateLimit: &rate},
			})
		}
		for _, k := range keys {
			ix.SetKey(testkit.IssuedKey(k.ns, k.name, k.tok, time.Now().Add(time.Hour), func(ak *keysv1.ApiKey) {
				ak.Spec.ConsumerRef = &keysv1.ConsumerReference{Name: k.consumer}
			}))
		}
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
		out[i] = "http://" + ln.Addr().String() + "/v1/auth?namespace="
	}
	return out
}

// consumerID names one ApiConsumer.
type consumerID struct{ ns, name string }

// loadKeys sends forward-auth requests with every key to every server
// for d, two clients per key and server pacing themselves at up to
// 100/s, and counts the 200s per key. An answer other than 200 or 429
// fails the test; so does a 200 naming another consumer.
func loadKeys(t *testing.T, urls []string, keys []consumerKey, d time.Duration) []int {
	t.Helper()
	ok := make([]atomic.Int64, len(keys))
	var other, wrong atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, u := range urls {
		for i, k := range keys {
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{Timeout: 5 * time.Second}
					for time.Now().Before(stop) {
						req, _ := http.NewRequest(http.MethodGet, u+k.ns, nil)
						req.Header.Set("Authorization", "Bearer "+k.tok)
						resp, err := c.Do(req)
						switch {
						case err != nil:
							other.Add(1)
						case resp.StatusCode == http.StatusOK:
							ok[i].Add(1)
							if resp.Header.Get("X-ApiKey-Consumer") != k.consumer || resp.Header.Get("X-ApiKey-Namespace") != k.ns {
								wrong.Add(1)
							}
						case resp.StatusCode == http.StatusTooManyRequests:
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
	}
	wg.Wait()
	if other.Load() > 0 {
		t.Fatalf("%d answers were neither 200 nor 429 (or failed)", other.Load())
	}
	if wrong.Load() > 0 {
		t.Fatalf("%d answers named the wrong consumer or namespace", wrong.Load())
	}
	out := make([]int, len(keys))
	for i := range ok {
		out[i] = int(ok[i].Load())
	}
	return out
}

// Two keys of one consumer limited to N/s are accepted at N/s ± 10 % in
// total over 10 s across two and three verify servers sharing one Redis.
// A tenant attacker's consumer of the same name in another namespace,
// with its own key, shares nothing: it gets its own N/s, and takes none
// of the victim's.
func TestClusterConsumerSharesLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 25 s of load")
	}
	// As in TestClusterWideRateLimit: a low rate the clients' demand stays
	// above on a busy machine, a burst spent by a first second of load.
	const perSecond, burst = 5, 10
	rate := keysv1.RateLimitSpec{RequestsPerSecond: perSecond, Burst: burst}
	for _, n := range []int{2, 3} {
		t.Run(map[int]string{2: "two replicas", 3: "three replicas"}[n], func(t *testing.T) {
			r := limitstest.StartRedis(t)
			keys := []consumerKey{
				{ns: "shop", name: "web"}, {ns: "shop", name: "mobile"},
				{ns: "attacker", name: "mine"},
			}
			for i := range keys {
				tok, err := token.Mint("")
				if err != nil {
					t.Fatal(err)
				}
				keys[i].tok, keys[i].consumer = tok, "acme"
			}
			urls := startConsumerReplicas(t, n, r.URL(),
				[]consumerID{{"shop", "acme"}, {"attacker", "acme"}}, rate, keys)
			loadKeys(t, urls, keys, 2*time.Second)
			got := loadKeys(t, urls, keys, 10*time.Second)
			t.Logf("allowed over 10 s: shop/web %d, shop/mobile %d, attacker/mine %d", got[0], got[1], got[2])
			if got[0] == 0 || got[1] == 0 {
				t.Fatalf("one of the consumer's keys got nothing: %v", got)
			}
			within(t, "two keys of shop/acme together", got[0]+got[1], 10*perSecond)
			within(t, "attacker/acme, same consumer name, own limit", got[2], 10*perSecond)
		})
	}
}
