package quota

import (
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Calendar ticks start where people expect: the hour, UTC midnight,
// Monday, the first of the month; an interval counts from the anchor.
func TestTicks(t *testing.T) {
	created := at("2026-03-10T15:30:00Z")
	for _, c := range []struct {
		name       string
		q          Quota
		now, start string // the tick's start and the next refill
		next       string
	}{
		{"hour", Quota{Limit: 5, Amount: 5, Period: Hour}, "2026-12-05T08:59:59Z", "2026-12-05T08:00:00Z", "2026-12-05T09:00:00Z"},
		{"day", Quota{Limit: 5, Amount: 5, Period: Day}, "2026-12-05T23:59:59Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z"},
		{"week from Monday", Quota{Limit: 5, Amount: 5, Period: Week}, "2026-12-05T08:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},
		{"week on Monday", Quota{Limit: 5, Amount: 5, Period: Week}, "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},
		{"week before 1970", Quota{Limit: 5, Amount: 5, Period: Week}, "1969-12-31T12:00:00Z", "1969-12-29T00:00:00Z", "1970-01-05T00:00:00Z"},
		{"month", Quota{Limit: 5, Amount: 5, Period: Month}, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"february", Quota{Limit: 5, Amount: 5, Period: Month}, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"interval from creation", Quota{Limit: 5, Amount: 1, Interval: 24 * time.Hour, Anchor: created}, "2026-03-12T15:29:59Z", "2026-03-11T15:30:00Z", "2026-03-12T15:30:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := at(c.now)
			n := c.q.Tick(now)
			if got := c.q.Start(n); !got.Equal(at(c.start)) {
				t.Errorf("tick of %s starts %s, want %s", c.now, got, c.start)
			}
			if got := c.q.NextRefill(now); !got.Equal(at(c.next)) {
				t.Errorf("next refill after %s is %s, want %s", c.now, got, c.next)
			}
			if c.q.Tick(c.q.Start(n+1)) != n+1 || c.q.Tick(c.q.Start(n+1).Add(-time.Nanosecond)) != n {
				t.Errorf("tick %d does not end where tick %d starts", n, n+1)
			}
		})
	}
	noRefill := Quota{Limit: 5}
	if noRefill.Tick(time.Now()) != 0 || !noRefill.NextRefill(time.Now()).IsZero() {
		t.Error("a quota without refill has one tick forever and no next refill")
	}
	q := Quota{Limit: 5, Amount: 5, Interval: time.Hour, Anchor: created}
	if q.Tick(created.Add(-time.Hour)) != 0 {
		t.Error("a clock behind the anchor counts as tick 0")
	}
}

func TestRefill(t *testing.T) {
	q := Quota{Limit: 10, Amount: 3, Period: Day}
	for _, c := range []struct{ used, stamp, tick, want int64 }{
		{10, 5, 5, 10},          // same tick: nothing back
		{10, 5, 6, 7},           // one refill of 3
		{10, 5, 8, 1},           // three
		{10, 5, 9, 0},           // four would be 12: floor at 0
		{10, 5, 1 << 62, 0},     // no overflow however long ago
		{10, 9, 5, 10},          // a tick behind the stamp (a slow clock): nothing
		{0, 1, 2, 0},            // nothing used
		{9_999, -1 << 62, 0, 0}, // from far back
		{7, 0, 1, 4},            // partial
		{1e12, 0, 1 << 40, 0},   // large
		{5, 3, 3, 5},            // same tick again
		{4, 2, 3, 1},            // 4 - 3
		{3, 2, 3, 0},            // exactly
		{2, 2, 3, 0},            // below
		{11, 0, 0, 11},          // over the limit (a lowered limit) stays
		{11, 0, 1, 8},           // and comes back by amount
		{12, 0, 4, 0},           // all
		{-1, 0, 4, -1},          // never written so: untouched
		{1, 0, 1, 0},            // one
		{3, 0, 1, 0},            // amount
		{4, 0, 1, 1},            // amount + 1
		{6, 0, 2, 0},            // two ticks
		{7, 0, 2, 1},            // two ticks + 1
	} {
		if got := q.refill(c.used, c.stamp, c.tick); got != c.want {
			t.Errorf("refill(used %d, stamp %d, tick %d) = %d, want %d", c.used, c.stamp, c.tick, got, c.want)
		}
	}
}

func TestRefillLarge(t *testing.T) {
	q := Quota{Limit: 1e12, Amount: 3e11, Period: Day}
	if got := q.refill(1e12, 0, 3); got != 1e11 {
		t.Errorf("three refills of 3e11 from 1e12 used: %d, want 1e11", got)
	}
	if got := q.refill(1e12, 0, 4); got != 0 {
		t.Errorf("four: %d, want 0", got)
	}
}

func TestFromSpec(t *testing.T) {
	created := at("2026-01-01T00:00:00Z")
	if _, ok := FromSpec(nil, created); ok {
		t.Error("no spec, no quota")
	}
	q, _ := FromSpec(&keysv1.QuotaSpec{Limit: 100, Refill: &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodMonth}}, created)
	if q != (Quota{Limit: 100, Amount: 100, Period: Month}) {
		t.Errorf("monthly: %+v, want a reset to 100 each month", q)
	}
	q, _ = FromSpec(&keysv1.QuotaSpec{Limit: 100, Refill: &keysv1.QuotaRefill{Interval: &metav1.Duration{Duration: time.Hour}, Amount: 10}}, created)
	if q != (Quota{Limit: 100, Amount: 10, Interval: time.Hour, Anchor: created}) {
		t.Errorf("credits: %+v", q)
	}
	// Written around validation: never a refill every nanosecond.
	q, _ = FromSpec(&keysv1.QuotaSpec{Limit: 100, Refill: &keysv1.QuotaRefill{Interval: &metav1.Duration{Duration: 1}}}, created)
	if q.Refills() {
		t.Errorf("an interval below the minimum refills: %+v", q)
	}
}

// The key of a counter is a hash: no kind, namespace, name or UID in it;
// another namespace, UID or refill scheme is another counter; another
// limit is the same one.
func TestCounterKey(t *testing.T) {
	s := Subject{Kind: "ApiKey", Namespace: "secret-team", Name: "payments", UID: "u1"}
	q := Quota{Limit: 10, Amount: 10, Period: Day}
	k := counterKey(s, &q)
	for _, bad := range []string{"ApiKey", "secret-team", "payments", "u1"} {
		if contains(k, bad) {
			t.Fatalf("%s names %q", k, bad)
		}
	}
	other := []Subject{{"ApiKey", "other-team", "payments", "u1"}, {"ApiKey", "secret-team", "payments", "u2"}, {"ApiConsumer", "secret-team", "payments", "u1"},
		{"ApiKey", "secret-teamp", "ayments", "u1"}}
	for _, o := range other {
		if counterKey(o, &q) == k {
			t.Errorf("%+v shares the counter of %+v", o, s)
		}
	}
	weekly := Quota{Limit: 10, Amount: 10, Period: Week}
	if counterKey(s, &weekly) == k {
		t.Error("another refill scheme shares the counter: ticks of two schemes do not compare")
	}
	more := Quota{Limit: 20, Amount: 10, Period: Day}
	if counterKey(s, &more) != k {
		t.Error("raising the limit must keep what was used")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func takes(c Counter, now time.Time, n int) (allowed int) {
	for range n {
		if v, _ := c.Take(now.UnixNano()); v == Allowed {
			allowed++
		}
	}
	return allowed
}

// One replica counts exactly: the limit, then Exceeded until the refill;
// a restart (a new counter) starts from status.quota, not from full.
func TestLocalOneReplica(t *testing.T) {
	q := Quota{Limit: 5, Amount: 2, Period: Day}
	day := at("2026-12-05T10:00:00Z")
	c := Local{}.Counter(Subject{}, q)
	if got := takes(c, day, 8); got != 5 {
		t.Fatalf("allowed %d of a quota of 5", got)
	}
	v, st := c.Take(day.UnixNano())
	if v != Exceeded || st.Remaining() != 0 || !st.NextRefill.Equal(at("2026-12-06T00:00:00Z")) {
		t.Fatalf("exhausted: %v %+v", v, st)
	}
	if got := takes(c, day.Add(24*time.Hour), 5); got != 2 {
		t.Fatalf("after one refill of 2 allowed %d", got)
	}
	last, ok := c.Last()
	if !ok || last.Used != 5 || last.Tick != q.Tick(day)+1 {
		t.Fatalf("last %+v %v", last, ok)
	}

	restarted := Local{}.Counter(Subject{}, q)
	restarted.Seed(State{Used: 4, Tick: q.Tick(day)})
	if got := takes(restarted, day, 5); got != 1 {
		t.Fatalf("a restarted replica seeded with 4 used allowed %d, want 1", got)
	}
	if _, ok := (Local{}).Counter(Subject{}, q).Last(); ok {
		t.Fatal("a counter that never counted has nothing for status")
	}
}

// Without Redis and with several replicas the quota is refused, never
// spent R times; back to one replica it counts again.
func TestLocalSeveralReplicasRefuse(t *testing.T) {
	var r atomic.Int32
	r.Store(2)
	c := Local{Replicas: &r}.Counter(Subject{}, Quota{Limit: 5})
	if v, _ := c.Take(time.Now().UnixNano()); v != Unavailable {
		t.Fatalf("two replicas without Redis: %v, want Unavailable", v)
	}
	r.Store(1)
	if got := takes(c, time.Now(), 6); got != 5 {
		t.Fatalf("one replica again: allowed %d of 5", got)
	}
}

// A stale status (older tick, or fewer used) never rolls a count back.
func TestLocalSeedKeepsNewer(t *testing.T) {
	q := Quota{Limit: 5}
	c := Local{}.Counter(Subject{}, q)
	takes(c, time.Now(), 3)
	c.Seed(State{Used: 1})
	if got := takes(c, time.Now(), 5); got != 2 {
		t.Fatalf("a stale seed gave back: allowed %d, want 2", got)
	}
}

func TestNewer(t *testing.T) {
	a := State{Used: 3, Tick: 7}
	for _, c := range []struct {
		b    State
		want bool
	}{{State{Used: 2, Tick: 7}, true}, {State{Used: 3, Tick: 7}, false}, {State{Used: 9, Tick: 6}, true}, {State{Used: 0, Tick: 8}, false}} {
		if got := a.Newer(&c.b); got != c.want {
			t.Errorf("%+v newer than %+v: %v, want %v", a, c.b, got, c.want)
		}
	}
}
