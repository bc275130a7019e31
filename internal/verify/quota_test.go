package verify

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

var readPerm = func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("read") }

func withQuota(limit int64, refill *keysv1.QuotaRefill) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) {
		k.UID = ktypes.UID("uid-" + k.Name)
		k.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour))
		k.Spec.Quota = &keysv1.QuotaSpec{Limit: limit, Refill: refill}
	}
}

// A quota lets exactly its limit through, then QuotaExceeded with its own
// status, Retry-After until the refill, and metrics; refusals before it
// (another tenant's gateway, a missing permission) spend nothing; a
// status write reseeds nothing already counted further.
func TestQuotaVerdicts(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok, readPerm, withQuota(3, &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodDay})))
	mine := Request{Token: tok, Namespaces: []string{"ns"}}
	other := Request{Token: tok, Namespaces: []string{"other-tenant"}}
	// The verdict counters are the process's (newMetrics): other tests
	// count into them too, so this one reads its own growth.
	exceeded := resultsDesc.WithLabelValues(QuotaExceeded.String())
	before := testutil.ToFloat64(exceeded)
	for range 10 {
		if c := v.Verify(&other).Code; c != WrongNamespace {
			t.Fatalf("another tenant's gateway: %s", c)
		}
		r := mine
		r.Permissions = []string{"write"}
		if c := v.Verify(&r).Code; c != MissingPermission {
			t.Fatalf("missing permission: %s", c)
		}
	}
	for i := range 3 {
		res := v.Verify(&mine)
		if res.Code != Valid || res.Quota.Remaining() != int64(2-i) || res.Quota.Limit != 3 {
			t.Fatalf("verification %d: %s, quota %+v; refusals must not spend the quota", i+1, res.Code, res.Quota)
		}
	}
	res := v.Verify(&mine)
	tomorrow := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	if res.Code != QuotaExceeded || res.RetryAfter != tomorrow.Sub(t0) {
		t.Fatalf("past the quota: %s, retry after %s; want QuotaExceeded until midnight (%s)", res.Code, res.RetryAfter, tomorrow.Sub(t0))
	}

	w := f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"X-API-Key": tok})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("X-Apikey-Code") != "QuotaExceeded" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("forward-auth: %d %q, Retry-After %q", w.Code, w.Header().Get("X-Apikey-Code"), w.Header().Get("Retry-After"))
	}
	out := responseOf(v.Verify(&mine))
	body, _ := json.Marshal(out)
	if out.Code != "QuotaExceeded" || out.Valid || out.Quota == nil || out.Quota.Remaining != 0 || out.Quota.Limit != 3 || out.Quota.Reset == nil {
		t.Fatalf("JSON verify answer %s", body)
	}
	if got := testutil.ToFloat64(exceeded) - before; got != 3 {
		t.Fatalf("apikey_verifications_total{result=\"QuotaExceeded\"} grew by %v, want 3", got)
	}

	// The informer brings a status written earlier (fewer used): the
	// count does not go back.
	f.ix.SetKey(apiKey("ns", "k", tok, readPerm, withQuota(3, &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodDay}), func(k *keysv1.ApiKey) {
		k.Status.Quota = &keysv1.QuotaStatus{Limit: 3, Used: 1, Remaining: 2, CountedAt: &metav1.Time{Time: t0.Add(-time.Minute)}}
	}))
	if c := v.Verify(&mine).Code; c != QuotaExceeded {
		t.Fatalf("after an older status.quota arrived: %s, want QuotaExceeded still", c)
	}
	// Raising the limit keeps what was used and lets the difference through.
	f.ix.SetKey(apiKey("ns", "k", tok, readPerm, withQuota(5, &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodDay})))
	for i, want := range []Code{Valid, Valid, QuotaExceeded} {
		if c := v.Verify(&mine).Code; c != want {
			t.Fatalf("raised to 5, verification %d: %s, want %s", i+1, c, want)
		}
	}
	// The next day refills.
	f.clock.SetTime(tomorrow)
	if c := v.Verify(&mine).Code; c != Valid {
		t.Fatalf("after the refill: %s", c)
	}
}

