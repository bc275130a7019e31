package verify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func consumerNamed(ns, name string, rps, burst int32) *keysv1.ApiConsumer {
	c := &keysv1.ApiConsumer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if rps > 0 {
		c.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: rps, Burst: burst}
	}
	return c
}

func ofConsumer(name string) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.ConsumerRef = &keysv1.ConsumerReference{Name: name} }
}

// TestConsumerSharesLimit: the keys of one consumer take from one limit,
// a key's own limit applies on top, a missing consumer stops its keys,
// and a consumer of the same name in another namespace is not theirs.
func TestConsumerSharesLimit(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	a, b, own, other := mint(t), mint(t), mint(t), mint(t)
	code := func(tok string) Code { return v.Verify(&Request{AnyNamespace: true, Token: tok}).Code }

	f.ix.SetKey(apiKey("ns", "a", a, ofConsumer("acme")))
	if got := code(a); got != Disabled {
		t.Fatalf("consumer missing: %s, want Disabled", got)
	}
	f.ix.SetConsumer(consumerNamed("elsewhere", "acme", 1000, 1000))
	if got := code(a); got != Disabled {
		t.Fatalf("a consumer of the same name in another namespace: %s, want Disabled", got)
	}
	f.ix.SetConsumer(consumerNamed("ns", "acme", 1, 4))
	f.ix.SetKey(apiKey("ns", "b", b, ofConsumer("acme")))
	f.ix.SetKey(apiKey("ns", "own", own, ofConsumer("acme"), func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 1}
	}))
	f.ix.SetKey(apiKey("ns", "other", other))

	// The clock stands still: the consumer's burst of 4 is all there is.
	if got := code(own); got != Valid {
		t.Fatalf("own 1: %s", got)
	}
	if got := code(own); got != RateLimited {
		t.Fatalf("own 2: %s, want RateLimited by its own limit", got)
	}
	var allowed int
	for range 6 {
		if code(a) == Valid {
			allowed++
		}
		if code(b) == Valid {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("a and b got %d of the consumer's remaining 3", allowed)
	}
	res := v.Verify(&Request{AnyNamespace: true, Token: a})
	if res.Code != RateLimited || res.RetryAfter <= 0 || res.RateLimit.Limit != 4 {
		t.Fatalf("exhausted consumer: %+v", res)
	}
	if got := code(other); got != Valid {
		t.Fatalf("a key outside the consumer: %s", got)
	}

	// An edit that keeps the limit keeps the count; a new limit starts full.
	f.ix.SetConsumer(consumerNamed("ns", "acme", 1, 4))
	if got := code(a); got != RateLimited {
		t.Fatalf("unchanged limit refilled the consumer: %s", got)
	}
	f.ix.SetConsumer(consumerNamed("ns", "acme", 2, 2))
	if got := code(a); got != Valid {
		t.Fatalf("new limit: %s", got)
	}
	f.ix.SetConsumer(consumerNamed("ns", "acme", 0, 0))
	for range 5 {
		if got := code(b); got != Valid {
			t.Fatalf("consumer without a limit: %s", got)
		}
	}

	f.ix.DeleteConsumer(types.NamespacedName{Namespace: "ns", Name: "acme"})
	if got := code(b); got != Disabled {
		t.Fatalf("consumer deleted: %s, want Disabled", got)
	}
	// A key that leaves the consumer verifies again.
	f.ix.SetKey(apiKey("ns", "b", b))
	if got := code(b); got != Valid {
		t.Fatalf("key left its deleted consumer: %s", got)
	}
}

// TestConsumerNamedInAnswers: forward-auth, the JSON verify answer name
// the consumer; a key without one answers an empty X-ApiKey-Consumer, so
// a gateway copying it overwrites what a client sent.
func TestConsumerNamedInAnswers(t *testing.T) {
	f := newFixture(t)
	tok, plain := mint(t), mint(t)
	f.ix.SetConsumer(consumerNamed("ns", "acme", 0, 0))
	f.ix.SetKey(apiKey("ns", "k", tok, ofConsumer("acme")))
	f.ix.SetKey(apiKey("ns", "plain", plain))

	w := f.auth("192.0.2.1:1000", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + tok})
	if w.Code != http.StatusOK || w.Header().Get(ConsumerHeader) != "acme" {
		t.Fatalf("forward-auth: %d, consumer %q", w.Code, w.Header().Get(ConsumerHeader))
	}
	w = f.auth("192.0.2.1:1000", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + plain, ConsumerHeader: "acme"})
	if vals, ok := w.Header()[http.CanonicalHeaderKey(ConsumerHeader)]; w.Code != http.StatusOK || !ok || len(vals) != 1 || vals[0] != "" {
		t.Fatalf("forward-auth without consumer: %d, %q", w.Code, vals)
	}

	r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(`{"key":"`+tok+`","namespaces":["ns"]}`))
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, r)
	var out verifyResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || !out.Valid || out.Consumer != "acme" {
		t.Fatalf("JSON verify: %s", rec.Body)
	}
}

