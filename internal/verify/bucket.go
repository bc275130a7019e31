package verify

import (
	"sync"
	"time"
)

// bucket is a token bucket: it holds up to burst tokens and gains rate
// tokens a second; each allowed event takes one. Times are Unix
// nanoseconds so that taking a token allocates nothing.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   int64
}

func newBucket(rate float64, burst int) *bucket {
	if burst < 1 {
		burst = 1
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// RateLimit is a key's bucket after a verification, for the response and
// for rate-limit headers.
type RateLimit struct {
	// Limit is the bucket's size: the most requests allowed at once.
	Limit int
	// Remaining is the number of requests allowed right now.
	Remaining int
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is the time until the next request is allowed; zero
	// when one is allowed now.
	RetryAfter time.Duration
}

// take spends a token if there is one.
func (b *bucket) take(now int64) (bool, RateLimit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	return ok, b.state()
}

// full tells whether the bucket has refilled completely, so that
// forgetting it changes nothing.
func (b *bucket) full(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= b.burst
}

func (b *bucket) refill(now int64) {
	if b.last != 0 && now > b.last {
		b.tokens += float64(now-b.last) / 1e9 * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	if now > b.last {
		b.last = now
	}
}

func (b *bucket) state() RateLimit {
	st := RateLimit{Limit: int(b.burst), Remaining: int(b.tokens)}
	st.Reset = b.secondsFor(b.burst - b.tokens)
	if b.tokens < 1 {
		st.RetryAfter = b.secondsFor(1 - b.tokens)
	}
	return st
}

func (b *bucket) secondsFor(tokens float64) time.Duration {
	if tokens <= 0 || b.rate <= 0 {
		return 0
	}
	return time.Duration(tokens / b.rate * 1e9)
}
