package verify

import (
	"net/netip"
	"time"

	"k8s.io/utils/clock"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/permission"
	"github.com/apikey-operator/apikey-operator/internal/quota"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Request is one verification.
type Request struct {
	// Token is the presented key. It is never stored, logged or echoed.
	Token string
	// Permissions the caller needs; every one must be granted.
	Permissions []string
	// IP is the client's address, checked against the key's allowedIPs.
	// A key with allowedIPs refuses a request without one.
	IP netip.Addr
	// Source is the address the brute-force guard charges for a failure;
	// when unset, IP.
	Source netip.Addr

	// Namespaces and Audiences say whose keys this verification accepts.
	// The gateway (or whoever runs the verification) states them, never
	// the client whose key is checked:
	//   - Namespaces: the key's namespace must be one of them; empty
	//     means any namespace, which is allowed only with Audiences or
	//     AnyNamespace;
	//   - Audiences: when the request names audiences or the key has
	//     spec.audiences, the two must share one, so a key made for one
	//     API does not open another.
	// A key outside them is refused as WrongNamespace or WrongAudience,
	// before anything else about it is told. A request naming neither is
	// refused as Unscoped unless AnyNamespace is set.
	Namespaces []string
	Audiences  []string
	// AnyNamespace accepts keys from every namespace when the request
	// names no namespace and no audience: the verify endpoints set it
	// only under --verify-any-namespace (single-tenant clusters), and the
	// REST dialects' own authentication sets it because an API-key
	// caller there acts only inside its own namespace.
	AnyNamespace bool
	// Uncharged leaves a failure off the brute-force guard: the caller
	// decides afterwards whether it was a failed key at all (the REST
	// dialects first ask TokenReview about a bearer token that may be a
	// Kubernetes token) and charges it with Verifier.Charge.
	Uncharged bool
}

// RateLimit is a key's limit after a verification.
type RateLimit = limits.State

// Quota is a key's quota after a verification.
type Quota = quota.State

// Result is the verdict and, for a known key, what the index knows of it.
type Result struct {
	Code Code
	// Key is the key the token belongs to; nil when the token matched no
	// key. Callers show its identity only when Code is Valid.
	Key *Key
	// RateLimit is the key's bucket after this verification; Limit is 0
	// when the key has no rate limit or was refused before it. For a key
	// of an ApiConsumer counted against both its own limit and the
	// consumer's, it is the one nearer to refusing (what the client can
	// count on; ConsumerNearer tells which) and FartherRate the other,
	// so that RateLimit-Policy can state both.
	RateLimit      RateLimit
	FartherRate    RateLimit
	ConsumerNearer bool
	// Quota is the key's quota after this verification; Limit is 0 when
	// the key has none or was refused before it was counted.
	// ConsumerQuota is its ApiConsumer's, the same way.
	Quota         Quota
	ConsumerQuota Quota
	// RetryAfter is set with RateLimited, and with QuotaExceeded when the
	// quota refills: when to try again.
	RetryAfter time.Duration
}

// Verifier is the one verify core: every endpoint and the ApiKeyReview
// call Verify.
type Verifier struct {
	index   *Index
	guard   *guard
	usage   *usageTracker
	metrics *metrics
	clock   clock.PassiveClock
}

// Verify checks a token and the request against the index. On the path of
// a valid key it allocates nothing.
func (v *Verifier) Verify(req *Request) Result {
	start := v.clock.Now()
	res := v.verify(req, start)
	if res.Code.failure() && !req.Uncharged {
		res = v.charge(req, res, start)
	}
	v.metrics.observe(&res, start)
	return res
}

// verify runs the checks in order; the first that fails decides.
func (v *Verifier) verify(req *Request, now time.Time) Result {
	if !req.AnyNamespace && len(req.Namespaces) == 0 && len(req.Audiences) == 0 {
		return Result{Code: Unscoped}
	}
	// A mistyped or made-up token is refused by its shape and checksum
	// before it costs a hash and a lookup.
	if token.Validate(req.Token) != nil {
		return Result{Code: Malformed}
	}
	sum := token.Sum(req.Token)
	e, ok := v.index.lookup(&sum)
	at := now.UnixNano()
	if !ok || (e.validUntil != 0 && at >= e.validUntil) {
		// A rotated-out token past its grace period is as unknown as
		// one that never existed.
		return Result{Code: NotFound}
	}
	k := e.key
	res := v.judge(req, k, at)
	v.usage.record(k.use, res.Code == Valid, at)
	return res
}

// judge decides on a request with a known key, in the order of the checks.
func (v *Verifier) judge(req *Request, k *Key, at int64) Result {
	// Whose key it is comes first: a key from outside the request's scope
	// tells nothing of its state (disabled, expired, permissions).
	switch {
	case len(req.Namespaces) > 0 && !contains(req.Namespaces, k.Namespace):
		return Result{Code: WrongNamespace}
	case (len(req.Audiences) > 0 || len(k.Audiences) > 0) && !sharesOne(req.Audiences, k.Audiences):
		return Result{Code: WrongAudience}
	case !k.Enabled || k.RoleMissing || k.ConsumerMissing:
		return Result{Code: Disabled, Key: k}
	case k.expiresAt != 0 && at >= k.expiresAt:
		return Result{Code: Expired, Key: k}
	case !ipAllowed(k.AllowedIPs, req.IP):
		return Result{Code: IPNotAllowed, Key: k}
	case !permission.GrantsAll(k.Permissions, req.Permissions):
		return Result{Code: MissingPermission, Key: k}
	}
	res := Result{Code: Valid, Key: k}
	// Both limits apply, the key's own first: a request its own limit
	// refuses takes nothing from what the consumer's other keys share.
	// One the consumer's limit refuses has spent one of the key's own
	// tokens (as Kong's stacked limits do); undoing it would cost a
	// second round trip with Redis.
	if k.limit != nil {
		var allowed bool
		allowed, res.RateLimit = k.limit.Take(at)
		if !allowed {
			res.Code, res.RetryAfter = RateLimited, res.RateLimit.RetryAfter
			return res
		}
	}
	if k.consumerLimit != nil {
		allowed, st := k.consumerLimit.Take(at)
		// The answer's rate-limit figures are those of the limit nearer
		// to refusing: what the client can count on.
		if !allowed || res.RateLimit.Limit == 0 || st.Remaining < res.RateLimit.Remaining {
			res.RateLimit, res.FartherRate, res.ConsumerNearer = st, res.RateLimit, true
		} else {
			res.FartherRate = st
		}
		if !allowed {
			res.Code, res.RetryAfter = RateLimited, st.RetryAfter
			return res
		}
	}
	// The quotas count successful verifications: they are spent last,
	// once every other check (the rate limits included) has passed; the
	// key's own first, as for the rate limits, so a key out of its own
	// quota spends nothing of its consumer's.
	if k.quota != nil {
		var verdict quota.Verdict
		verdict, res.Quota = k.quota.Take(at)
		if res.quotaRefused(verdict, &res.Quota, at) {
			return res
		}
	}
	if k.consumerQuota != nil {
		var verdict quota.Verdict
		verdict, res.ConsumerQuota = k.consumerQuota.Take(at)
		res.quotaRefused(verdict, &res.ConsumerQuota, at)
	}
	return res
}

// quotaRefused turns a quota's refusal into the verdict, with the time of
// its next refill to retry at.
func (res *Result) quotaRefused(v quota.Verdict, st *Quota, at int64) bool {
	switch v {
	case quota.Exceeded:
		res.Code = QuotaExceeded
		if !st.NextRefill.IsZero() {
			res.RetryAfter = max(time.Second, st.NextRefill.Sub(time.Unix(0, at)))
		}
		return true
	case quota.Unavailable:
		res.Code = QuotaUnavailable
		return true
	}
	return false
}

// Charge counts one failed authentication from src against its budget,
// for a caller that verified with Request.Uncharged; it returns false and
// when to retry once src is over its budget.
func (v *Verifier) Charge(src netip.Addr) (bool, time.Duration) {
	return v.guard.fail(src, v.clock.Now())
}

// charge counts a failure against the source address and turns it into
// RateLimited once the address is over its budget.
func (v *Verifier) charge(req *Request, res Result, now time.Time) Result {
	src := req.Source
	if !src.IsValid() {
		src = req.IP
	}
	if ok, retry := v.guard.fail(src, now); !ok {
		return Result{Code: RateLimited, RetryAfter: retry}
	}
	return res
}

// contains and sharesOne compare by loops: the lists are short (bounded
// by the endpoints and the CRD), and a map would allocate.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sharesOne(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}
