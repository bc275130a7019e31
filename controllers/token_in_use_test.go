package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// One token, one key (issue 11): a tenant who copies another tenant's
// token into a Secret of its own (labelled as the operator's, as the REST
// dialects write caller-chosen secrets) never gets a key that verifies
// with it, not even once the owner has deleted its key.
var _ = Describe("A token already in use by another key", func() {
	It("is refused with Ready=False TokenInUse, and stays refused after the owner's key is gone", func() {
		ctx := context.Background()
		nsA, nsB := newNamespace(ctx), newNamespace(ctx)
		owner := newKey(ctx, nsA, "owner")
		waitReady(ctx, nsA, "owner")
		stolen := secretToken(ctx, nsA, "owner")

		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "copy", Labels: map[string]string{
				keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: "copy"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{keysv1.SecretKeyField: []byte(stolen)},
		})).To(Succeed())
		newKey(ctx, nsB, "copy")
		key := waitReason(ctx, nsB, "copy", keysv1.ReasonTokenInUse)
		Expect(key.Status.Hash).To(BeEmpty())
		Expect(ready(key).Message).NotTo(ContainSubstring(nsA), "the refusal does not say where the token is used")
		waitEvent(ctx, nsB, "copy", keysv1.ReasonTokenInUse)

		Expect(k8s.Delete(ctx, owner)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(owner), &keysv1.ApiKey{}) }).Should(Satisfy(func(err error) bool { return err != nil }))
		// Wake the copy up: it must not take the token now that it is free.
		poke(ctx, nsB, "copy")
		Consistently(func() string {
			k := getKey(ctx, nsB, "copy")
			Expect(k.Status.Hash).NotTo(Equal(token.Hash(stolen)))
			return ready(k).Reason
		}).WithTimeout(2 * time.Second).Should(Equal(keysv1.ReasonTokenInUse))

		// Deleting the Secret is the way out: a fresh token is minted.
		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "copy"}})).To(Succeed())
		poke(ctx, nsB, "copy")
		key = waitReady(ctx, nsB, "copy")
		fresh := secretToken(ctx, nsB, "copy")
		rememberToken(fresh)
		Expect(fresh).NotTo(Equal(stolen))
		Expect(key.Status.Hash).To(Equal(token.Hash(fresh)))
	})
})

// poke changes an annotation, which wakes the controller for the key.
func poke(ctx context.Context, ns, name string) {
	patch := []byte(`{"metadata":{"annotations":{"test/poke":"` + time.Now().Format(time.RFC3339Nano) + `"}}}`)
	ExpectWithOffset(1, k8s.Patch(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}
