package limits_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
)

// scriptCalls is the number of EVALSHA and EVAL calls Redis has run since
// its statistics were last reset: the round trips the limiter made.
func scriptCalls(t *testing.T, r *limitstest.Server) int {
	t.Helper()
	c := r.Client()
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=([0-9]+)`).FindAllStringSubmatch(info, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// resetStats zeroes Redis's command statistics once the replicas' probes
// at start (one script call each, two when the script is not loaded yet)
// are over: once the count holds still.
func resetStats(t *testing.T, r *limitstest.Server) {
	t.Helper()
	last := -1
	waitFor(t, func() bool {
		n := scriptCalls(t, r)
		settled := n >= 1 && n == last
		last = n
		time.Sleep(100 * time.Millisecond)
		return settled
	}, "the replicas' probes at start")
	c := r.Client()
	defer c.Close()
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func newSharedWith(t *testing.T, url string, leases bool) *limits.Shared {
	t.Helper()
	o := limits.NewOptions()
	o.RedisURL, o.RedisTimeout, o.RedisLeases = url, time.Second, leases
	s := startShared(t, o, limits.Local{}, prometheus.NewRegistry(), logr.Discard())
	return s
}

// Two replicas hammering one key with a large burst take it in leases:
// far fewer round trips than verifications, and together never more than
// Redis allowed (the burst plus what the rate refilled meanwhile), since
// a leased request is counted in Redis when it is leased.
func TestSharedLeasesHotKey(t *testing.T) {
	r := limitstest.StartRedis(t)
	a, b := newSharedWith(t, r.URL(), true), newSharedWith(t, r.URL(), true)
	sub := limits.Subject{Namespace: "ns", Name: "hot"}
	rate := limits.Rate{PerSecond: 100, Burst: 2000} // leases of up to 200
	la, lb := a.Limit(sub, rate), b.Limit(sub, rate)
	resetStats(t, r)
	// Within the burst: every take is allowed, in few round trips. Each
	// take at its own time, as verifications are: a lease is fresh for
	// 100ms of the caller's clock.
	start := time.Now()
	got := 0
	take := func(n int) {
		for range n {
			if ok, _ := la.Take(time.Now().UnixNano()); ok {
				got++
			}
			if ok, _ := lb.Take(time.Now().UnixNano()); ok {
				got++
			}
		}
	}
	take(800)
	if calls := scriptCalls(t, r); got < 1600-2*200 || calls*4 > got {
		t.Fatalf("1600 takes within the burst of 2000: %d allowed in %d round trips; want nearly all, in a fraction of the round trips", got, calls)
	} else {
		t.Logf("1600 takes within the burst: %d allowed in %d round trips", got, calls)
	}
	// Past it: never more than Redis allowed, and refusals are not asked
	// again before Redis's Retry-After.
	take(2000)
	elapsed := time.Since(start)
	// What Redis can have granted: the burst, the refill over the run,
	// and one more second of refill for rounding at either end.
	most := 2000 + int(100*(elapsed.Seconds()+1))
	calls := scriptCalls(t, r)
	t.Logf("5600 takes: %d allowed (at most %d) in %d round trips, %s", got, most, calls, elapsed)
	if got > most {
		t.Fatalf("%d allowed, more than Redis can have granted (%d)", got, most)
	}
	if calls*2 > 5600 {
		t.Fatalf("%d round trips for 5600 takes: refusals should be answered locally until Retry-After", calls)
	}
}

// A limit with a small burst never leases (every verification is one
// round trip, as exact as before), nor does any with leases off.
func TestSharedNoLeases(t *testing.T) {
	r := limitstest.StartRedis(t)
	for _, c := range []struct {
		name   string
		leases bool
		rate   limits.Rate
	}{
		{"burst under 20", true, limits.Rate{PerSecond: 5, Burst: 10}},
		{"leases off", false, limits.Rate{PerSecond: 100, Burst: 2000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSharedWith(t, r.URL(), c.leases)
			l := s.Limit(limits.Subject{Namespace: "ns", Name: c.name}, c.rate)
			resetStats(t, r)
			// Within the burst: all allowed, each its own round trip.
			for range 10 {
				if ok, _ := l.Take(time.Now().UnixNano()); !ok {
					t.Fatal("refused within the burst")
				}
			}
			if calls := scriptCalls(t, r); calls != 10 {
				t.Fatalf("%d round trips for 10 takes, want 10", calls)
			}
		})
	}
}
