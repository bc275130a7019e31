package limits_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
)

// replica is one verify replica's provider over the shared Redis.
type replica struct {
	shared *limits.Shared
	reg    *prometheus.Registry
}

func newReplica(t *testing.T, url string, share *atomic.Int32) replica {
	t.Helper()
	o := limits.NewOptions()
	o.RedisURL = url
	o.RedisTimeout = 200 * time.Millisecond
	reg := prometheus.NewRegistry()
	s := startShared(t, o, limits.Local{Replicas: share}, reg, logr.Discard())
	return replica{shared: s, reg: reg}
}

func (r replica) fallback(t *testing.T) float64 {
	t.Helper()
	return metric(t, r.reg, "apikey_limits_fallback")
}

// metric is the value of a gauge or counter without labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s is not registered", name)
	return 0
}

// allowed takes n times from l at the same instant and counts the yeses.
func allowed(l limits.Limit, n int) int {
	return allowedAt(l, n, time.Now().UnixNano())
}

// allowedAt takes n times from l at now (the replica's clock; Redis
// keeps its own) and counts the yeses.
func allowedAt(l limits.Limit, n int, now int64) int {
	ok := 0
	for range n {
		if yes, _ := l.Take(now); yes {
			ok++
		}
	}
	return ok
}

// Two replicas taking from one subject share its burst: together they
// get the burst, not twice it; another subject has its own.
func TestSharedBurstAcrossReplicas(t *testing.T) {
	r := limitstest.StartRedis(t)
	a, b := newReplica(t, r.URL(), nil), newReplica(t, r.URL(), nil)
	rate := limits.Rate{PerSecond: 0.01, Burst: 10} // no refill during the test
	sub := limits.Subject{Namespace: "team-a", Name: "k"}
	la, lb := a.shared.Limit(sub, rate), b.shared.Limit(sub, rate)
	got := allowed(la, 6) + allowed(lb, 6)
	if got != 10 {
		t.Fatalf("two replicas allowed %d requests of a burst of 10, want 10", got)
	}
	ok, st := la.Take(time.Now().UnixNano())
	if ok || st.RetryAfter <= 0 || st.Remaining != 0 || st.Limit != 10 {
		t.Fatalf("over the limit: allowed %v, state %+v; want refused with Retry-After", ok, st)
	}
	other := a.shared.Limit(limits.Subject{Namespace: "team-b", Name: "k"}, rate)
	if got := allowed(other, 3); got != 3 {
		t.Fatalf("a key of the same name in another namespace got %d of 3: counters must be per namespace", got)
	}
	if a.fallback(t) != 0 || a.shared.FallingBack() {
		t.Fatal("fallback set while Redis answers")
	}
}

// Redis keys name no namespace or key name, and hold only a time.
func TestSharedKeysRevealNoNames(t *testing.T) {
	r := limitstest.StartRedis(t)
	a := newReplica(t, r.URL(), nil)
	l := a.shared.Limit(limits.Subject{Namespace: "secret-team", Name: "payments-key"}, limits.Rate{PerSecond: 1, Burst: 5})
	allowed(l, 1)
	c := r.Client()
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "apikey-operator:rate:") {
		t.Fatalf("keys %q, want one apikey-operator:rate:<hash>", keys)
	}
	for _, bad := range []string{"secret-team", "payments-key"} {
		if strings.Contains(keys[0], bad) {
			t.Fatalf("Redis key %q names %q", keys[0], bad)
		}
	}
	v, err := c.Get(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Trim(v, "0123456789") != "" {
		t.Fatalf("value %q, want a time in microseconds", v)
	}
	ttl, err := c.PTTL(context.Background(), keys[0]).Result()
	if err != nil || ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("TTL %v (%v): an idle key must expire once its bucket is full (1s here)", ttl, err)
	}
}

// Redis stopped: every take still answers within the timeout, from the
// replica's share, with the fallback metric set; Redis back: shared
// again, by itself. A flushed Redis (state and scripts) costs a fresh
// burst, nothing more.
func TestSharedFallbackAndRecovery(t *testing.T) {
	r := limitstest.StartRedis(t)
	var share atomic.Int32
	share.Store(2)
	a := newReplica(t, r.URL(), &share)
	rate := limits.Rate{PerSecond: 0.01, Burst: 10}
	l := a.shared.Limit(limits.Subject{Namespace: "ns", Name: "k"}, rate)
	if got := allowed(l, 4); got != 4 {
		t.Fatalf("got %d of 4 with Redis up", got)
	}

	r.Stop()
	start := time.Now()
	got := allowed(l, 20)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("20 takes with Redis down took %s: a take must not wait longer than the timeout (200ms), and only the first should", took)
	}
	if got != 5 {
		t.Fatalf("with Redis down a replica of 2 allowed %d, want its share of the burst, 5", got)
	}
	if a.fallback(t) != 1 || !a.shared.FallingBack() {
		t.Fatal("apikey_limits_fallback not set with Redis down")
	}
	if n := metric(t, a.reg, "apikey_limits_redis_errors_total"); n < 1 {
		t.Fatalf("apikey_limits_redis_errors_total %v, want at least 1", n)
	}

	r.MustStart(t)
	waitFor(t, func() bool { return !a.shared.FallingBack() }, "shared limits back after Redis restarted")
	if a.fallback(t) != 0 {
		t.Fatal("apikey_limits_fallback still set after recovery")
	}
	// The restarted Redis is empty (no persistence): a fresh burst.
	if got := allowed(l, 12); got != 10 {
		t.Fatalf("after recovery got %d of a fresh burst of 10", got)
	}

	c := r.Client()
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// A replica repeats Redis's last refusal of a subject for up to a
	// second without asking (the 11th and 12th above): past that second
	// of its clock, it sees the flush.
	if got := allowedAt(l, 12, time.Now().Add(2*time.Second).UnixNano()); got != 10 {
		t.Fatalf("after FLUSHALL and SCRIPT FLUSH got %d, want a fresh burst of 10 (the script is loaded again)", got)
	}
	if a.shared.FallingBack() {
		t.Fatal("a flushed script cache turned the fallback on")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startShared makes a limits.Shared as operator.Build does and runs its
// background loop (the Redis probe and recovery) until the test ends.
func startShared(t *testing.T, o *limits.Options, fallback limits.Local, reg prometheus.Registerer, log logr.Logger) *limits.Shared {
	t.Helper()
	s, err := limits.NewShared(o, fallback, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}
