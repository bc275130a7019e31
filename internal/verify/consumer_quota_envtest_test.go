package verify_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The running operator (controller and verify server, one replica, no
// Redis: the quota is counted exactly in the process) with an ApiConsumer
// whose quota its keys share: over HTTP, exactly the quota's verifications
// pass across both keys, a key outside the consumer is not touched, and
// the verify server writes the consumer's status.quota in the background.
var _ = Describe("a consumer's quota", func() {
	It("is spent by all its keys together, and its status says what remains", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		const limit = 4
		c := &keysv1.ApiConsumer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
			Spec: keysv1.ApiConsumerSpec{Quota: &keysv1.QuotaSpec{Limit: limit}}}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		ofAcme := func(k *keysv1.ApiKey) { k.Spec.ConsumerRef = &keysv1.ConsumerReference{Name: "acme"} }
		_, a := issue(ctx, ns, "a", ofAcme)
		_, b := issue(ctx, ns, "b", ofAcme)
		_, other := issue(ctx, ns, "other")

		// The first Valid is the first spent: until the index has the
		// consumer, its keys are Disabled and spend nothing.
		eventuallyCode(a, "").Should(Equal("Valid"))
		allowed := 1
		for range 3 {
			for _, tok := range []string{a, b} {
				switch code := verifyCode(tok, ""); code {
				case "Valid":
					allowed++
				default:
					Expect(code).To(Equal("QuotaExceeded"))
				}
			}
		}
		Expect(allowed).To(Equal(limit), "the consumer's keys together get exactly its quota")
		Expect(verifyCode(b, "")).To(Equal("QuotaExceeded"))
		Expect(verifyCode(other, "")).To(Equal("Valid"), "a key outside the consumer")

		Eventually(func(g Gomega) {
			got := &keysv1.ApiConsumer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), got)).To(Succeed())
			q := got.Status.Quota
			g.Expect(q).NotTo(BeNil())
			g.Expect([]int64{q.Limit, q.Used, q.Remaining}).To(Equal([]int64{limit, limit, 0}))
			g.Expect(q.CountedAt).NotTo(BeNil())
		}).WithTimeout(10*time.Second).Should(Succeed(), "status.quota of the consumer, written by the verify server")
	})
})