// A new replica (a restart) starts from status.quota, not from full.
func TestQuotaSeededFromStatus(t *testing.T) {
	f := newFixture(t)
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok, withQuota(10, nil), func(k *keysv1.ApiKey) {
		k.Status.Quota = &keysv1.QuotaStatus{Limit: 10, Used: 9, Remaining: 1, CountedAt: &metav1.Time{Time: t0.Add(-time.Minute)}}
	}))
	req := Request{Token: tok, Namespaces: []string{"ns"}}
	for i, want := range []Code{Valid, QuotaExceeded} {
		if c := f.srv.Verifier().Verify(&req).Code; c != want {
			t.Fatalf("verification %d: %s, want %s", i+1, c, want)
		}
	}
}

// Several replicas without Redis: QuotaUnavailable, 503; keys without a
// quota are untouched.
func TestQuotaUnavailableWithSeveralReplicas(t *testing.T) {
	f := newFixture(t)
	var r atomic.Int32
	r.Store(2)
	f.ix.WithQuotas(quota.Local{Replicas: &r})
	tok, plain := mint(t), mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok, withQuota(10, nil)))
	f.ix.SetKey(apiKey("ns", "plain", plain))
	w := f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"X-API-Key": tok})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("X-Apikey-Code") != "QuotaUnavailable" {
		t.Fatalf("forward-auth: %d %q, want 503 QuotaUnavailable", w.Code, w.Header().Get("X-Apikey-Code"))
	}
	if w := f.auth("192.0.2.1:1", "/v1/auth?namespace=ns", map[string]string{"X-API-Key": plain}); w.Code != http.StatusOK {
		t.Fatalf("a key without quota: %d", w.Code)
	}
}

// status.quota is written only when newer than what is there, and says
// what remains.
func TestQuotaStatusOf(t *testing.T) {
	q := quota.Quota{Limit: 10}
	key := &keysv1.ApiKey{Spec: keysv1.ApiKeySpec{Quota: &keysv1.QuotaSpec{Limit: 10}}}
	c := &quotaCount{q: q, st: quota.State{Limit: 10, Used: 4, At: t0.UnixNano()}}
	got := quotaStatusOf(key.Spec.Quota, key.Status.Quota, c)
	if got == nil || got.Used != 4 || got.Remaining != 6 || got.Limit != 10 || !got.CountedAt.Time.Equal(t0) || got.NextRefillAt != nil {
		t.Fatalf("first write: %+v", got)
	}
	key.Status.Quota = &keysv1.QuotaStatus{Limit: 10, Used: 7, Remaining: 3, CountedAt: &metav1.Time{Time: t0}}
	if got := quotaStatusOf(key.Spec.Quota, key.Status.Quota, c); got != nil {
		t.Fatalf("another replica wrote a newer count (7 used): this one's 4 must not replace it, got %+v", got)
	}
	c.st.Used = 8
	if got := quotaStatusOf(key.Spec.Quota, key.Status.Quota, c); got == nil || got.Used != 8 {
		t.Fatalf("a newer count: %+v", got)
	}
	if got := quotaStatusOf(nil, nil, c); got != nil {
		t.Fatal("a key whose quota was removed gets no status.quota")
	}
}

// The verify core stays at zero allocations for a key without a quota,
// and with one counted in the process.
func TestQuotaAllocations(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	plain, limited := mint(t), mint(t)
	f.ix.SetKey(apiKey("ns", "plain", plain))
	f.ix.SetKey(apiKey("ns", "limited", limited, withQuota(keysv1.QuotaLimitMax, &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodMonth})))
	for _, tok := range []string{plain, limited} {
		req := Request{Token: tok, Namespaces: []string{"ns"}}
		v.Verify(&req)
		if n := testing.AllocsPerRun(200, func() { v.Verify(&req) }); n != 0 {
			t.Errorf("%.1f allocations per verification, want 0", n)
		}
	}
}

func BenchmarkVerifyQuota(b *testing.B) {
	f := newFixture(b)
	v := f.srv.Verifier()
	tok := mint(b)
	f.ix.SetKey(apiKey("ns", "k", tok, withQuota(keysv1.QuotaLimitMax, &keysv1.QuotaRefill{Period: keysv1.QuotaPeriodMonth})))
	req := Request{Token: tok, Namespaces: []string{"ns"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v.Verify(&req).Code != Valid {
				b.Fatal("not valid")
			}
		}
	})
}
