package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// mintHash mints a token the way a workstation would (apikey-operator
// hash --mint) and returns its hash; the token is remembered for the
// suite's leak check, as if the operator could have seen it.
func mintHash() string {
	tok, err := token.Mint("ak")
	Expect(err).NotTo(HaveOccurred())
	rememberToken(tok)
	return token.Hash(tok)
}

func hashOnly(hash string, grace time.Duration) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) {
		k.Spec.TokenHash = keysv1.TokenHash(hash)
		if grace > 0 {
			k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: grace}}
		}
	}
}

var _ = Describe("A hash-only key (spec.tokenHash)", func() {
	ctx := context.Background()

	It("is Ready with the declared hash and has no Secret", func() {
		ns := newNamespace(ctx)
		hash := mintHash()
		newKey(ctx, ns, "declared", hashOnly(hash, 0))
		key := waitReady(ctx, ns, "declared")
		Expect(key.Status.Hash).To(Equal(hash))
		Expect(key.Status.SecretName).To(BeEmpty())
		Expect(key.Status.IssuedAt).NotTo(BeNil())
		Expect(ready(key).Message).To(ContainSubstring("no Secret and no plaintext"))
		secrets := &corev1.SecretList{}
		Expect(k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
		Expect(secrets.Items).To(BeEmpty(), "a hash-only key has no Secret")
		waitEvent(ctx, ns, "declared", "Issued")
	})

	It("rotates to a newly declared hash and keeps the previous one exactly for the grace period", func() {
		ns := newNamespace(ctx)
		old, next := mintHash(), mintHash()
		newKey(ctx, ns, "roll", hashOnly(old, 3*time.Second))
		waitReady(ctx, ns, "roll")

		key := getKey(ctx, ns, "roll")
		key.Spec.TokenHash = keysv1.TokenHash(next)
		Expect(k8s.Update(ctx, key)).To(Succeed())
		Eventually(func() string { return getKey(ctx, ns, "roll").Status.Hash }).
			WithTimeout(10 * time.Second).Should(Equal(next))
		key = getKey(ctx, ns, "roll")
		Expect(key.Status.LastRotatedAt).NotTo(BeNil())
		Expect(key.Status.PreviousHashes).To(HaveLen(1))
		prev := key.Status.PreviousHashes[0]
		Expect(prev.Hash).To(Equal(old))
		Expect(prev.ValidUntil.Time).To(Equal(key.Status.LastRotatedAt.Add(3 * time.Second)))
		waitEvent(ctx, ns, "roll", "Rotated")

		Consistently(func() int { return len(getKey(ctx, ns, "roll").Status.PreviousHashes) }).
			WithTimeout(time.Until(prev.ValidUntil.Time) - 300*time.Millisecond).Should(Equal(1))
		Eventually(func() int { return len(getKey(ctx, ns, "roll").Status.PreviousHashes) }).
			WithTimeout(3 * time.Second).WithPolling(50 * time.Millisecond).Should(BeZero())
		Expect(time.Now()).To(BeTemporally(">=", prev.ValidUntil.Time))
		Expect(waitReady(ctx, ns, "roll").Status.Hash).To(Equal(next))
	})

	It("is refused with TokenInUse when another key, in another namespace, already verifies with that hash", func() {
		nsA, nsB := newNamespace(ctx), newNamespace(ctx)
		hash := mintHash()
		newKey(ctx, nsA, "first", hashOnly(hash, 0))
		waitReady(ctx, nsA, "first")
		// The webhook refuses this at admission; the controller suite runs
		// without it, so this is the controller's own check, for two keys
		// written faster than the webhook's cache.
		newKey(ctx, nsB, "second", hashOnly(hash, 0))
		key := waitReason(ctx, nsB, "second", keysv1.ReasonTokenInUse)
		Expect(key.Status.Hash).To(BeEmpty())
		Expect(ready(key).Message).To(ContainSubstring("a token belongs to one key only"))
		Expect(ready(key).Message).NotTo(ContainSubstring(nsA), "the refusal does not say where the hash is used")
		waitEvent(ctx, nsB, "second", keysv1.ReasonTokenInUse)
		Expect(waitReady(ctx, nsA, "first").Status.Hash).To(Equal(hash), "the first key keeps its hash")

		// A hash of its own is the way out.
		own := mintHash()
		key = getKey(ctx, nsB, "second")
		key.Spec.TokenHash = keysv1.TokenHash(own)
		Expect(k8s.Update(ctx, key)).To(Succeed())
		Eventually(func() string { return getKey(ctx, nsB, "second").Status.Hash }).
			WithTimeout(10 * time.Second).Should(Equal(own))
		Expect(waitReady(ctx, nsB, "second").Status.PreviousHashes).To(BeEmpty())
	})
})
