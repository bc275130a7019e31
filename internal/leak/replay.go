package leak

import (
	"sync"
	"time"
)

// replays remembers the SHA-256 of every signed body for a window, so the
// same report sent again is refused. Bodies, not signatures, are
// remembered: an ECDSA signature can be altered into another valid one
// (s into n-s), a body cannot. The memory is per process and bounded;
// what a replay at another replica can do is bounded by the reactions
// being idempotent (docs/leaks.md).
type replays struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[[32]byte]time.Time
	order  [][32]byte // oldest first, for eviction
}

func newReplays(window time.Duration, max int) *replays {
	return &replays{window: window, max: max, seen: make(map[[32]byte]time.Time)}
}

// claim records the digest and reports whether it was new. A claim is
// taken before the report is acted on, so two copies sent at once are
// not both acted on; release gives it back when acting failed.
func (r *replays) claim(d [32]byte, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if _, ok := r.seen[d]; ok {
		return false
	}
	if len(r.order) >= r.max {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	r.seen[d] = now
	r.order = append(r.order, d)
	return true
}

func (r *replays) release(d [32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, d)
}

func (r *replays) expire(now time.Time) {
	for len(r.order) > 0 {
		d := r.order[0]
		if at, ok := r.seen[d]; ok && now.Sub(at) < r.window {
			return
		}
		delete(r.seen, d)
		r.order = r.order[1:]
	}
}
