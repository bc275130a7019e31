package limits_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
)

// logLines collects a logger's lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 0})
}

func (l *logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			out = append(out, x)
		}
	}
	return out
}

// readyz serves checks as the manager's health probe server does
// (controller-runtime's healthz.Handler under /readyz) and returns the
// status of path.
func readyz(t *testing.T, s *limits.Shared, path string) (int, string) {
	t.Helper()
	h := http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{
		"ping":                 healthz.Ping,
		limits.ReadyzCheckName: s.ReadyzCheck,
	}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

// A slow Redis (writes paused with CLIENT PAUSE WRITE, as a Redis stuck
// in a long command, a fork or a saturated network looks to a client; it
// still answers PING, as a stalled or read-only Redis may):
// a verification waits at most the timeout, then answers from the
// replica's share; the fallback is reported by the metric, by one log
// line naming neither key nor subject, and by the readiness check on its
// own path, while the replica stays ready; once Redis answers again the
// replica goes back to shared limits by itself.
func TestSharedSlowRedis(t *testing.T) {
	r := limitstest.StartRedis(t)
	var lines logLines
	o := limits.NewOptions()
	o.RedisURL, o.RedisTimeout = r.URL(), 200*time.Millisecond
	reg := prometheus.NewRegistry()
	var share atomic.Int32
	share.Store(2)
	s := startShared(t, o, limits.Local{Replicas: &share}, reg, lines.logger())

	sub := limits.Subject{Namespace: "tenant-secret-ns", Name: "secret-key-name"}
	l := s.Limit(sub, limits.Rate{PerSecond: 0.01, Burst: 10})
	if got := allowed(l, 2); got != 2 || s.FallingBack() {
		t.Fatalf("Redis up: %d of 2, falling back %v", got, s.FallingBack())
	}
	if code, _ := readyz(t, s, "/readyz/"+limits.ReadyzCheckName); code != 200 {
		t.Fatalf("/readyz/%s is %d with Redis answering", limits.ReadyzCheckName, code)
	}

	c := r.Client()
	defer c.Close()
	// Paused for far longer than any wait the test allows: a take that
	// waited for Redis would not come back in time.
	if err := c.Do(context.Background(), "CLIENT", "PAUSE", "120000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			if err := c.Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Error(err)
			}
		}
	}
	defer unpause()

	type result struct{ ok int }
	res := make(chan result, 1)
	go func() { res <- result{allowed(l, 20)} }()
	select {
	case got := <-res:
		// Its share of the burst: 10/2, of which Redis already counted
		// nothing locally.
		if got.ok != 5 {
			t.Fatalf("with Redis paused a replica of 2 allowed %d of 20, want its share of the burst, 5", got.ok)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("20 takes did not come back while Redis was paused: a take waited for Redis beyond its timeout")
	}
	if !s.FallingBack() || metric(t, reg, "apikey_limits_fallback") != 1 {
		t.Fatal("apikey_limits_fallback not set with Redis paused")
	}
	if n := metric(t, reg, "apikey_limits_redis_errors_total"); n != 1 {
		t.Fatalf("apikey_limits_redis_errors_total %v: only the first take should have asked Redis", n)
	}
	logged := lines.matching("Redis did not answer")
	if len(logged) != 1 {
		t.Fatalf("%d log lines about the outage, want exactly one: %q", len(logged), logged)
	}
	for _, x := range []string{sub.Namespace, sub.Name} {
		if strings.Contains(logged[0], x) {
			t.Fatalf("the outage log line names %q: %s", x, logged[0])
		}
	}
	code, body := readyz(t, s, "/readyz/"+limits.ReadyzCheckName)
	if code != http.StatusInternalServerError || !strings.Contains(body, "own share") {
		t.Fatalf("/readyz/%s is %d %q while falling back, want a failure saying why", limits.ReadyzCheckName, code, body)
	}
	if code, body := readyz(t, s, "/readyz"); code != 200 {
		t.Fatalf("/readyz (the kubelet's probe) is %d %q while falling back: every replica would leave the Service", code, body)
	}

	unpause()
	waitFor(t, func() bool { return !s.FallingBack() }, "shared limits back after Redis answered again")
	if metric(t, reg, "apikey_limits_fallback") != 0 {
		t.Fatal("apikey_limits_fallback still set after recovery")
	}
	if code, _ := readyz(t, s, "/readyz/"+limits.ReadyzCheckName); code != 200 {
		t.Fatalf("/readyz/%s is %d after recovery", limits.ReadyzCheckName, code)
	}
	if got := lines.matching("Redis answers again"); len(got) != 1 {
		t.Fatalf("%d recovery log lines, want one", len(got))
	}
	// Shared again: Redis still holds the 2 taken before the pause, and
	// perhaps the one take that timed out, if Redis ran it once unpaused
	// (a call that timed out may still count: the client cannot recall it).
	if got := allowed(l, 12); got != 8 && got != 7 {
		t.Fatalf("after recovery got %d, want the 8 (or 7) left of the shared burst of 10", got)
	}
}

// A Redis that cannot be reached from the start is reported at start,
// before any verification waits for it.
func TestSharedUnreachableAtStart(t *testing.T) {
	r := limitstest.StartRedis(t)
	url := r.URL()
	r.Stop()
	var lines logLines
	o := limits.NewOptions()
	o.RedisURL = url
	reg := prometheus.NewRegistry()
	s := startShared(t, o, limits.Local{}, reg, lines.logger())
	waitFor(t, s.FallingBack, "the fallback reported at start")
	if metric(t, reg, "apikey_limits_fallback") != 1 || len(lines.matching("Redis did not answer")) != 1 {
		t.Fatal("an unreachable Redis at start: no metric or no log line")
	}
	r.MustStart(t)
	waitFor(t, func() bool { return !s.FallingBack() }, "shared limits once Redis started")
}
