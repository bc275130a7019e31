package limits

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// Rate is a limit: PerSecond requests a second on average, Burst at once.
type Rate struct {
	PerSecond float64
	Burst     int
}

// State is a limit after a take, for the verdict and the rate-limit
// headers.
type State struct {
	// Limit is the bucket's size: the most requests allowed at once.
	Limit int
	// Remaining is the number of requests allowed right now.
	Remaining int
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is the time until the next request is allowed; zero
	// when one is allowed now.
	RetryAfter time.Duration
	// Window is the time an empty bucket takes to fill: Limit requests
	// per Window is the policy.
	Window time.Duration
}

// Limit is one subject's limiter (a key's today). Take is called on the
// verify hot path: an implementation must be safe for concurrent use and
// must not block longer than its bounded timeout.
type Limit interface {
	Take(now int64) (bool, State)
}

// Subject names what a limit counts: an ApiKey, or an ApiConsumer whose
// keys all count against one limit.
type Subject struct {
	// Kind is KindKey or KindConsumer; a key and a consumer of the same
	// name never share a counter.
	Kind            string
	Namespace, Name string
}

// The kinds of Subject.
const (
	KindKey      = ""
	KindConsumer = "consumer"
)

// Provider makes the Limit of a subject. The verify index asks for one
// when a key appears or its rate limit changes, never per request.
type Provider interface {
	Limit(s Subject, r Rate) Limit
}

// Local is the provider without Redis: every replica keeps its own
// buckets. With Replicas set each enforces its share of a limit (the
// limit over the number of ready replicas); without it, the whole limit.
type Local struct {
	// Replicas is the number of ready verify replicas sharing each limit;
	// nil or below 1 counts as one.
	Replicas *atomic.Int32
}

// Limit returns a full bucket for the subject's share of r.
func (l Local) Limit(_ Subject, r Rate) Limit {
	return NewShareBucket(r.PerSecond, r.Burst, l.Replicas)
}

// counterKey is the Redis key of a subject's counter. The subject's
// namespace and name are hashed, so that no name ever reaches Redis and
// no tenant's names can collide with another's (a name holds no "\x00");
// the prefix keeps the operator's keys apart from anything else stored in
// the same Redis database.
func counterKey(kind string, s Subject) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(s.Namespace))
	h.Write([]byte{0})
	h.Write([]byte(s.Name))
	return "apikey-operator:" + kind + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}
