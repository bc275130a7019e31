package hardening_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// freshSource is a new loopback address per call, so that polling a
// revoked key is never throttled by the brute-force guard.
var sourceCounter atomic.Uint32

func freshSource() net.IP {
	n := sourceCounter.Add(1)
	return net.IPv4(127, 0, 10+byte(n>>8), byte(n))
}

var _ = Describe("A kube-apiserver outage", func() {
	It("keeps verify answering from its cache, and the operator recovers without a restart", func() {
		ctx := context.Background()
		// A namespace the suite's operator watches.
		ns := nsBrute
		_, survivor := makeKey(ctx, ns, "outage-survivor", nil)
		doomed, doomedTok := makeKey(ctx, ns, "outage-doomed", nil)
		Eventually(func() (int, error) { return verifyFrom(freshSource(), survivor) }).Should(Equal(http.StatusOK))

		By("stopping kube-apiserver for 10 s while verify is under load")
		Expect(env.StopAPIServer()).To(Succeed())
		stopped := time.Now()
		answered := 0
		for time.Since(stopped) < 10*time.Second {
			// Stale-while-unavailable: the index answers from what it saw.
			code, err := verifyFrom(freshSource(), survivor)
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
			code, err = verifyFrom(freshSource(), doomedTok)
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
			answered += 2
		}
		Expect(answered).To(BeNumerically(">", 20))

		By("starting it again")
		Expect(env.StartAPIServer()).To(Succeed())

		By("the operator's watches resuming: a delete revokes, a create issues")
		Eventually(func() error { return client.IgnoreNotFound(k8s.Delete(ctx, doomed)) }).
			WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Eventually(func() (int, error) { return verifyFrom(freshSource(), doomedTok) }).
			WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(http.StatusUnauthorized))
		_, fresh := makeKey(ctx, ns, "outage-after", nil)
		Eventually(func() (int, error) { return verifyFrom(freshSource(), fresh) }).
			WithTimeout(60 * time.Second).Should(Equal(http.StatusOK))

		By("the REST dialects answering again, authorised through the restarted kube-apiserver")
		Eventually(func() int { return admin.do("GET", "/api/"+ns+"/admin/apiKeys", nil).status }).
			WithTimeout(60 * time.Second).Should(Equal(http.StatusOK))
		Expect(admin.do("GET", "/api/"+ns+"/admin/apiKeys/outage-after", nil).status).To(Equal(http.StatusOK))

		By("no key lost")
		code, err := verifyFrom(freshSource(), survivor)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		key := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "outage-survivor"}, key)).To(Succeed())
		Expect(key.Status.Hash).To(Equal(hashOf(survivor)))
		err = k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "outage-doomed"}, &keysv1.ApiKey{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})
})
