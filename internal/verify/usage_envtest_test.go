package verify_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	. "github.com/apikey-operator/apikey-operator/internal/verify"
)

// Several verify replicas count the same key and write status at the same
// moment: each adds its own counts under optimistic concurrency, so the
// totals in status are the sum of what every replica saw, and the writes
// are one per replica per flush, never one per verification.
var _ = Describe("usage per key", func() {
	ctx := context.Background()

	It("sums every replica's counts in status, in a few writes", func() {
		ns := newNamespace(ctx)
		k, tok := issue(ctx, ns, "shared", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("invoices:read") })
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), k)).To(Succeed())

		var patches atomic.Int64
		direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: operator.Scheme()})
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
				wg.Go(func() { s.Flush(ctx) })
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
		Expect(patches.Load()).To(BeNumerically("<=", replicas*rounds*ConflictRetries))
		Expect(patches.Load()).To(BeNumerically("<", allowed/4))

		// Nothing new: no write at all.
		before := patches.Load()
		for _, s := range servers {
			s.Flush(ctx)
		}
		Expect(patches.Load()).To(Equal(before))
	})
})
