package verify_test

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	. "github.com/apikey-operator/apikey-operator/internal/verify"
)

// Without Redis each verify replica learns how many ready replicas share
// its Service from the Service's EndpointSlices, and enforces that share
// of every limit.
var _ = Describe("each replica's share of a rate limit", func() {
	ctx := context.Background()

	slice := func(ns, name, family string, ready ...bool) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "verify"}},
			AddressType: discoveryv1.AddressType(family),
		}
		for i, r := range ready {
			addr := "10.0.0." + string(rune('1'+i))
			if family == "IPv6" {
				addr = "fd00::" + string(rune('1'+i))
			}
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(r)}})
		}
		return s
	}

	It("counts the Service's ready endpoints as they change, and divides the limit by them", func() {
		ns := newNamespace(ctx)
		cs, err := kubernetes.NewForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
		slices := cs.DiscoveryV1().EndpointSlices(ns)
		// Another Service's endpoints in the same namespace never count.
		other := slice(ns, "other", "IPv4", true, true, true, true, true)
		other.Labels[discoveryv1.LabelServiceName] = "other"
		_, err = slices.Create(ctx, other, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		r, err := limits.NewReplicas(cs, ns+"/verify", logr.Discard())
		Expect(err).NotTo(HaveOccurred())
		rctx, cancel := context.WithCancel(ctx)
		DeferCleanup(cancel)
		go func() { _ = r.Start(rctx) }()
		count := func() int32 { return r.Count().Load() }
		Consistently(count, "300ms").Should(Equal(int32(1)), "no endpoint yet: the whole limit")

		_, err = slices.Create(ctx, slice(ns, "v4", "IPv4", true, true, false), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(count).Should(Equal(int32(2)), "two ready endpoints, one not ready")
		// Dual stack: the same pods again under IPv6 are not more replicas.
		_, err = slices.Create(ctx, slice(ns, "v6", "IPv6", true, true, false), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Consistently(count, "300ms").Should(Equal(int32(2)))
		// A second IPv4 slice adds its ready endpoints.
		_, err = slices.Create(ctx, slice(ns, "v4b", "IPv4", true), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(count).Should(Equal(int32(3)))

		// A key limited to 30 at once: with three replicas, this one
		// allows its third.
		ix := NewIndexWithLimits(limits.Local{Replicas: r.Count()})
		tok, err := token.Mint("")
		Expect(err).NotTo(HaveOccurred())
		ix.SetKey(testkit.IssuedKey(ns, "k", tok, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
			k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 30}
		}))
		v, err := NewVerifier(ix, nil, nil, 0, 1)
		Expect(err).NotTo(HaveOccurred())
		var allowed atomic.Int32
		for range 40 {
			if v.Verify(&Request{Token: tok, Namespaces: []string{ns}}).Code == Valid {
				allowed.Add(1)
			}
		}
		Expect(allowed.Load()).To(Equal(int32(10)))

		Expect(slices.Delete(ctx, "v4b", metav1.DeleteOptions{})).To(Succeed())
		Expect(slices.Delete(ctx, "v4", metav1.DeleteOptions{})).To(Succeed())
		Expect(slices.Delete(ctx, "v6", metav1.DeleteOptions{})).To(Succeed())
		Eventually(count).Should(Equal(int32(1)), "no ready replica seen: the whole limit again")
	})
})
