package limits

import (
	"sync"
	"sync/atomic"
	"time"
)

// Bucket is a token bucket in this process: it holds up to burst tokens
// and gains rate tokens a second; each allowed event takes one. Times are
// Unix nanoseconds so that taking a token allocates nothing.
//
// With a share (NewShareBucket) it enforces 1/n of its rate and burst,
// n read at every take, so a replica enforces its part of a limit that n
// replicas serve together.
type Bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second, the whole limit
	burst  float64
	tokens float64
	last   int64
	n      float64       // the share the tokens were counted in
	share  *atomic.Int32 // nil: the whole limit
}

// NewBucket returns a full bucket of the whole limit.
func NewBucket(rate float64, burst int) *Bucket {
	return NewShareBucket(rate, burst, nil)
}

// NewShareBucket returns a full bucket enforcing 1/n of the limit, n the
// value of share when a token is taken (1 when share is nil or below 1).
func NewShareBucket(rate float64, burst int, share *atomic.Int32) *Bucket {
	if burst < 1 {
		burst = 1
	}
	b := &Bucket{rate: rate, burst: float64(burst), share: share, n: 1}
	b.n = b.parts()
	b.tokens = b.size()
	return b
}

// Take spends a token if there is one.
func (b *Bucket) Take(now int64) (bool, State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	return ok, b.state()
}

// Full tells whether the bucket has refilled completely, so that
// forgetting it changes nothing.
func (b *Bucket) Full(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= b.size()
}

// parts is the number of replicas sharing the limit.
func (b *Bucket) parts() float64 {
	if b.share == nil {
		return 1
	}
	if n := b.share.Load(); n > 1 {
		return float64(n)
	}
	return 1
}

// size is this replica's burst: its share of the limit's, at least one
// token so that a key is never refused outright by its share.
func (b *Bucket) size() float64 {
	if s := b.burst / b.n; s >= 1 {
		return s
	}
	return 1
}

func (b *Bucket) perSecond() float64 { return b.rate / b.n }

func (b *Bucket) refill(now int64) {
	if n := b.parts(); n != b.n {
		// The number of replicas changed: keep the same fraction of the
		// bucket, so a scale-out neither refills nor empties it.
		frac := b.tokens / b.size()
		b.n = n
		b.tokens = frac * b.size()
	}
	if b.last != 0 && now > b.last {
		b.tokens += float64(now-b.last) / 1e9 * b.perSecond()
		if s := b.size(); b.tokens > s {
			b.tokens = s
		}
	}
	if now > b.last {
		b.last = now
	}
}

func (b *Bucket) state() State {
	size := b.size()
	st := State{Limit: int(size), Remaining: int(b.tokens), Window: b.window()}
	st.Reset = b.secondsFor(size - b.tokens)
	if b.tokens < 1 {
		st.RetryAfter = b.secondsFor(1 - b.tokens)
	}
	return st
}

// window is the time an empty bucket takes to refill: the period the
// RateLimit-Policy header quotes the limit over.
func (b *Bucket) window() time.Duration { return b.secondsFor(b.size()) }

func (b *Bucket) secondsFor(tokens float64) time.Duration {
	r := b.perSecond()
	if tokens <= 0 || r <= 0 {
		return 0
	}
	return time.Duration(tokens / r * 1e9)
}
