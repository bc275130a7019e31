package verify

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Several verify replicas count the same key and write status at the same
// moment: each adds its own counts under optimistic concurrency, so the
// totals in status are the sum of what every replica saw, and the writes
// are one per replica per flush, never one per verification.
var _ = Describe("usage per key", func() {
	ctx := context.Background()

	It("sums every replica's counts in status, in a few writes", func() {
		ns := newNamespace(ctx)
		k, tok := issue(ctx, ns, "shared", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read") })
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), k)).To(Succeed())

		var patches atomic.Int64
		direct, err := client.NewWithWatch(testEnv.Config, client.Options{Scheme: testScheme()})
		Expect(err).NotTo(HaveOccurred())
		writer := interceptor.NewClient(direct, interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				patches.Add(1)
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		})
		const replicas, rounds = 3, 4
		servers := make([]*Server, replicas)
		for i := range servers {
			ix := NewIndex()
			ix.SetKey(k)
			opts := NewOptions()
			servers[i], err = NewServerFromIndex(opts, ix, Deps{Client: writer, Registerer: prometheus.NewRegistry()})
			Expect(err).NotTo(HaveOccurred())
		}
		var allowed, refused int64
		for round := range rounds {
			for i, s := range servers {
				// Different counts per replica and round, so a lost or
				// doubled write shows in the sum.
				for range 10*(i+1) + round {
					Expect(s.Verifier().Verify(&Request{Token: tok, Namespaces: []string{ns}, Permissions: []string{"invoices:read"}}).Code).To(Equal(Valid))
					allowed++
				}
				for range i + 1 {
					Expect(s.Verifier().Verify(&Request{Token: tok, Namespaces: []string{ns}, Permissions: []string{"invoices:write"}}).Code).To(Equal(MissingPermission))
					refused++
				}
			}
			var wg sync.WaitGroup
			for _, s := range servers {
				wg.Go(func() { s.flusher.flush(ctx) })
			}
			wg.Wait()
		}

		got := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
		u := got.Status.Usage
		Expect(u).NotTo(BeNil())
		Expect(u.Allowed).To(Equal(allowed))
		Expect(u.Refused).To(Equal(refused))
		a24, r24 := u.Last24h(time.Now())
		Expect([]int64{a24, r24}).To(Equal([]int64{allowed, refused}), "the hourly entries add up to the totals")
		Expect(got.Status.LastUsedAt).NotTo(BeNil())
		Expect(u.Since).NotTo(BeNil())
		// At most one read-modify-write round per conflict, bounded: far
		// fewer writes than verifications.
		Expect(patches.Load()).To(BeNumerically(">=", replicas*rounds))
		Expect(patches.Load()).To(BeNumerically("<=", replicas*rounds*conflictRetries))
		Expect(patches.Load()).To(BeNumerically("<", allowed/4))

		// Nothing new: no write at all.
		before := patches.Load()
		for _, s := range servers {
			s.flusher.flush(ctx)
		}
		Expect(patches.Load()).To(Equal(before))
	})
})

func TestUsagePatchOf(t *testing.T) {
	now := time.Date(2026, 11, 27, 16, 40, 0, 0, time.UTC)
	hour := func(h int) metav1.Time { return metav1.NewTime(time.Date(2026, 11, 27, h, 0, 0, 0, time.UTC)) }
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	since := metav1.NewTime(now.Add(-48 * time.Hour))
	for _, tc := range []struct {
		name      string
		status    keysv1.ApiKeyStatus
		d         delta
		wantUsage keysv1.KeyUsage
		wantLast  *metav1.Time
	}{{
		name:      "first write starts counting",
		d:         delta{last: now.UnixNano(), allowed: 5, refused: 1},
		wantUsage: keysv1.KeyUsage{Allowed: 5, Refused: 1, Since: &metav1.Time{Time: now}, Hourly: []keysv1.HourlyUsage{{Hour: hour(16), Allowed: 5, Refused: 1}}},
		wantLast:  &metav1.Time{Time: now},
	}, {
		name: "adds to the current hour, keeps a later lastUsedAt, drops hours older than a day",
		status: keysv1.ApiKeyStatus{LastUsedAt: &metav1.Time{Time: now.Add(time.Minute)}, Usage: &keysv1.KeyUsage{
			Allowed: 100, Refused: 10, Since: &since,
			Hourly: []keysv1.HourlyUsage{
				{Hour: metav1.NewTime(hour(16).Add(-30 * time.Hour)), Allowed: 50},
				{Hour: hour(9), Allowed: 30, Refused: 4},
				{Hour: hour(16), Allowed: 20, Refused: 6},
			},
		}},
		d: delta{last: now.UnixNano(), allowed: 2, refused: 3},
		wantUsage: keysv1.KeyUsage{Allowed: 102, Refused: 13, Since: &since, Hourly: []keysv1.HourlyUsage{
			{Hour: hour(9), Allowed: 30, Refused: 4}, {Hour: hour(16), Allowed: 22, Refused: 9},
		}},
	}, {
		name:   "refusals only leave lastUsedAt alone, and open a new hour in order",
		status: keysv1.ApiKeyStatus{LastUsedAt: ago(time.Hour), Usage: &keysv1.KeyUsage{Allowed: 1, Since: &since, Hourly: []keysv1.HourlyUsage{{Hour: hour(15), Allowed: 1}}}},
		d:      delta{refused: 2},
		wantUsage: keysv1.KeyUsage{Allowed: 1, Refused: 2, Since: &since, Hourly: []keysv1.HourlyUsage{
			{Hour: hour(15), Allowed: 1}, {Hour: hour(16), Refused: 2},
		}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "42"}, Status: tc.status}
			p := usagePatchOf(key, tc.d, now)
			if p.Metadata.ResourceVersion != "42" {
				t.Errorf("resourceVersion %q: the patch must be conditional on what was read", p.Metadata.ResourceVersion)
			}
			if diff := cmp.Diff(&tc.wantUsage, p.Status.Usage); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLast, p.Status.LastUsedAt); diff != "" {
				t.Errorf("lastUsedAt (-want +got):\n%s", diff)
			}
		})
	}
}