// The verify core stays allocation-free with a consumer's limit.
func TestConsumerVerifyAllocatesNothing(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	tok := mint(t)
	f.ix.SetConsumer(consumerNamed("ns", "acme", 1000000, 1000000))
	f.ix.SetKey(apiKey("ns", "k", tok, ofConsumer("acme"), func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1000000, Burst: 1000000}
	}))
	req := &Request{Namespaces: []string{"ns"}, Token: tok}
	if n := testing.AllocsPerRun(100, func() {
		if v.Verify(req).Code != Valid {
			t.Fatal("not valid")
		}
	}); n != 0 {
		t.Fatalf("Verify allocates %.1f times per call", n)
	}
}

// TestConsumerAndKeyPolicyHeaders: a key counted against its own limit
// and its consumer's states both policies in RateLimit-Policy (its own
// first, under distinct names) and, in RateLimit, the one nearer to
// refusing; a key of the consumer without a limit of its own states the
// consumer's alone. The clock stands still.
func TestConsumerAndKeyPolicyHeaders(t *testing.T) {
	f := newFixture(t)
	tok, b := mint(t), mint(t)
	// The consumer: 10/s, burst 5 (q=10;w=1); the key: 1/s, burst 3
	// (q=3;w=3).
	f.ix.SetConsumer(consumerNamed("ns", "acme", 10, 5))
	f.ix.SetKey(apiKey("ns", "k", tok, ofConsumer("acme"), func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 3}
	}))
	f.ix.SetKey(apiKey("ns", "b", b, ofConsumer("acme")))
	call := func(tok string) *httptest.ResponseRecorder {
		return f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + tok})
	}
	both := `"rate";q=3;w=3, "consumer";q=10;w=1`
	check := func(step string, w *httptest.ResponseRecorder, code int, policy, limit string) {
		t.Helper()
		h := w.Header()
		if w.Code != code || h.Get(PolicyHeader) != policy || h.Get(RateLimitHeader) != limit {
			t.Fatalf("%s: %d, RateLimit-Policy %q, RateLimit %q; want %d, %q, %q", step, w.Code,
				h.Get(PolicyHeader), h.Get(RateLimitHeader), code, policy, limit)
		}
		for _, v := range []string{h.Get(PolicyHeader), h.Get(RateLimitHeader)} {
			if !sfList.MatchString(v) {
				t.Errorf("%s: %q is not a Structured Field List of the draft's shape", step, v)
			}
		}
	}
	// Own 2 left, consumer 4: the key's own limit binds.
	check("first", call(tok), 200, both, `"rate";r=2;t=1`)
	// The consumer's other key, without a limit of its own, takes 3.
	check("other key", call(b), 200, `"consumer";q=10;w=1`, `"consumer";r=3;t=1`)
	call(b)
	call(b)
	// Own 1 left, consumer 0: the consumer's limit binds. The JSON
	// verify answer carries the same fields, and its body the binding
	// limit's figures.
	r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(`{"key":"`+tok+`","namespaces":["ns"]}`))
	r.RemoteAddr = "192.0.2.1:1"
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, r)
	check("consumer drained (JSON verify)", rec, 200, both, `"consumer";r=0;t=1`)
	var out verifyResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Code != "Valid" || out.RateLimit == nil || out.RateLimit.Limit != 5 || out.RateLimit.Remaining != 0 {
		t.Fatalf("JSON verify: %s", rec.Body)
	}
	// Own 0 left (a request the consumer refuses has spent one of the
	// key's own), consumer refuses.
	w := call(tok)
	check("consumer refuses", w, 429, both, `"consumer";r=0;t=1`)
	if w.Header().Get(RetryAfterHeader) != "1" {
		t.Fatalf("consumer refuses: Retry-After %q", w.Header().Get(RetryAfterHeader))
	}
	// The key's own limit refuses before the consumer's is counted: only
	// its own policy is stated.
	check("own refuses", call(tok), 429, `"rate";q=3;w=3`, `"rate";r=0;t=1`)
}

func withConsumerQuota(c *keysv1.ApiConsumer, limit int64, uid types.UID) *keysv1.ApiConsumer {
	c.UID = uid
	c.Spec.Quota = &keysv1.QuotaSpec{Limit: limit}
	return c
}

