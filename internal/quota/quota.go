package quota

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Subject names what a quota counts: one object, an ApiKey, or a
// consumer whose keys all spend the same quota. UID is part of it, so an
// object deleted and made again under the same name starts a new count.
type Subject struct {
	Kind, Namespace, Name, UID string
}

// Period is a calendar period a quota refills at the start of (UTC).
type Period uint8

// The calendar periods; None refills by Interval (or not at all).
const (
	None Period = iota
	Hour
	Day
	Week
	Month
)

// Quota is a quota's definition: Limit successful verifications, Amount
// of them given back at every tick, where a tick is an Interval after
// Anchor or the start of a calendar Period. Amount 0: no refill, one tick
// forever.
type Quota struct {
	Limit    int64
	Amount   int64
	Interval time.Duration
	Period   Period
	Anchor   time.Time
}

// FromSpec turns spec.quota of an object created at created into a
// Quota; ok is false without a quota.
func FromSpec(q *keysv1.QuotaSpec, created time.Time) (Quota, bool) {
	if q == nil || q.Limit < 1 {
		return Quota{}, false
	}
	out := Quota{Limit: q.Limit}
	r := q.Refill
	if r == nil {
		return out, true
	}
	out.Amount = r.Amount
	if out.Amount < 1 || out.Amount > q.Limit {
		out.Amount = q.Limit
	}
	switch r.Period {
	case keysv1.QuotaPeriodHour:
		out.Period = Hour
	case keysv1.QuotaPeriodDay:
		out.Period = Day
	case keysv1.QuotaPeriodWeek:
		out.Period = Week
	case keysv1.QuotaPeriodMonth:
		out.Period = Month
	default:
		if r.Interval == nil || r.Interval.Duration < keysv1.QuotaIntervalMin {
			// Written around validation: a quota that never refills
			// is the safe reading.
			out.Amount = 0
			return out, true
		}
		out.Interval = min(r.Interval.Duration, keysv1.QuotaIntervalMax)
		out.Anchor = created
	}
	return out, true
}

// Refills tells whether the quota gives verifications back.
func (q *Quota) Refills() bool { return q.Amount > 0 }

// weekShift moves the Unix epoch (a Thursday) to the Monday before it,
// so that weeks counted from it start on Mondays.
const weekShift = 3 * 24 * 60 * 60

// Tick numbers the refill period t falls in. Ticks only grow with t; a
// time before an interval quota's anchor (a replica's clock behind the
// API server's) counts as tick 0.
func (q *Quota) Tick(t time.Time) int64 {
	if !q.Refills() {
		return 0
	}
	switch q.Period {
	case Hour:
		return floorDiv(t.Unix(), 3600)
	case Day:
		return floorDiv(t.Unix(), 86400)
	case Week:
		return floorDiv(t.Unix()+weekShift, 7*86400)
	case Month:
		y, m, _ := t.UTC().Date()
		return int64(y)*12 + int64(m) - 1
	}
	d := t.Sub(q.Anchor)
	if d < 0 {
		return 0
	}
	return int64(d / q.Interval)
}

// Start is the beginning of tick n: the moment its refill happens.
func (q *Quota) Start(n int64) time.Time {
	switch q.Period {
	case Hour:
		return time.Unix(n*3600, 0).UTC()
	case Day:
		return time.Unix(n*86400, 0).UTC()
	case Week:
		return time.Unix(n*7*86400-weekShift, 0).UTC()
	case Month:
		return time.Date(int(n/12), time.Month(n%12+1), 1, 0, 0, 0, 0, time.UTC)
	}
	return q.Anchor.Add(time.Duration(n) * q.Interval)
}

// NextRefill is when the refill after t happens; zero without refill.
func (q *Quota) NextRefill(t time.Time) time.Time {
	if !q.Refills() {
		return time.Time{}
	}
	return q.Start(q.Tick(t) + 1)
}

// refill gives back what the ticks from stamp to tick owe: used after
// them. It never overflows: past enough ticks everything is back.
func (q *Quota) refill(used, stamp, tick int64) int64 {
	if !q.Refills() || tick <= stamp || used <= 0 {
		return used
	}
	if n := tick - stamp; n >= (used+q.Amount-1)/q.Amount {
		return 0
	} else {
		return used - n*q.Amount
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Verdict is a quota's answer to one verification.
type Verdict uint8

const (
	// Allowed: one verification was spent.
	Allowed Verdict = iota
	// Exceeded: nothing remains until the next refill (or ever).
	Exceeded
	// Unavailable: the quota cannot be counted exactly here (no Redis
	// and several verify replicas), so it refuses rather than guess.
	Unavailable
)

// State is a quota after a take: for the verdict, the answer's headers
// and status.quota.
type State struct {
	Limit, Used int64
	// Tick is the refill period Used belongs to; At is when it was
	// counted (Unix nanoseconds).
	Tick, At int64
	// NextRefill is when verifications come back; zero without refill.
	NextRefill time.Time
}

// Remaining is what may still be spent.
func (s *State) Remaining() int64 { return max(0, s.Limit-s.Used) }

// Newer tells whether s counts more of the quota's history than o: a
// later tick, or more used within the same tick (within a tick, used
// only grows). Several replicas write status.quota; each writes only
// what is newer than what is there.
func (s *State) Newer(o *State) bool {
	return s.Tick > o.Tick || (s.Tick == o.Tick && s.Used > o.Used)
}

// Counter is one subject's quota. Take is on the verify hot path: an
// implementation must be safe for concurrent use and never block longer
// than its bounded timeout.
type Counter interface {
	// Take spends one verification if one remains.
	Take(now int64) (Verdict, State)
	// Last is the newest count this replica has seen (ok false before
	// any), for status.quota.
	Last() (State, bool)
	// Seed says where counting starts when the counter has none (first
	// use, a flushed Redis, a restarted replica): status.quota as the
	// informer last saw it.
	Seed(s State)
}

// Provider makes a subject's Counter. The verify index asks for one when
// an object appears or its quota changes, never per request.
type Provider interface {
	Counter(s Subject, q Quota) Counter
}

// SeedOf reads status.quota as the count to start from under q: Used at
// the tick CountedAt falls in. A missing status is a full quota now.
func SeedOf(st *keysv1.QuotaStatus, q *Quota) (State, bool) {
	if st == nil || st.CountedAt == nil || st.Used < 0 {
		return State{}, false
	}
	at := st.CountedAt.Time
	return State{Limit: q.Limit, Used: st.Used, Tick: q.Tick(at), At: at.UnixNano()}, true
}

// counterKey is the Redis key of a subject's quota under q's refill
// scheme. Everything is hashed, so that no name reaches Redis and no
// tenant's subject can collide with another's (a name holds no "\x00");
// the refill scheme is part of it because ticks of two schemes do not
// compare: changing it starts a new counter, seeded from status.quota.
// The limit is not: raising or lowering it keeps what was used.
func counterKey(s Subject, q *Quota) string {
	h := sha256.New()
	for _, f := range []string{"quota", s.Kind, s.Namespace, s.Name, s.UID} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	var b [8 * 4]byte
	binary.BigEndian.PutUint64(b[0:], uint64(q.Amount))
	binary.BigEndian.PutUint64(b[8:], uint64(q.Interval))
	binary.BigEndian.PutUint64(b[16:], uint64(q.Period))
	binary.BigEndian.PutUint64(b[24:], uint64(q.Anchor.UnixNano()))
	h.Write(b[:])
	return "apikey-operator:quota:" + hex.EncodeToString(h.Sum(nil)[:16])
}
