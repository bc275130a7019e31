package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// spend is the shared quota: one EVALSHA per verification, so one round
// trip, atomic in Redis. Redis keeps a hash per subject: u, the
// verifications not yet given back, and t, the refill tick they belong
// to. A missing hash (first use, or a Redis flushed or restarted without
// persistence) starts from the seed, status.quota, instead of from a
// full quota. The hash expires after a week unused; by then status.quota
// holds its figures, so counting resumes from there exactly.
//
// KEYS[1] the counter; ARGV: limit, refill amount (0: none), the tick
// now, seed used, seed tick, verifications spent while Redis was
// unreachable (added first), expiry in ms.
//
// Returns {allowed, used, tick, seeded}.
const spend = `
local limit = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local tick = tonumber(ARGV[3])
local v = redis.call("HMGET", KEYS[1], "u", "t")
local used, stamp, seeded = tonumber(v[1]), tonumber(v[2]), 0
if not used or not stamp then
  used, stamp, seeded = tonumber(ARGV[4]), tonumber(ARGV[5]), 1
end
if tick > stamp then
  if amount > 0 and used > 0 then
    if (tick - stamp) * amount >= used then used = 0 else used = used - (tick - stamp) * amount end
  end
  stamp = tick
end
used = used + tonumber(ARGV[6])
local ok = 0
if used < limit then
  used = used + 1
  ok = 1
end
redis.call("HSET", KEYS[1], "u", string.format("%.0f", used), "t", string.format("%.0f", stamp))
redis.call("PEXPIRE", KEYS[1], ARGV[7])
return {ok, used, stamp, seeded}
`

var spendScript = redis.NewScript(spend)

// idle is how long an unused counter stays in Redis.
const idle = 7 * 24 * time.Hour

// Backend is what the shared provider needs of the rate limiter's Redis
// connection: internal/limits.Shared owns the client, the timeout and the
// fallback state, so that one outage is one fallback for both.
type Backend interface {
	// Client is the Redis client; nil never.
	Client() redis.Scripter
	// Timeout bounds every call.
	Timeout() time.Duration
	// Down tells whether Redis is known not to answer now.
	Down() bool
	// Failed reports an error or timeout of a call (turns the fallback
	// on).
	Failed(err error)
}

// Shared is the provider with Redis: every replica spends from the same
// counter, so a quota holds exactly for the whole cluster. While Redis
// does not answer, each replica spends at most its share (1/R, R the
// ready replicas) of what it last knew to remain, and adds what it spent
// to Redis as soon as Redis answers again.
type Shared struct {
	b        Backend
	replicas *atomic.Int32
	reseeded prometheus.Counter
}

// NewShared returns the Redis provider over b; replicas is the number of
// ready verify replicas (nil: one). reg receives its metric.
func NewShared(b Backend, replicas *atomic.Int32, reg prometheus.Registerer) (*Shared, error) {
	s := &Shared{b: b, replicas: replicas, reseeded: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikey_quota_reseeded_total",
		Help: "Quota counters Redis did not have although status.quota had figures for them (a flushed Redis, one restarted without persistence, or a counter unused for a week): counting resumed from status.quota or this replica's last count, not from a full quota.",
	})}
	if err := reg.Register(s.reseeded); err != nil {
		return nil, fmt.Errorf("register quota metrics: %w", err)
	}
	return s, nil
}

// Counter returns the subject's shared counter.
func (s *Shared) Counter(sub Subject, q Quota) Counter {
	return &sharedCounter{s: s, q: q, keys: []string{counterKey(sub, &q)}, limit: strconv.FormatInt(q.Limit, 10),
		amount: strconv.FormatInt(q.Amount, 10), expiry: strconv.FormatInt(idle.Milliseconds(), 10)}
}

type sharedCounter struct {
	s                     *Shared
	q                     Quota
	keys                  []string
	limit, amount, expiry string

	mu sync.Mutex
	// seed is status.quota as last seen: where Redis starts if it has no
	// counter.
	seed State
	// last is the newest count: Redis's last answer, plus what this
	// replica spent since while Redis was down.
	last  State
	known bool
	// pending were spent while Redis was down, not yet added there;
	// spent is how many of them this outage's share allowed.
	pending, share int64
}

func (c *sharedCounter) Take(now int64) (Verdict, State) {
	if !c.s.b.Down() {
		v, st, err := c.remote(now)
		if err == nil {
			return v, st
		}
		c.s.b.Failed(err)
	}
	return c.fallback(now)
}

func (c *sharedCounter) remote(now int64) (Verdict, State, error) {
	t := time.Unix(0, now)
	tick := c.q.Tick(t)
	c.mu.Lock()
	// Where Redis starts if it has no counter: the newest of status.quota
	// and this replica's last answer from Redis, which is fresher than
	// status after a flush; with neither, a full quota now.
	// This call claims what was spent during an outage: concurrent
	// calls must not add it twice, and a failed call gives it back.
	seed, pending := c.seed, c.pending
	c.pending = 0
	if c.known && c.last.Newer(&seed) {
		seed = c.last
		seed.Used -= pending // added again below
	}
	if seed.At == 0 {
		seed.Tick = tick
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.b.Timeout())
	defer cancel()
	v, err := spendScript.Run(ctx, c.s.b.Client(), c.keys, c.limit, c.amount, tick, seed.Used, seed.Tick, pending, c.expiry).Int64Slice()
	if err == nil && len(v) != 4 {
		err = errors.New("quota script answered an unexpected shape")
	}
	if err != nil {
		if pending != 0 {
			c.mu.Lock()
			c.pending += pending
			c.mu.Unlock()
		}
		return 0, State{}, err
	}
	if v[3] == 1 && seed.At != 0 {
		c.s.reseeded.Inc()
	}
	st := State{Limit: c.q.Limit, Used: v[1], Tick: v[2], At: now, NextRefill: c.q.NextRefill(t)}
	c.mu.Lock()
	// What was spent while Redis was down is in Redis now; a new outage
	// starts a new share.
	c.share = 0
	if !c.known || !c.last.Newer(&st) {
		c.last, c.known = st, true
	}
	c.mu.Unlock()
	verdict := Exceeded
	if v[0] == 1 {
		verdict = Allowed
	}
	return verdict, st, nil
}

// fallback spends from this replica's share of what it last knew to
// remain: Redis's last answer, or status.quota if it never had one.
func (c *sharedCounter) fallback(now int64) (Verdict, State) {
	t := time.Unix(0, now)
	tick := c.q.Tick(t)
	r := int64(1)
	if c.s.replicas != nil {
		r = max(1, int64(c.s.replicas.Load()))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		c.last, c.known = c.seed, true
		if c.last.At == 0 {
			c.last.Tick = tick
		}
	}
	if tick > c.last.Tick {
		// A refill during the outage: everyone's share grows alike.
		c.last.Used, c.last.Tick = c.q.refill(c.last.Used, c.last.Tick, tick), tick
		c.share = 0
	}
	c.last.Limit, c.last.At, c.last.NextRefill = c.q.Limit, now, c.q.NextRefill(t)
	if c.share >= max(0, c.q.Limit-c.last.Used+c.share)/r || c.last.Used >= c.q.Limit {
		return Exceeded, c.last
	}
	c.share++
	c.pending++
	c.last.Used++
	return Allowed, c.last
}

func (c *sharedCounter) Last() (State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.known && c.last.At != 0
}

func (c *sharedCounter) Seed(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seed = s
}
