package limits

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// gcra is the shared rate limit: the generic cell rate algorithm, one
// EVALSHA per call, so one round trip. Redis keeps one value per
// subject, the theoretical arrival time (TAT) of the next request in
// microseconds of Redis's own clock (TIME), so replicas whose clocks
// disagree still count alike. The key expires when the bucket would be
// full again: an idle subject costs no memory.
//
// A call takes up to ARGV[3] requests at once (a lease, see sharedLimit):
// as many as are allowed now, at least one, or none.
//
// Returns {taken, remaining, retry after µs, reset µs}.
const gcra = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = 1000000 / rate
local tolerance = emission * burst
local tat = tonumber(redis.call("GET", KEYS[1]))
if not tat or tat < now then
  tat = now
end
local avail = math.floor((now + tolerance - tat) / emission)
if avail < 1 then
  return {0, 0, math.ceil(tat + emission - tolerance - now), math.ceil(tat - now)}
end
local n = math.min(want, avail)
local next_tat = tat + n * emission
local reset = next_tat - now
redis.call("SET", KEYS[1], string.format("%.0f", next_tat), "PX", math.ceil(reset / 1000) + 1)
return {n, avail - n, 0, math.ceil(reset)}
`

var gcraScript = redis.NewScript(gcra)

// Shared is the provider with Redis: every replica takes from the same
// counters, so a limit holds for the whole cluster. While Redis cannot
// answer within the timeout it falls back to its Local provider (each
// replica enforcing its share), sets apikey_limits_fallback, logs once,
// and probes Redis every second until it runs the script again.
type Shared struct {
	client   *redis.Client
	timeout  time.Duration
	fallback Local
	down     atomic.Bool
	probe    time.Duration
	log      logr.Logger
	metrics  sharedMetrics
	noLeases bool // Options.RedisNoLeases
}

type sharedMetrics struct {
	fallback prometheus.Gauge
	errors   prometheus.Counter
}

// NewShared connects to the Redis of o (lazily: the first take dials).
// reg receives the fallback metrics.
func NewShared(o *Options, fallback Local, reg prometheus.Registerer, log logr.Logger) (*Shared, error) {
	ro, err := o.redisOptions()
	if err != nil {
		return nil, err
	}
	quietClient.Do(func() { redis.SetLogger(clientLog{log.V(1)}) })
	s := &Shared{client: redis.NewClient(ro), timeout: o.RedisTimeout, fallback: fallback, probe: time.Second, log: log, noLeases: !o.RedisLeases}
	s.metrics.fallback = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "apikey_limits_fallback",
		Help: "1 while Redis does not answer and each verify replica enforces its own share of the rate limits instead of the cluster-wide limit; 0 while limits are shared.",
	})
	s.metrics.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikey_limits_redis_errors_total",
		Help: "Rate-limit calls to Redis that failed or timed out (each turns on the per-replica fallback).",
	})
	for _, c := range []prometheus.Collector{s.metrics.fallback, s.metrics.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register limits metrics: %w", err)
		}
	}
	return s, nil
}

// Limit returns the subject's shared limit, with its local share for
// when Redis is down.
func (s *Shared) Limit(sub Subject, r Rate) Limit {
	burst := max(r.Burst, 1)
	return &sharedLimit{
		s:        s,
		keys:     []string{counterKey(rateCounter(sub), sub)},
		rate:     r.PerSecond,
		limit:    burst,
		window:   time.Duration(float64(burst) / r.PerSecond * 1e9),
		emission: time.Duration(1e9 / r.PerSecond),
		maxLease: s.maxLease(burst),
		size:     1,
		local:    s.fallback.Limit(sub, r),
	}
}

// Client, Timeout, Down and Failed share this connection and its
// fallback state with the quota counters (internal/quota.Backend): one
// Redis, one outage, one fallback.
func (s *Shared) Client() redis.Scripter { return s.client }

// Timeout bounds every call to Redis.
func (s *Shared) Timeout() time.Duration { return s.timeout }

// Down tells whether Redis is known not to answer now.
func (s *Shared) Down() bool { return s.down.Load() }

// Failed turns the fallback on after an error or timeout of a call.
func (s *Shared) Failed(err error) { s.failed(err) }

// rateCounter names the counter of a subject's rate limit: "rate" for a
// key (as before consumers existed, so an upgrade keeps every key's
// counter), "consumer" for the one limit all of a consumer's keys share.
func rateCounter(sub Subject) string {
	if sub.Kind == KindConsumer {
		return KindConsumer
	}
	return "rate"
}

// maxLease is the largest lease of a limit with this burst: a tenth of
// it, at most maxLease; 1 (no leases) when leases are off.
func (s *Shared) maxLease(burst int) int {
	if s.noLeases {
		return 1
	}
	return max(1, min(maxLease, burst/10))
}

// Falling back tells whether limits are enforced per replica now.
func (s *Shared) FallingBack() bool { return s.down.Load() }

// ReadyzCheckName names the readiness check that reports the fallback.
const ReadyzCheckName = "limits-redis"

// ReadyzCheck is the readiness check ReadyzCheckName. Asked on its own
// path (/readyz/limits-redis) it fails while Redis does not answer, so
// that an operator or a monitor can ask a replica which limits it
// enforces. Asked as part of the whole (/readyz, the kubelet's probe) it
// never fails: a replica enforcing its share still answers every
// verification correctly, and failing there would take every replica
// out of the Service at once when Redis goes down, which is the outage
// the fallback exists to avoid. The metric apikey_limits_fallback and
// its alert are the signal to act on.
func (s *Shared) ReadyzCheck(r *http.Request) error {
	if r == nil || path.Base(r.URL.Path) != ReadyzCheckName || !s.down.Load() {
		return nil
	}
	return errors.New("degraded: Redis does not answer, so this replica enforces its own share of every rate limit instead of the cluster-wide limit (checked every second)")
}

// Start probes Redis at once, so that a Redis unreachable from the start
// is reported before the first verification, then every second while it
// is down, until ctx ends; then it closes the client. A manager.Runnable
// every verify replica runs.
func (s *Shared) Start(ctx context.Context) error {
	defer s.client.Close()
	s.ping(ctx)
	t := time.NewTicker(s.probe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if s.down.Load() {
				s.ping(ctx)
			}
		}
	}
}

// NeedLeaderElection is false: every replica limits.
func (s *Shared) NeedLeaderElection() bool { return false }

// probeKey is the counter the probe takes from: the script a verification
// runs, on a key of its own with a rate no probe reaches. PING would not
// do: a Redis can answer PING and still refuse or stall the script (a
// replica promoted away from, now read-only; writes paused), and a probe
// that says "up" there would switch every replica back to a Redis that
// makes each verification wait for the timeout again.
var probeKey = []string{"apikey-operator:probe"}

func (s *Shared) ping(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	if err := gcraScript.Run(ctx, s.client, probeKey, 1e9, 1, 1).Err(); err != nil {
		if parent.Err() == nil && !s.down.Load() {
			// The first probe, at start: a Redis that cannot be
			// reached turns the fallback on before any verification
			// waits for it. Later probes run only while it is on.
			s.failed(err)
		}
		return
	}
	if s.down.CompareAndSwap(true, false) {
		s.metrics.fallback.Set(0)
		s.log.Info("Redis answers again: rate limits and quotas are cluster-wide again")
	}
}

// failed turns the fallback on. The error comes from the Redis client
// and names at most the server's address; no token ever reaches Redis.
func (s *Shared) failed(err error) {
	s.metrics.errors.Inc()
	if s.down.CompareAndSwap(false, true) {
		s.metrics.fallback.Set(1)
		s.log.Error(err, "Redis did not answer a rate-limit or quota call: each replica enforces its share of every limit and quota until it does (checked every second)")
	}
}

// quietClient routes the Redis client's own log lines (one per failed
// dial, many a second while Redis is down) to our logger at V(1): Shared
// already logs the outage once. The client's logger is global, so it is
// set once.
var quietClient sync.Once

type clientLog struct{ log logr.Logger }

func (c clientLog) Printf(_ context.Context, format string, v ...any) {
	c.log.Info("redis client", "message", fmt.Sprintf(format, v...))
}

// Leases: a replica that serves many verifications of one subject takes
// several requests from Redis in one call and serves the next ones from
// them, so a hot key costs a fraction of a round trip per verification.
//
//   - A lease is at most maxLease requests and at most a tenth of the
//     burst, so a limit whose burst is under 20 never leases (every
//     verification asks Redis, exactly as without leases).
//   - It starts at one request and doubles each time a lease is used up
//     within leaseTTL, halving when one expires unused: only a replica
//     that really sees the traffic leases much.
//   - Leased requests are taken from Redis when leased: the cluster never
//     allows more than the limit. A replica may use them up to leaseTTL
//     later (so a window can see up to a lease per replica more, from the
//     window before), and drops what it has not used by then (so a key at
//     its limit may get up to a lease per replica per leaseTTL less).
const (
	maxLease = 256
	leaseTTL = 100 * time.Millisecond
	// maxRefusal bounds how long a replica repeats Redis's last refusal
	// of a subject without asking again (see Take).
	maxRefusal = time.Second
)

type sharedLimit struct {
	s        *Shared
	keys     []string
	rate     float64
	limit    int
	window   time.Duration
	emission time.Duration // the time one request adds: 1/rate
	maxLease int
	local    Limit

	mu     sync.Mutex
	leased int   // requests taken from Redis and not yet used
	until  int64 // when the unused ones are dropped (Unix ns)
	size   int   // how many the last call asked for
	// lastCall is when this replica last asked Redis (Unix ns).
	lastCall int64
	st       State // Redis's answer to the last lease, for the headers
	// refusedUntil is when Redis's last refusal ends (Unix ns), and
	// refused its answer.
	refusedUntil int64
	refused      State
}

// Take serves from the replica's lease, else asks Redis unless it is
// known to be down; any error or timeout answers from the local share.
// No lock is held while Redis is asked: a slow call delays only its own
// verification.
func (l *sharedLimit) Take(now int64) (bool, State) {
	if l.s.down.Load() {
		return l.local.Take(now)
	}
	if ok, st, known := l.fromLease(now); known {
		return ok, st
	}
	want := l.leaseSize(now)
	ok, n, st, err := l.take(want)
	if err != nil {
		l.s.failed(err)
		return l.local.Take(now)
	}
	if !ok && st.RetryAfter > 0 {
		// No request of this subject can be allowed before RetryAfter,
		// whichever replica asks (the TAT only grows): refuse until then,
		// for at most maxRefusal, without asking again. Exact, and a key
		// hammered far over its limit costs one round trip per
		// RetryAfter, not per request. The bound: a flushed Redis would
		// allow again at once, and a replica should notice soon.
		l.mu.Lock()
		l.refusedUntil, l.refused = now+int64(min(st.RetryAfter, maxRefusal)), st
		l.mu.Unlock()
	}
	if ok && n > 1 {
		l.mu.Lock()
		l.leased += n - 1
		l.until = now + int64(leaseTTL)
		l.st = st
		st.Remaining = min(l.limit, st.Remaining+l.leased)
		l.mu.Unlock()
	}
	return ok, st
}

// fromLease answers without Redis when it can: refused while the last
// refusal holds, allowed from a lease that is left and fresh. known is
// false when Redis must be asked.
func (l *sharedLimit) fromLease(now int64) (ok bool, st State, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now < l.refusedUntil {
		st = l.refused
		st.RetryAfter = time.Duration(l.refusedUntil - now)
		return false, st, true
	}
	if l.maxLease <= 1 {
		return false, State{}, false
	}
	if l.leased > 0 && now >= l.until {
		// Expired unused: ask for less next time.
		l.leased = 0
		l.size = max(1, l.size/2)
	}
	if l.leased == 0 {
		return false, State{}, false
	}
	l.leased--
	st = l.st
	st.Remaining = min(l.limit, st.Remaining+l.leased)
	if st.Remaining == 0 {
		st.RetryAfter = max(0, st.Reset-time.Duration(l.limit-1)*l.emission)
	}
	return true, st, true
}

// leaseSize is how many requests to ask Redis for now: double the last
// when this replica comes back within leaseTTL of its last call (its
// lease, if any, used up in time: it serves more than it leases), one
// again after a quiet leaseTTL.
func (l *sharedLimit) leaseSize(now int64) int {
	if l.maxLease <= 1 {
		return 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now-l.lastCall < int64(leaseTTL) {
		l.size = min(l.maxLease, max(1, l.size)*2)
	} else {
		l.size = 1
	}
	l.lastCall = now
	return l.size
}

// take asks Redis for up to want requests: whether one was allowed, how
// many were taken, and the state after.
func (l *sharedLimit) take(want int) (bool, int, State, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.s.timeout)
	defer cancel()
	v, err := gcraScript.Run(ctx, l.s.client, l.keys, l.rate, l.limit, want).Int64Slice()
	if err != nil {
		return false, 0, State{}, err
	}
	if len(v) != 4 || v[0] < 0 || v[0] > int64(want) {
		return false, 0, State{}, errors.New("rate-limit script answered an unexpected shape")
	}
	st := State{
		Limit:      l.limit,
		Remaining:  int(min(v[1], int64(l.limit))),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		Reset:      time.Duration(v[3]) * time.Microsecond,
		Window:     l.window,
	}
	if v[0] > 0 && st.Remaining == 0 {
		// This call took the last ones: the next is allowed once the
		// theoretical arrival time is within the burst again, Reset less
		// burst-1 emission intervals (as Bucket reports it).
		st.RetryAfter = max(0, st.Reset-time.Duration(l.limit-1)*l.emission)
	}
	return v[0] > 0, int(v[0]), st, nil
}