// TestConsumerSharesQuota: the keys of one consumer spend one quota; a
// key's own quota applies first, and a key out of its own quota spends
// nothing of the consumer's; the answers name the consumer's quota as
// the "consumer-quota" policy and in the JSON answer's consumerQuota; an
// edit keeps the count, a consumer made again (new UID) starts afresh,
// and status.quota seeds a new counter.
func TestConsumerSharesQuota(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	a, b, own, other := mint(t), mint(t), mint(t), mint(t)
	code := func(tok string) Code { return v.Verify(&Request{AnyNamespace: true, Token: tok}).Code }

	f.ix.SetConsumer(withConsumerQuota(consumerNamed("ns", "acme", 0, 0), 5, "u1"))
	// A tenant attacker's consumer of the same name (and UID) elsewhere,
	// with a quota of 1: nothing of it reaches the keys of ns.
	f.ix.SetConsumer(withConsumerQuota(consumerNamed("elsewhere", "acme", 0, 0), 1, "u1"))
	f.ix.SetKey(apiKey("ns", "a", a, ofConsumer("acme")))
	f.ix.SetKey(apiKey("ns", "b", b, ofConsumer("acme")))
	f.ix.SetKey(apiKey("ns", "own", own, ofConsumer("acme"), func(k *keysv1.ApiKey) {
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: 1}
	}))
	f.ix.SetKey(apiKey("ns", "other", other))

	// own: 1 of its own, then refused by its own quota, spending nothing
	// more of the consumer's (4 left).
	if got := code(own); got != Valid {
		t.Fatalf("own 1: %s", got)
	}
	res := v.Verify(&Request{AnyNamespace: true, Token: own})
	if res.Code != QuotaExceeded || res.ConsumerQuota.Limit != 0 {
		t.Fatalf("own 2: %s, consumer quota counted %+v; want QuotaExceeded by its own quota alone", res.Code, res.ConsumerQuota)
	}
	var allowed int
	for range 4 {
		for _, tok := range []string{a, b} {
			if code(tok) == Valid {
				allowed++
			}
		}
	}
	if allowed != 4 {
		t.Fatalf("a and b got %d of the consumer's remaining 4", allowed)
	}
	w := f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + a})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("X-Apikey-Code") != "QuotaExceeded" ||
		w.Header().Get(PolicyHeader) != `"consumer-quota";q=5` || w.Header().Get(RateLimitHeader) != `"consumer-quota";r=0` {
		t.Fatalf("exhausted consumer quota: %d %q, RateLimit-Policy %q, RateLimit %q", w.Code, w.Header().Get("X-Apikey-Code"),
			w.Header().Get(PolicyHeader), w.Header().Get(RateLimitHeader))
	}
	if got := code(other); got != Valid {
		t.Fatalf("a key outside the consumer: %s", got)
	}

	// An edit that keeps the quota keeps the count.
	c := withConsumerQuota(consumerNamed("ns", "acme", 0, 0), 5, "u1")
	c.Spec.Description = "edited"
	f.ix.SetConsumer(c)
	if got := code(b); got != QuotaExceeded {
		t.Fatalf("an edit refilled the consumer's quota: %s", got)
	}
	// A higher limit keeps what was used: 2 more.
	f.ix.SetConsumer(withConsumerQuota(consumerNamed("ns", "acme", 0, 0), 7, "u1"))
	r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(`{"key":"`+a+`","namespaces":["ns"]}`))
	r.RemoteAddr = "192.0.2.1:1"
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, r)
	var out verifyResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Code != "Valid" || out.ConsumerQuota == nil ||
		out.ConsumerQuota.Limit != 7 || out.ConsumerQuota.Remaining != 1 || out.Quota != nil {
		t.Fatalf("raised limit, JSON verify: %s", rec.Body)
	}
	// The same consumer made again is a new one: a full quota, unless
	// its status says otherwise (a replica starting next to others).
	f.ix.SetConsumer(withConsumerQuota(consumerNamed("ns", "acme", 0, 0), 7, "u2"))
	if got := code(a); got != Valid {
		t.Fatalf("new consumer: %s", got)
	}
	fresh := withConsumerQuota(consumerNamed("ns", "acme", 0, 0), 3, "u3")
	fresh.Status.Quota = &keysv1.QuotaStatus{Limit: 3, Used: 3, CountedAt: &metav1.Time{Time: t0}}
	f.ix.SetConsumer(fresh)
	if got := code(b); got != QuotaExceeded {
		t.Fatalf("a counter seeded from status.quota (3 of 3 used): %s", got)
	}
	// Without a quota, its keys verify freely.
	f.ix.SetConsumer(consumerNamed("ns", "acme", 0, 0))
	for range 3 {
		if got := code(b); got != Valid {
			t.Fatalf("consumer without a quota: %s", got)
		}
	}
}
