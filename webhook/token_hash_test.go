package webhook_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func withHash(h string) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.TokenHash = keysv1.TokenHash(h) }
}

// hashOf makes a distinct well-formed hash per test; no token is behind
// it, the webhook never sees one.
func hashOf(seed string) string {
	return "sha256:" + fmt.Sprintf("%064x", []byte(seed))[:64]
}

var _ = Describe("Hash-only ApiKeys", func() {
	ctx := context.Background()

	It("refuse a hash another key already declares, in any namespace, without saying which key", func() {
		nsA, nsB := newNamespace(ctx, nil), newNamespace(ctx, nil)
		h := hashOf("shared-" + nsA)
		first := apiKey(nsA, "first", withHash(h))
		Expect(k8s.Create(ctx, first)).To(Succeed())
		cached(ctx, first)

		msg := fmt.Sprintf(`spec.tokenHash: Invalid value: %q: is the hash of a token another ApiKey already declares or verifies with; a token belongs to one key only, across the cluster: make a new token and declare its hash`, h)
		err := k8s.Create(ctx, apiKey(nsB, "second", withHash(h)))
		Expect(err).To(MatchError(invalid("second", msg)))
		Expect(err.Error()).NotTo(ContainSubstring(nsA))
		Expect(err.Error()).NotTo(ContainSubstring("first"))
		Expect(k8s.Create(ctx, apiKey(nsA, "same-ns", withHash(h)))).To(MatchError(ContainSubstring("a token belongs to one key only")))

		// On update: moving to a hash in use is refused too; re-saving
		// the key's own hash is not.
		second := apiKey(nsB, "second", withHash(hashOf("own-"+nsB)))
		Expect(k8s.Create(ctx, second)).To(Succeed())
		second.Spec.TokenHash = keysv1.TokenHash(h)
		Expect(k8s.Update(ctx, second)).To(MatchError(invalid("second", msg)))
		first.Spec.Description = "still mine"
		Expect(k8s.Update(ctx, first)).To(Succeed())
	})

	It("refuse the rotate annotation: the operator cannot mint their token", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "declared", withHash(hashOf("rotate-"+ns)))
		k.Annotations = map[string]string{keysv1.RotateAnnotation: "1"}
		Expect(k8s.Create(ctx, k)).To(MatchError(ContainSubstring(
			`metadata.annotations[keys.apikey-operator.io/rotate]: Forbidden: a key with spec.tokenHash has no token the operator could replace; rotate it by declaring the hash of a new token in spec.tokenHash`)))
		k.Annotations = nil
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Annotations = map[string]string{keysv1.RotateAnnotation: "2"}
		Expect(k8s.Update(ctx, k)).To(MatchError(ContainSubstring("Forbidden: a key with spec.tokenHash has no token the operator could replace")))
	})

	It("need no free Secret name: a hash-only key makes no Secret", func() {
		ns := newNamespace(ctx, nil)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}})).To(Succeed())
		Expect(k8s.Create(ctx, apiKey(ns, "taken"))).To(MatchError(ContainSubstring(`Secret "taken" already exists`)))
		Expect(k8s.Create(ctx, apiKey(ns, "taken", withHash(hashOf("s-"+ns))))).To(Succeed())
	})
})
