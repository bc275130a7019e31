package quota

import (
	"sync"
	"sync/atomic"
	"time"
)

// Local is the provider without Redis: the count lives in this replica.
// That is exact only while it is the one replica that verifies, so a
// quota here is counted only while Replicas reads 1 (or is unset, as in
// make run): with several, each would count alone and the quota would be
// spent as many times as there are replicas, so every take answers
// Unavailable instead, until the replicas are one again or Redis is
// configured (docs/limits.md).
type Local struct {
	// Replicas is the number of ready verify replicas; nil counts as one.
	Replicas *atomic.Int32
}

// Counter returns the subject's count in this replica, starting from its
// Seed.
func (l Local) Counter(_ Subject, q Quota) Counter {
	return &localCounter{q: q, replicas: l.Replicas}
}

type localCounter struct {
	q        Quota
	replicas *atomic.Int32

	mu     sync.Mutex
	used   int64
	tick   int64
	at     int64
	known  bool // a take or a seed set used and tick
	counts bool // a take has counted here: Last reports it
}

func (c *localCounter) Take(now int64) (Verdict, State) {
	if c.replicas != nil && c.replicas.Load() > 1 {
		return Unavailable, State{Limit: c.q.Limit}
	}
	return c.take(now)
}

// take spends one if one remains: the count every Local and every Redis
// fallback keeps.
func (c *localCounter) take(now int64) (Verdict, State) {
	t := time.Unix(0, now)
	tick := c.q.Tick(t)
	c.mu.Lock()
	if !c.known {
		c.tick, c.known = tick, true
	}
	if tick > c.tick {
		c.used, c.tick = c.q.refill(c.used, c.tick, tick), tick
	}
	v := Exceeded
	if c.used < c.q.Limit {
		c.used++
		v = Allowed
	}
	c.at, c.counts = now, true
	st := State{Limit: c.q.Limit, Used: c.used, Tick: c.tick, At: now}
	c.mu.Unlock()
	st.NextRefill = c.q.NextRefill(t)
	return v, st
}

func (c *localCounter) Last() (State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.counts {
		return State{}, false
	}
	st := State{Limit: c.q.Limit, Used: c.used, Tick: c.tick, At: c.at}
	st.NextRefill = c.q.NextRefill(time.Unix(0, c.at))
	return st, true
}

// Seed starts the count from s unless this replica has counted further:
// with one replica, status.quota is what this replica wrote, or what a
// replica before it wrote (a restart).
func (c *localCounter) Seed(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := State{Used: c.used, Tick: c.tick}
	if !c.known || s.Newer(&cur) {
		c.used, c.tick, c.known = s.Used, s.Tick, true
	}
}
