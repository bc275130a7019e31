package limits

import (
	"sync/atomic"
	"testing"
	"time"
)

// A replica's share of a limit is the limit over the number of replicas,
// read at every take; a change of replicas keeps the bucket's fraction.
func TestShareBucket(t *testing.T) {
	var n atomic.Int32
	n.Store(4)
	b := NewShareBucket(100, 20, &n) // each of 4: 25/s, burst 5
	now := time.Unix(1000, 0).UnixNano()
	got := 0
	for range 10 {
		if ok, _ := b.Take(now); ok {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("share of 4 allowed %d at once, want 5", got)
	}
	_, st := b.Take(now)
	if st.Limit != 5 || st.RetryAfter != 40*time.Millisecond {
		t.Fatalf("state %+v, want limit 5 and Retry-After 40ms (25/s)", st)
	}
	now += int64(time.Second) // refills the share completely
	n.Store(1)                // scaled in to one replica: the whole limit
	got = 0
	for range 30 {
		if ok, _ := b.Take(now); ok {
			got++
		}
	}
	if got != 20 {
		t.Fatalf("alone the replica allowed %d at once, want the whole burst 20", got)
	}
}

// A share never drops below one token: a key is slowed, never shut out,
// when replicas outnumber its burst.
func TestShareBucketAtLeastOne(t *testing.T) {
	var n atomic.Int32
	n.Store(10)
	b := NewShareBucket(2, 2, &n)
	if ok, st := b.Take(time.Unix(1, 0).UnixNano()); !ok || st.Limit != 1 {
		t.Fatalf("allowed %v, state %+v: want one token per replica at least", ok, st)
	}
}

// Counter keys of different subjects never collide, whatever their
// names hold, and never contain them.
func TestCounterKeyTenancy(t *testing.T) {
	pairs := [][2]Subject{
		{{Namespace: "a", Name: "b-c"}, {Namespace: "a-b", Name: "c"}},
		{{Namespace: "team", Name: "k"}, {Namespace: "other", Name: "k"}},
		{{Namespace: "ab", Name: "c"}, {Namespace: "a", Name: "bc"}},
	}
	for _, p := range pairs {
		if counterKey("rate", p[0]) == counterKey("rate", p[1]) {
			t.Errorf("%v and %v share a counter", p[0], p[1])
		}
	}
	if counterKey("rate", Subject{Namespace: "a", Name: "b"}) == counterKey("quota", Subject{Namespace: "a", Name: "b"}) {
		t.Error("a rate and a quota of one subject share a counter")
	}
	key, consumer := Subject{Namespace: "a", Name: "b"}, Subject{Kind: KindConsumer, Namespace: "a", Name: "b"}
	if counterKey(rateCounter(key), key) == counterKey(rateCounter(consumer), consumer) {
		t.Error("a key and a consumer of the same name share a rate counter")
	}
}
