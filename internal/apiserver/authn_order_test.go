package apiserver_test

import (
	"context"
	"crypto/rand"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func randomSuffix() string { return rand.Text() }

// Authentication order (issue 11): a Kubernetes bearer token that is not
// a JWT reaches TokenReview before the brute-force guard charges
// anything, so a NAT neighbour's failed API-key guesses never lock a
// Kubernetes user out; "bearer" is matched in any case.
var _ = Describe("authentication order on the REST dialects", func() {
	ctx := context.Background()

	It("lets non-JWT Kubernetes tokens and lower-case bearer through from an address the guard throttles", func() {
		ns := newNamespace(ctx)
		grantKeys(ctx, ns, "sha-user", "list")
		grantKeys(ctx, ns, "static-user", "list")
		_, keyTok := makeKey(ctx, ns, "lower", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		list := "/api/" + ns + "/admin/apiKeys"
		src := freshSource()

		By("a neighbour behind the same address guesses API keys until it is throttled")
		Eventually(func() int {
			return fromSource(src, apiKey(unknownToken())).send(getReq(list)).status
		}).WithTimeout(20 * time.Second).WithPolling(time.Millisecond).Should(Equal(429))
		Expect(fromSource(src, apiKey(unknownToken())).send(getReq(list)).status).To(Equal(429))

		By("Kubernetes users behind it are not")
		for _, tok := range []string{openShiftToken, staticToken} {
			r := fromSource(src, caller{headers: map[string]string{"Authorization": "Bearer " + tok}}).send(getReq(list))
			Expect(r.status).To(Equal(200), "%s...: %s", tok[:8], r.body)
			r = fromSource(src, caller{headers: map[string]string{"Authorization": "bearer " + tok}}).send(getReq(list))
			Expect(r.status).To(Equal(200), "lower-case bearer, %s...: %s", tok[:8], r.body)
		}

		By("an API key sent with a lower-case scheme is an API key")
		r := fromSource(freshSource(), caller{headers: map[string]string{"Authorization": "bearer " + keyTok}}).send(getReq(list))
		Expect(r.status).To(Equal(200), r.body)
		r = fromSource(freshSource(), caller{headers: map[string]string{"Authorization": "BEARER " + keyTok}}).send(getReq(list))
		Expect(r.status).To(Equal(200), r.body)

		By("a bearer token neither the index nor TokenReview knows is still charged")
		other := freshSource()
		Eventually(func() int {
			return fromSource(other, caller{headers: map[string]string{"Authorization": "Bearer not-a-key-nor-a-kubernetes-token-" + randomSuffix()}}).send(getReq(list)).status
		}).WithTimeout(20 * time.Second).WithPolling(time.Millisecond).Should(Equal(429))
	})
})
