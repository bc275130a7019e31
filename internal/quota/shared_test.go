package quota_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

// replica is one verify replica's quota provider over the shared Redis,
// on the rate limiter's connection as the operator wires it.
type replica struct {
	limits *limits.Shared
	quotas *quota.Shared
	reg    *prometheus.Registry
}

func newReplica(t *testing.T, url string, share *atomic.Int32) replica {
	t.Helper()
	o := limits.NewOptions()
	o.RedisURL = url
	o.RedisTimeout = 2 * time.Second // a loaded machine must not turn the fallback on
	reg := prometheus.NewRegistry()
	l, err := limits.NewShared(o, limits.Local{Replicas: share}, reg, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	q, err := quota.NewShared(l, share, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return replica{limits: l, quotas: q, reg: reg}
}

var sub = quota.Subject{Kind: "ApiKey", Namespace: "team-a", Name: "k", UID: "8d3c"}

// spendAll has every counter take from many goroutines at once until n
// takes were made in all, and counts the verdicts.
func spendAll(counters []quota.Counter, n int) (allowed, exceeded int64) {
	var a, e atomic.Int64
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for _, c := range counters {
		for range 4 {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					switch v, _ := c.Take(time.Now().UnixNano()); v {
					case quota.Allowed:
						a.Add(1)
					case quota.Exceeded:
						e.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	return a.Load(), e.Load()
}

// A quota of M lets exactly M verifications through across two and
// three replicas taking at once.
func TestSharedQuotaExactAcrossReplicas(t *testing.T) {
	r := limitstest.StartRedis(t)
	for _, n := range []int{2, 3} {
		var counters []quota.Counter
		q := quota.Quota{Limit: 137}
		s := sub
		s.UID = strings.Repeat("x", n)
		for range n {
			counters = append(counters, newReplica(t, r.URL(), nil).quotas.Counter(s, q))
		}
		allowed, exceeded := spendAll(counters, 400)
		if allowed != 137 || exceeded != 400-137 {
			t.Fatalf("%d replicas: allowed %d, exceeded %d of 400; want exactly 137 allowed", n, allowed, exceeded)
		}
		last, ok := counters[0].Last()
		if !ok || last.Used != 137 || last.Remaining() != 0 {
			t.Fatalf("%d replicas: last count %+v (%v), want 137 used", n, last, ok)
		}
	}
}

// Redis holds a hash of the subject and two numbers: no kind, namespace,
// name or UID; keys of another namespace or UID count apart.
func TestSharedQuotaRevealsNoNames(t *testing.T) {
	r := limitstest.StartRedis(t)
	a := newReplica(t, r.URL(), nil)
	secret := quota.Subject{Kind: "ApiKey", Namespace: "secret-team", Name: "payments-key", UID: "c0ffee"}
	c := a.quotas.Counter(secret, quota.Quota{Limit: 2})
	spendAll([]quota.Counter{c}, 5)
	other := a.quotas.Counter(quota.Subject{Kind: "ApiKey", Namespace: "other-team", Name: "payments-key", UID: "c0ffee"}, quota.Quota{Limit: 2})
	if got, _ := spendAll([]quota.Counter{other}, 2); got != 2 {
		t.Fatalf("a key of the same name and UID in another namespace got %d of its own 2: a tenant must not drain another's quota", got)
	}
	cl := r.Client()
	defer cl.Close()
	keys, err := cl.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %q, want two counters", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "apikey-operator:quota:") {
			t.Fatalf("key %q, want apikey-operator:quota:<hash>", k)
		}
		for _, bad := range []string{"secret-team", "payments-key", "c0ffee", "ApiKey", "other-team"} {
			if strings.Contains(k, bad) {
				t.Fatalf("Redis key %q names %q", k, bad)
			}
		}
		h, err := cl.HGetAll(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range h {
			if (f != "u" && f != "t") || strings.Trim(v, "0123456789") != "" {
				t.Fatalf("hash %v, want only u and t, numbers", h)
			}
		}
		if ttl, err := cl.PTTL(context.Background(), k).Result(); err != nil || ttl <= 0 || ttl > 7*24*time.Hour {
			t.Fatalf("TTL %v (%v): an unused counter must expire within a week", ttl, err)
		}
	}
}

// A flushed Redis does not refill the quota: counting resumes from the
// newest count the replica knows (its last answer, or status.quota), and
// apikey_quota_reseeded_total says it happened. A new replica that never
// counted resumes from status.quota.
func TestSharedQuotaSurvivesFlush(t *testing.T) {
	r := limitstest.StartRedis(t)
	a := newReplica(t, r.URL(), nil)
	q := quota.Quota{Limit: 10}
	c := a.quotas.Counter(sub, q)
	if got, _ := spendAll([]quota.Counter{c}, 6); got != 6 {
		t.Fatalf("allowed %d of 6", got)
	}
	flush(t, r)
	if got, _ := spendAll([]quota.Counter{c}, 10); got != 4 {
		t.Fatalf("after FLUSHALL allowed %d, want the 4 that remained", got)
	}
	if n := testutil.ToFloat64(metricOf(t, a.reg, "apikey_quota_reseeded_total")); n != 1 {
		t.Fatalf("apikey_quota_reseeded_total %v, want 1", n)
	}

	// A replica that never counted this subject, with status.quota
	// saying 7 were used (a rolling restart after the flush).
	flush(t, r)
	b := newReplica(t, r.URL(), nil)
	fresh := b.quotas.Counter(sub, q)
	fresh.Seed(quota.State{Used: 7, Tick: 0, At: time.Now().Add(-time.Minute).UnixNano()})
	if got, _ := spendAll([]quota.Counter{fresh}, 10); got != 3 {
		t.Fatalf("a new replica after a flush allowed %d, want 3 (status.quota said 7 of 10 used)", got)
	}
	// Without status (a key never counted), a full quota.
	never := b.quotas.Counter(quota.Subject{Kind: "ApiKey", Namespace: "n", Name: "new", UID: "1"}, q)
	if got, _ := spendAll([]quota.Counter{never}, 12); got != 10 {
		t.Fatalf("a new key allowed %d, want its 10", got)
	}
}

// Redis stopped: each replica spends at most its share of what it last
// knew to remain, answering within the timeout; Redis back (empty): what
// was spent meanwhile is added, so the total never exceeds the quota.
func TestSharedQuotaOutage(t *testing.T) {
	r := limitstest.StartRedis(t)
	var share atomic.Int32
	share.Store(2)
	a, b := newReplica(t, r.URL(), &share), newReplica(t, r.URL(), &share)
	q := quota.Quota{Limit: 20}
	ca, cb := a.quotas.Counter(sub, q), b.quotas.Counter(sub, q)
	// 9 through a, then 1 through b: a last saw 9 used, b 10.
	if got, _ := spendAll([]quota.Counter{ca}, 9); got != 9 {
		t.Fatalf("allowed %d of 9 with Redis up", got)
	}
	if got, _ := spendAll([]quota.Counter{cb}, 1); got != 1 {
		t.Fatal("b refused with Redis up")
	}

	r.Stop()
	start := time.Now()
	gotA, _ := spendAll([]quota.Counter{ca}, 20)
	gotB, _ := spendAll([]quota.Counter{cb}, 20)
	got := gotA + gotB
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("40 takes with Redis down took %s: only the first of each replica may wait for the timeout", took)
	}
	// a: half of the 11 it thinks remain, 5; b: half of 10, 5.
	if gotA != 5 || gotB != 5 {
		t.Fatalf("with Redis down a allowed %d and b %d; want 5 each, half of what each last saw remaining (11 and 10)", gotA, gotB)
	}
	if !a.limits.FallingBack() || !b.limits.FallingBack() {
		t.Fatal("fallback not on with Redis down")
	}

	// Redis back, empty (no persistence): the first replica to answer
	// seeds it from what it last saw, and each adds what it spent
	// meanwhile with its next call. Until the other's count arrives the
	// first may allow what the other already spent: the quota can be
	// overrun by at most one replica's outage share (docs/limits.md).
	r.MustStart(t)
	waitFor(t, func() bool { return !a.limits.FallingBack() && !b.limits.FallingBack() }, "Redis answering again")
	after, _ := spendAll([]quota.Counter{ca, cb}, 40)
	// Worst case here: a seeds the empty Redis from its view (9 used,
	// one behind b's) and spends before b's 5 arrive: 20 + 5 + 1.
	if total := 10 + got + after; total < 20 || total > 26 {
		t.Fatalf("before the outage 10, during it %d, after it %d: %d in all, want the quota, 20, overrun by at most b's share (5) and a's lag (1)", got, after, total)
	}
	for _, c := range []quota.Counter{ca, cb} {
		if v, st := c.Take(time.Now().UnixNano()); v != quota.Exceeded || st.Used < 20 {
			t.Fatalf("after recovery: %v %+v, want Exceeded with all 20 counted", v, st)
		}
	}
}

// Several replicas without Redis refuse a quota rather than count it
// once per replica.
func TestLocalQuotaSeveralReplicas(t *testing.T) {
	var r atomic.Int32
	r.Store(3)
	c := quota.Local{Replicas: &r}.Counter(sub, quota.Quota{Limit: 5})
	if v, _ := c.Take(time.Now().UnixNano()); v != quota.Unavailable {
		t.Fatalf("three replicas without Redis: %v, want Unavailable", v)
	}
}

func flush(t *testing.T, r *limitstest.Server) {
	t.Helper()
	cl := r.Client()
	defer cl.Close()
	if err := cl.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func metricOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gathered{reg: reg, name: name}
}

// gathered is one metric of a registry, for testutil.ToFloat64.
type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g gathered) Describe(chan<- *prometheus.Desc) {}
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.UntypedValue, mf.GetMetric()[0].GetCounter().GetValue())
		}
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
