package limits

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// gcra is the shared rate limit: the generic cell rate algorithm, one
// EVALSHA per verification, so one round trip. Redis keeps one value per
// subject, the theoretical arrival time (TAT) of the next request in
// microseconds of Redis's own clock (TIME), so replicas whose clocks
// disagree still count alike. The key expires when the bucket would be
// full again: an idle subject costs no memory.
//
// Returns {allowed, remaining, retry after µs, reset µs}.
const gcra = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = 1000000 / rate
local tolerance = emission * burst
local tat = tonumber(redis.call("GET", KEYS[1]))
if not tat or tat < now then
  tat = now
end
local next_tat = tat + emission
local diff = now - (next_tat - tolerance)
if diff < 0 then
  return {0, 0, math.ceil(-diff), math.ceil(tat - now)}
end
local reset = next_tat - now
redis.call("SET", KEYS[1], string.format("%.0f", next_tat), "PX", math.ceil(reset / 1000) + 1)
return {1, math.floor(diff / emission), 0, math.ceil(reset)}
`

var gcraScript = redis.NewScript(gcra)

// Shared is the provider with Redis: every replica takes from the same
// counters, so a limit holds for the whole cluster. While Redis cannot
// answer within the timeout it falls back to its Local provider (each
// replica enforcing its share), sets apikey_limits_fallback, logs once,
// and probes Redis every second until it answers again.
type Shared struct {
	client   *redis.Client
	timeout  time.Duration
	fallback Local
	down     atomic.Bool
	probe    time.Duration
	log      logr.Logger
	metrics  sharedMetrics
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
	s := &Shared{client: redis.NewClient(ro), timeout: o.RedisTimeout, fallback: fallback, probe: time.Second, log: log}
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
		s:      s,
		keys:   []string{counterKey(rateCounter(sub), sub)},
		args:   []any{r.PerSecond, burst},
		limit:  burst,
		window: time.Duration(float64(burst) / r.PerSecond * 1e9),
		local:  s.fallback.Limit(sub, r),
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

// Falling back tells whether limits are enforced per replica now.
func (s *Shared) FallingBack() bool { return s.down.Load() }

// Start probes Redis while it is down until ctx ends, then closes the
// client: a manager.Runnable every verify replica runs.
func (s *Shared) Start(ctx context.Context) error {
	defer s.client.Close()
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

func (s *Shared) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
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

type sharedLimit struct {
	s      *Shared
	keys   []string
	args   []any
	limit  int
	window time.Duration
	local  Limit
}

// Take asks Redis unless it is known to be down; any error or timeout
// answers from the local share.
func (l *sharedLimit) Take(now int64) (bool, State) {
	if l.s.down.Load() {
		return l.local.Take(now)
	}
	ok, st, err := l.take()
	if err != nil {
		l.s.failed(err)
		return l.local.Take(now)
	}
	return ok, st
}

func (l *sharedLimit) take() (bool, State, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.s.timeout)
	defer cancel()
	v, err := gcraScript.Run(ctx, l.s.client, l.keys, l.args...).Int64Slice()
	if err != nil {
		return false, State{}, err
	}
	if len(v) != 4 {
		return false, State{}, errors.New("rate-limit script answered an unexpected shape")
	}
	st := State{
		Limit:      l.limit,
		Remaining:  int(min(v[1], int64(l.limit))),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		Reset:      time.Duration(v[3]) * time.Microsecond,
		Window:     l.window,
	}
	return v[0] == 1, st, nil
}
