//go:build e2e

package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// verifyFromPod checks through the verify Service that token verifies
// (expect 200) or is refused (0) in namespace.
func verifyFromPod(ctx SpecContext, name, namespace, token string, expect int) {
	GinkgoHelper()
	results := runClient(ctx, nsA, name, "", Plan{Requests: []Request{{Name: name, Method: "GET", URL: verifyURL(ctx, namespace), Headers: bearer(token), Expect: expect}}})
	Expect(results).To(HaveLen(1), summary(results))
}

func uninstall(ctx SpecContext) {
	GinkgoHelper()
	helm(ctx, "uninstall", release, "-n", releaseNS, "--wait", "--timeout", "3m")
	Eventually(func() int { return len(releasePods(ctx, "controller")) + len(releasePods(ctx, "apiserver")) }).
		WithContext(ctx).WithTimeout(2 * time.Minute).Should(BeZero())
}

func lifecycleScenarios() {
	Describe("the release's life", func() {
		It("keeps the CRDs and keys on helm uninstall, and a new install serves them again", func(ctx SpecContext) {
			uninstall(ctx)
			for _, crd := range []string{"apikeys.keys.apikey-operator.io", "apikeyroles.keys.apikey-operator.io"} {
				out, err := kubectl(ctx, "", "get", "crd", crd)
				Expect(err).NotTo(HaveOccurred(), "CRD %s removed by uninstall: %s", crd, out)
			}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "key-a"}, &keysv1.ApiKey{})).To(Succeed())
			helmInstall(ctx)
			verifyFromPod(ctx, "after-reinstall", nsA, tokenA, 200)
		})

		It("comes up with certificates.provider=helm", func(ctx SpecContext) {
			uninstall(ctx)
			helmInstall(ctx, "certificates.provider=helm")
			createKey(ctx, nsA, "helm-certs", "x:read") // through the webhooks
			readyToken(ctx, nsA, "helm-certs", 2*time.Minute)
			verifyFromPod(ctx, "helm-certs", nsA, tokenA, 200)
		})

		It("with watchNamespaces serves those namespaces only", func(ctx SpecContext) {
			uninstall(ctx)
			ensureNamespace(ctx, "e2e-w")
			helmInstall(ctx, "watchNamespaces={e2e-w}")
			createKey(ctx, "e2e-w", "watched", "x:read")
			watched := readyToken(ctx, "e2e-w", "watched", 2*time.Minute)
			verifyFromPod(ctx, "watched", "e2e-w", watched, 200)
			verifyFromPod(ctx, "not-watched", nsA, tokenA, 0)
			// Outside: the webhooks do not admit, the controller does not mint.
			createKey(ctx, nsB, "ignored", "x:read")
			Consistently(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: nsB, Name: "ignored"}, &corev1.Secret{}))
			}).WithContext(ctx).WithTimeout(15*time.Second).Should(BeTrue(), "a key outside watchNamespaces got a Secret")
		})
	})
}
