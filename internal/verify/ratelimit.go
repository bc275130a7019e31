package verify

import (
	"math"
	"strconv"
	"time"
)

// The rate-limit header fields of the IETF httpapi working group's draft
// (draft-ietf-httpapi-ratelimit-headers-11, May 2026): both are Structured
// Field Lists (RFC 9651) of String items with Integer parameters, one item
// per policy, so a verification counted against several limits (a key's
// rate limit, its quota) names them all in one field:
//
//	RateLimit-Policy: "rate";q=100;w=10
//	RateLimit: "rate";r=42;t=6
//
// A key of an ApiConsumer counted against both its own limit and the
// consumer's states both policies, and RateLimit only the one nearer to
// refusing (the limit that binds):
//
//	RateLimit-Policy: "rate";q=100;w=10, "consumer";q=1000;w=10
//	RateLimit: "consumer";r=3;t=1
//
// They replace the RateLimit-Limit, -Remaining and -Reset fields of the
// draft's earlier revisions, which this server sent before.
const (
	PolicyHeader     = "RateLimit-Policy"
	RateLimitHeader  = "RateLimit"
	RetryAfterHeader = "Retry-After"
)

// RatePolicy names a key's rate limit (spec.rateLimit) in the headers,
// ConsumerPolicy the rate limit of its ApiConsumer, which all the
// consumer's keys share, QuotaPolicy its quota (spec.quota) and
// ConsumerQuotaPolicy its consumer's quota.
const (
	RatePolicy          = "rate"
	ConsumerPolicy      = "consumer"
	QuotaPolicy         = "quota"
	ConsumerQuotaPolicy = "consumer-quota"
)

// maxPolicies bounds the policies of one answer; Policies fills a buffer
// of this size on the stack.
const maxPolicies = 4

// Policy is one limit a verification was counted against, as the
// RateLimit-Policy and RateLimit fields describe it.
type Policy struct {
	// Name identifies the policy in both fields. It is one of this
	// package's constants (RatePolicy, ...), never user input, so it
	// needs no escaping in a Structured Field String.
	Name string
	// Quota requests per Window (q and w): the policy. A Window of zero
	// leaves w out (a limit without a time window).
	Quota  int64
	Window time.Duration
	// Remaining (r) is how many more requests the policy allows now, and
	// Reset (t) the time within which the client should make no more than
	// that; a negative Reset leaves t out.
	Remaining int64
	Reset     time.Duration
	// PolicyOnly lists the policy in RateLimit-Policy but not in
	// RateLimit: of a key's own rate limit and its consumer's, RateLimit
	// reports only the one nearer to refusing, so a client reading the
	// field's first rate item reads the limit that binds.
	PolicyOnly bool
}

// Policies appends the limits res was counted against to dst, in the
// order the headers list them. A verdict reached before any limit was
// counted (a refused key, or the brute-force guard's RateLimited) has
// none. Each new kind of limit adds its policy here, and every endpoint
// (forward-auth, the JSON verify answer, gRPC ext_authz) carries it.
func (res *Result) Policies(dst []Policy) []Policy {
	if rl := res.RateLimit; rl.Limit > 0 {
		// The key's own limit comes first, the consumer's second,
		// whichever of them is nearer to refusing.
		near, far := RatePolicy, ConsumerPolicy
		if res.ConsumerNearer {
			near, far = far, near
		}
		p := ratePolicy(near, rl)
		if fr := res.FartherRate; fr.Limit > 0 {
			o := ratePolicy(far, fr)
			o.PolicyOnly = true
			if res.ConsumerNearer {
				p, o = o, p
			}
			dst = append(dst, p)
			p = o
		}
		dst = append(dst, p)
	}
	if q := res.Quota; q.Limit > 0 {
		dst = append(dst, quotaPolicy(QuotaPolicy, &q))
	}
	if q := res.ConsumerQuota; q.Limit > 0 {
		dst = append(dst, quotaPolicy(ConsumerQuotaPolicy, &q))
	}
	return dst
}

