package verify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
)

// sfList matches what RFC 9651 allows of the two fields as the draft
// defines them: a List of String items, each with Integer parameters.
// It checks our serialisation, not every List a parser would accept.
var sfList = regexp.MustCompile(`^"[a-z][a-z0-9-]*"(;[a-z][a-z0-9-]*=[0-9]{1,15})+(, "[a-z][a-z0-9-]*"(;[a-z][a-z0-9-]*=[0-9]{1,15})+)*$`)

func TestRatePolicy(t *testing.T) {
	for _, c := range []struct {
		name          string
		st            limits.State
		policy, limit string
	}{
		{"burst above one second of rate", limits.State{Limit: 20, Remaining: 19, Window: 2 * time.Second, Reset: 100 * time.Millisecond},
			`"rate";q=20;w=2`, `"rate";r=19;t=1`},
		// 100/s with burst 1 fills in 10ms: stated over one second, the
		// rate stays 100/s rather than becoming 1/s.
		{"sub-second window keeps the rate", limits.State{Limit: 1, Remaining: 0, Window: 10 * time.Millisecond, Reset: 10 * time.Millisecond, RetryAfter: 10 * time.Millisecond},
			`"rate";q=100;w=1`, `"rate";r=0;t=1`},
		// 2/s with burst 3 fills in 1.5s: w rounds up to 2, q to 4.
		{"fractional window rounds up", limits.State{Limit: 3, Remaining: 2, Window: 1500 * time.Millisecond, Reset: 500 * time.Millisecond},
			`"rate";q=4;w=2`, `"rate";r=2;t=1`},
		// None left: t is when the next request is allowed (Retry-After),
		// not when the bucket is full.
		{"none left", limits.State{Limit: 10, Remaining: 0, Window: 10 * time.Second, Reset: 10 * time.Second, RetryAfter: 1500 * time.Millisecond},
			`"rate";q=10;w=10`, `"rate";r=0;t=2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := Result{Code: Valid, RateLimit: c.st}
			got := map[string]string{}
			RateLimitHeaders(res, func(n, v string) { got[n] = v })
			want := map[string]string{PolicyHeader: c.policy, RateLimitHeader: c.limit}
			if len(got) != 2 || got[PolicyHeader] != c.policy || got[RateLimitHeader] != c.limit {
				t.Fatalf("headers %v, want %v", got, want)
			}
			for _, v := range got {
				if !sfList.MatchString(v) {
					t.Errorf("%q is not a Structured Field List of the draft's shape", v)
				}
			}
		})
	}
}

func TestFormatSeveralPolicies(t *testing.T) {
	// What a key with a rate limit and a quota will send: one List item
	// per policy, in both fields, the same order.
	p, l := FormatPolicies([]Policy{
		{Name: RatePolicy, Quota: 10, Window: time.Second, Remaining: 9, Reset: time.Second},
		{Name: "quota", Quota: 1000, Remaining: 999, Reset: -1},
	})
	if p != `"rate";q=10;w=1, "quota";q=1000` || l != `"rate";r=9;t=1, "quota";r=999` {
		t.Fatalf("got %q and %q", p, l)
	}
	for _, v := range []string{p, l} {
		if !sfList.MatchString(v) {
			t.Errorf("%q is not a Structured Field List of the draft's shape", v)
		}
	}
}

// TestRateLimitHeadersOnForwardAuth: what a gateway passes to the client,
// through every answer of a key with a rate limit (10/s, burst 3, the
// clock standing still).
func TestRateLimitHeadersOnForwardAuth(t *testing.T) {
	f := newFixture(t)
	tok, plain := mint(t), mint(t)
	f.ix.SetKey(apiKey("ns", "limited", tok, func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 10, Burst: 3}
	}))
	f.ix.SetKey(apiKey("ns", "plain", plain))
	call := func(tok string) *httptest.ResponseRecorder {
		return f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + tok})
	}
	for i, want := range []string{`"rate";r=2;t=1`, `"rate";r=1;t=1`, `"rate";r=0;t=1`} {
		w := call(tok)
		if w.Code != 200 || w.Header().Get(RateLimitHeader) != want || w.Header().Get(PolicyHeader) != `"rate";q=10;w=1` {
			t.Fatalf("request %d: %d, RateLimit %q, RateLimit-Policy %q; want 200, %q", i+1, w.Code,
				w.Header().Get(RateLimitHeader), w.Header().Get(PolicyHeader), want)
		}
		if w.Header().Get(RetryAfterHeader) != "" {
			t.Fatalf("request %d: Retry-After on a 200", i+1)
		}
	}
	w := call(tok)
	h := w.Header()
	if w.Code != 429 || h.Get(RetryAfterHeader) != "1" || h.Get(RateLimitHeader) != `"rate";r=0;t=1` || h.Get(PolicyHeader) != `"rate";q=10;w=1` {
		t.Fatalf("over the limit: %d %v", w.Code, h)
	}
	for _, old := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if h.Get(old) != "" {
			t.Errorf("the old %s header is still sent", old)
		}
	}
	if h := call(plain).Header(); h.Get(PolicyHeader) != "" || h.Get(RateLimitHeader) != "" {
		t.Errorf("a key without a rate limit got %v", h)
	}
	// A refusal before the limit is counted tells nothing of the key's
	// limit: the caller may not even hold the key.
	if h := f.auth("192.0.2.1:1", "/v1/auth?namespace=other", map[string]string{"Authorization": "Bearer " + tok}).Header(); h.Get(PolicyHeader) != "" || h.Get(RateLimitHeader) != "" {
		t.Errorf("a WrongNamespace answer carried the key's limit: %v", h)
	}
}

func TestRateLimitHeadersOnJSONVerify(t *testing.T) {
	f := newFixture(t)
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "limited", tok, func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 1}
	}))
	post := func() (http.Header, map[string]any) {
		r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(`{"key":"`+tok+`","namespaces":["ns"]}`))
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		return w.Header(), out
	}
	h, out := post()
	if out["code"] != "Valid" || h.Get(PolicyHeader) != `"rate";q=1;w=1` || h.Get(RateLimitHeader) != `"rate";r=0;t=1` || out["retryAfter"] != nil {
		t.Fatalf("first: %v %v", h, out)
	}
	h, out = post()
	if out["code"] != "RateLimited" || h.Get(RateLimitHeader) != `"rate";r=0;t=1` || out["retryAfter"] != 1.0 || h.Get(RetryAfterHeader) != "" {
		t.Fatalf("over the limit: %v %v (a 200 carries no Retry-After; the body's retryAfter says it)", h, out)
	}
}
