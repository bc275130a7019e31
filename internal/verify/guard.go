package verify

import (
	"net/netip"
	"sync"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/limits"
)

// guard limits failed verifications per source address: a client that
// keeps presenting unknown or malformed keys gets 429 with Retry-After
// instead of 401 once its budget is spent.
//
// It never touches a valid verification: a valid key is answered as valid
// even from an address that is over its failure budget. Blocking valid
// keys would let an attacker behind a shared NAT or proxy lock everyone
// behind it out, and a 256-bit key cannot be guessed anyway; what the
// guard buys is that scanners are told to back off and cannot flood the
// logs and metrics at line rate.
//
// IPv6 sources are grouped by /64, the block one client usually holds.
type guard struct {
	rate     float64
	burst    int
	maxAddrs int // per shard; beyond it new addresses are not tracked
	shards   [guardShards]guardShard
}

const guardShards = 16

type guardShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*limits.Bucket
}

func newGuard(rate float64, burst, maxAddrs int) *guard {
	g := &guard{rate: rate, burst: burst, maxAddrs: maxAddrs / guardShards}
	for i := range g.shards {
		g.shards[i].m = map[netip.Addr]*limits.Bucket{}
	}
	return g
}

// fail records a failure from the source and tells whether it is still
// within its budget, and if not, when to retry.
func (g *guard) fail(src netip.Addr, now time.Time) (bool, time.Duration) {
	if g == nil || g.rate <= 0 || !src.IsValid() {
		return true, 0
	}
	src = guardKey(src)
	sh := &g.shards[shardOf(src)]
	sh.mu.Lock()
	b := sh.m[src]
	if b == nil {
		if len(sh.m) >= g.maxAddrs {
			g.sweepLocked(sh, now.UnixNano())
		}
		if len(sh.m) >= g.maxAddrs {
			sh.mu.Unlock()
			return true, 0 // fail open rather than grow without bound
		}
		b = limits.NewBucket(g.rate, g.burst)
		sh.m[src] = b
	}
	sh.mu.Unlock()
	ok, st := b.Take(now.UnixNano())
	return ok, st.RetryAfter
}

// sweep forgets the addresses whose budget has refilled.
func (g *guard) sweep(now time.Time) {
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.Lock()
		g.sweepLocked(sh, now.UnixNano())
		sh.mu.Unlock()
	}
}

func (g *guard) sweepLocked(sh *guardShard, now int64) {
	for a, b := range sh.m {
		if b.Full(now) {
			delete(sh.m, a)
		}
	}
}

func guardKey(a netip.Addr) netip.Addr {
	a = normalizeAddr(a)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func shardOf(a netip.Addr) int {
	b := a.As16()
	return int(b[15]^b[7]) % guardShards
}