// quotaPolicy describes a quota: q is its limit, with no window (a quota
// refills by its own schedule, not a sliding window); t is the time until
// its next refill, and absent for a quota that never refills.
func quotaPolicy(name string, q *Quota) Policy {
	p := Policy{Name: name, Quota: q.Limit, Remaining: q.Remaining(), Reset: -1}
	if !q.NextRefill.IsZero() {
		p.Reset = ceilDuration(max(0, time.Until(q.NextRefill)))
	}
	return p
}

// ratePolicy describes a token bucket (or its GCRA equivalent in Redis).
//
// The policy is the bucket's refill rate stated over a whole number of
// seconds (the draft has no sub-second windows): Limit tokens per Window,
// rounded up to w ≥ 1 s with q scaled alike, so a key with 100/s and a
// burst of 1 says q=100;w=1, not q=1;w=1. When limits are per replica
// (no Redis) the bucket, and so the policy, is this replica's share.
//
// t is the time until the bucket is full again while requests remain, and
// the time until the next request is allowed when none does (r=0): then
// it equals Retry-After, which the draft says should not end before t.
func ratePolicy(name string, rl RateLimit) Policy {
	p := Policy{Name: name, Quota: int64(rl.Limit), Remaining: int64(max(rl.Remaining, 0))}
	if rl.Window > 0 {
		w := max(time.Second, ceilDuration(rl.Window))
		p.Window = w
		p.Quota = int64(math.Round(float64(rl.Limit) * float64(w) / float64(rl.Window)))
	}
	if p.Remaining == 0 {
		p.Reset = time.Duration(retrySeconds(rl.RetryAfter)) * time.Second
	} else {
		p.Reset = rl.Reset
	}
	return p
}

func ceilDuration(d time.Duration) time.Duration {
	return time.Duration(ceilSeconds(d)) * time.Second
}

// retrySeconds is a Retry-After value: whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, ceilSeconds(d))
}

// RateLimitHeaders sets the answer's Retry-After (with RateLimited, in
// whole seconds, at least 1) and, when it was counted against any limit,
// RateLimit-Policy and RateLimit. Forward-auth, the JSON verify answer and
// gRPC ext_authz all write their headers through it.
func RateLimitHeaders(res Result, set func(name, value string)) {
	if res.Code == RateLimited || (res.Code == QuotaExceeded && res.RetryAfter > 0) {
		set(RetryAfterHeader, strconv.Itoa(retrySeconds(res.RetryAfter)))
	}
	PolicyHeaders(res, set)
}

// PolicyHeaders sets RateLimit-Policy and RateLimit alone: the JSON verify
// answer is a 200 whatever the verdict, where Retry-After means nothing,
// and carries the retry time in its body.
func PolicyHeaders(res Result, set func(name, value string)) {
	var buf [maxPolicies]Policy
	ps := res.Policies(buf[:0])
	if len(ps) == 0 {
		return
	}
	policy, limit := FormatPolicies(ps)
	set(PolicyHeader, policy)
	set(RateLimitHeader, limit)
}

// FormatPolicies serialises policies as the RateLimit-Policy and
// RateLimit field values (RateLimit without the PolicyOnly ones).
func FormatPolicies(ps []Policy) (policy, limit string) {
	var pb, lb [160]byte
	p, l := pb[:0], lb[:0]
	for i, x := range ps {
		if i > 0 {
			p = append(p, ", "...)
		}
		p = append(append(append(p, '"'), x.Name...), `";q=`...)
		p = strconv.AppendInt(p, x.Quota, 10)
		if x.Window > 0 {
			p = append(p, ";w="...)
			p = strconv.AppendInt(p, int64(ceilSeconds(x.Window)), 10)
		}
		if x.PolicyOnly {
			continue
		}
		if len(l) > 0 {
			l = append(l, ", "...)
		}
		l = append(append(append(l, '"'), x.Name...), `";r=`...)
		l = strconv.AppendInt(l, x.Remaining, 10)
		if x.Reset >= 0 {
			l = append(l, ";t="...)
			l = strconv.AppendInt(l, int64(ceilSeconds(x.Reset)), 10)
		}
	}
	return string(p), string(l)
}
