package controllers_test

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

var _ = Describe("Issuing a key", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("mints a token into an owned, labelled Secret and keeps only its hash in status", func() {
		newKey(ctx, ns, "billing")
		key := waitReady(ctx, ns, "billing")

		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "billing"}, secret)).To(Succeed())
		value := string(secret.Data[keysv1.SecretKeyField])
		rememberToken(value)
		Expect(token.Check(value)).To(Succeed())
		Expect(secret.Labels).To(HaveKeyWithValue(keysv1.ManagedByLabel, keysv1.ManagedByValue))
		Expect(secret.Labels).To(HaveKeyWithValue(keysv1.ApiKeyLabel, "billing"))
		owner := metav1.GetControllerOf(secret)
		Expect(owner).NotTo(BeNil())
		Expect(owner.UID).To(Equal(key.UID))

		Expect(key.Status.Hash).To(Equal(token.Hash(value)))
		Expect(key.Status.KeyPrefix).To(Equal(value[:9]))
		Expect(key.Status.SecretName).To(Equal("billing"))
		Expect(key.Status.IssuedAt).NotTo(BeNil())
		Expect(key.Status.ExpiresAt.Time).To(Equal(key.CreationTimestamp.Add(365 * 24 * time.Hour)))
		Expect(key.Status.ObservedGeneration).To(Equal(key.Generation))
		Expect(ready(key).ObservedGeneration).To(Equal(key.Generation))
		waitEvent(ctx, ns, "billing", "Issued")

		raw, err := json.Marshal(key)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(value))
	})

	It("makes no API write once converged, and a resync never mints a new token", func() {
		newKey(ctx, ns, "quiet", func(k *keysv1.ApiKey) {
			k.Spec.RoleRef = nil
			k.Spec.Permissions = []keysv1.Permission{"invoices:read"}
		})
		before := waitReady(ctx, ns, "quiet")
		// Let the events and the last status write of the first pass settle.
		Eventually(func() int64 {
			n := writes.Load()
			time.Sleep(300 * time.Millisecond)
			return writes.Load() - n
		}).WithTimeout(10 * time.Second).Should(BeZero())

		n := writes.Load()
		req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "quiet"}}
		for range 3 {
			_, err := reconciler.Reconcile(ctx, req)
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(writes.Load()-n).To(BeZero(), "a converged key must cost no API write")
		after := getKey(ctx, ns, "quiet")
		Expect(after.Status.Hash).To(Equal(before.Status.Hash))
		Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
	})

	It("writes the token into spec.secretName", func() {
		newKey(ctx, ns, "named", func(k *keysv1.ApiKey) { k.Spec.SecretName = "named-credentials" })
		key := waitReady(ctx, ns, "named")
		Expect(key.Status.SecretName).To(Equal("named-credentials"))
		Expect(token.Hash(secretToken(ctx, ns, "named-credentials"))).To(Equal(key.Status.Hash))
	})

	It("mints a new token when the Secret is deleted", func() {
		newKey(ctx, ns, "recreate")
		old := waitReady(ctx, ns, "recreate").Status.Hash
		secretToken(ctx, ns, "recreate")
		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "recreate"}})).To(Succeed())

		Eventually(func() string { return getKey(ctx, ns, "recreate").Status.Hash }).
			WithTimeout(10 * time.Second).ShouldNot(Equal(old))
		key := waitReady(ctx, ns, "recreate")
		Expect(key.Status.Hash).To(Equal(token.Hash(secretToken(ctx, ns, "recreate"))))
		waitEvent(ctx, ns, "recreate", "SecretRecreated")
	})

	It("adopts a token that someone replaced with another well-formed value", func() {
		newKey(ctx, ns, "adopt")
		waitReady(ctx, ns, "adopt")
		custom := "custom-supplied-secret-0123456789abcdef"
		rememberToken(custom)
		setSecretToken(ctx, ns, "adopt", custom)

		Eventually(func() string { return getKey(ctx, ns, "adopt").Status.Hash }).
			WithTimeout(10 * time.Second).Should(Equal(token.Hash(custom)))
		key := waitReady(ctx, ns, "adopt")
		Expect(key.Status.KeyPrefix).To(Equal("custom"))
		waitEvent(ctx, ns, "adopt", "SecretAdopted")
	})

	It("refuses a Secret whose token is unusable, and recovers when it is deleted", func() {
		newKey(ctx, ns, "broken")
		waitReady(ctx, ns, "broken")
		setSecretToken(ctx, ns, "broken", "too-short")

		key := waitReason(ctx, ns, "broken", keysv1.ReasonSecretInvalid)
		Expect(key.Status.Hash).To(BeEmpty(), "an unusable Secret must not leave the old token verifying")
		Expect(ready(key).Message).To(ContainSubstring("delete the Secret to mint a new key"))
		Expect(ready(key).Message).NotTo(ContainSubstring("too-short"))

		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}})).To(Succeed())
		key = waitReady(ctx, ns, "broken")
		Expect(key.Status.Hash).To(Equal(token.Hash(secretToken(ctx, ns, "broken"))))
	})

	It("never takes over a Secret it does not own", func() {
		foreign := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "database"},
			Data:       map[string][]byte{"password": []byte("hunter2")},
		}
		Expect(k8s.Create(ctx, foreign)).To(Succeed())
		newKey(ctx, ns, "hijack", func(k *keysv1.ApiKey) { k.Spec.SecretName = "database" })

		key := waitReason(ctx, ns, "hijack", keysv1.ReasonSecretTaken)
		Expect(ready(key).Message).To(ContainSubstring(`Secret "database" exists and is not managed by apikey-operator`))
		Expect(key.Status.Hash).To(BeEmpty())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(foreign), foreign)).To(Succeed())
		Expect(foreign.Labels).To(BeEmpty())
		Expect(foreign.OwnerReferences).To(BeEmpty())
		Expect(foreign.Data).To(Equal(map[string][]byte{"password": []byte("hunter2")}))
	})
})

var _ = Describe("A key's lifecycle", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("flips Ready to Expired at expiresAt", func() {
		// Far enough ahead that the key is surely Ready first, even on a
		// loaded machine; near enough to keep the test short.
		expiry := time.Now().Truncate(time.Second).Add(8 * time.Second)
		newKey(ctx, ns, "short-lived", func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: expiry} })
		waitReady(ctx, ns, "short-lived")
		Consistently(func() string { return ready(getKey(ctx, ns, "short-lived")).Reason }).
			WithTimeout(time.Until(expiry) - 300*time.Millisecond).Should(Equal(keysv1.ReasonIssued))

		key := waitReason(ctx, ns, "short-lived", keysv1.ReasonExpired)
		Expect(time.Now()).To(BeTemporally(">=", expiry))
		flipped := ready(key).LastTransitionTime.Time
		Expect(flipped).To(BeTemporally(">=", expiry))
		Expect(flipped).To(BeTemporally("<", expiry.Add(2*time.Second)), "RequeueAfter must wake the key at its expiry, not a resync")
		Expect(ready(key).Message).To(ContainSubstring(expiry.UTC().Format(time.RFC3339)))
		waitEvent(ctx, ns, "short-lived", "Expired")
	})

	It("is not Ready while disabled and comes back with the same token", func() {
		newKey(ctx, ns, "toggle")
		hash := waitReady(ctx, ns, "toggle").Status.Hash

		key := getKey(ctx, ns, "toggle")
		key.Spec.Enabled = ptr(false)
		Expect(k8s.Update(ctx, key)).To(Succeed())
		Expect(waitReason(ctx, ns, "toggle", keysv1.ReasonDisabled).Status.Hash).To(Equal(hash))

		key = getKey(ctx, ns, "toggle")
		key.Spec.Enabled = ptr(true)
		Expect(k8s.Update(ctx, key)).To(Succeed())
		Expect(waitReady(ctx, ns, "toggle").Status.Hash).To(Equal(hash))
	})

	It("rotates on the annotation and keeps the old hash valid exactly for the grace period", func() {
		newKey(ctx, ns, "rotate", func(k *keysv1.ApiKey) {
			k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: 3 * time.Second}}
		})
		old := waitReady(ctx, ns, "rotate").Status.Hash
		oldToken := secretToken(ctx, ns, "rotate")

		key := getKey(ctx, ns, "rotate")
		key.Annotations = map[string]string{keysv1.RotateAnnotation: "1"}
		Expect(k8s.Update(ctx, key)).To(Succeed())

		Eventually(func() string { return getKey(ctx, ns, "rotate").Status.Hash }).
			WithTimeout(10 * time.Second).ShouldNot(Equal(old))
		key = getKey(ctx, ns, "rotate")
		newToken := secretToken(ctx, ns, "rotate")
		Expect(newToken).NotTo(Equal(oldToken))
		Expect(key.Status.Hash).To(Equal(token.Hash(newToken)))
		Expect(key.Status.ObservedRotateAnnotation).To(Equal("1"))
		Expect(key.Status.LastRotatedAt).NotTo(BeNil())
		Expect(key.Status.PreviousHashes).To(HaveLen(1))
		prev := key.Status.PreviousHashes[0]
		Expect(prev.Hash).To(Equal(old))
		Expect(prev.ValidUntil.Time).To(Equal(key.Status.LastRotatedAt.Add(3 * time.Second)))
		waitEvent(ctx, ns, "rotate", "Rotated")

		// Still there until the grace period ends, gone right after.
		Consistently(func() int { return len(getKey(ctx, ns, "rotate").Status.PreviousHashes) }).
			WithTimeout(time.Until(prev.ValidUntil.Time) - 300*time.Millisecond).Should(Equal(1))
		Eventually(func() int { return len(getKey(ctx, ns, "rotate").Status.PreviousHashes) }).
			WithTimeout(3 * time.Second).WithPolling(50 * time.Millisecond).Should(BeZero())
		Expect(time.Now()).To(BeTemporally(">=", prev.ValidUntil.Time))
	})

	It("rotates every rotation.period", func() {
		newKey(ctx, ns, "periodic", func(k *keysv1.ApiKey) {
			k.Spec.Rotation = &keysv1.RotationSpec{
				Period:      &metav1.Duration{Duration: 2 * time.Second},
				GracePeriod: &metav1.Duration{Duration: time.Second},
			}
		})
		seen := map[string]bool{waitReady(ctx, ns, "periodic").Status.Hash: true}
		Eventually(func() int {
			seen[getKey(ctx, ns, "periodic").Status.Hash] = true
			return len(seen)
		}).WithTimeout(15 * time.Second).WithPolling(100 * time.Millisecond).Should(BeNumerically(">=", 3))
		key := waitReady(ctx, ns, "periodic")
		Expect(key.Status.LastRotatedAt).NotTo(BeNil())
		Expect(key.Status.Hash).To(Equal(token.Hash(secretToken(ctx, ns, "periodic"))))
	})

	It("waits for a missing role and recovers when it appears", func() {
		newKey(ctx, ns, "with-role", func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "readers"} })
		key := waitReason(ctx, ns, "with-role", keysv1.ReasonRoleNotFound)
		Expect(ready(key).Message).To(ContainSubstring(`ApiKeyRole "readers" does not exist`))
		Expect(key.Status.Hash).NotTo(BeEmpty(), "the Secret is minted while the role is missing")

		role := &keysv1.ApiKeyRole{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "readers"},
			Spec:       keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"}},
		}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		waitReady(ctx, ns, "with-role")
	})
})

func setSecretToken(ctx context.Context, ns, name, value string) {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	s.Data[keysv1.SecretKeyField] = []byte(value)
	ExpectWithOffset(1, k8s.Update(ctx, s)).To(Succeed())
}

// The leak check runs last: no token the tests saw may appear in the
// controller's log at its highest verbosity, in any ApiKey (status,
// annotations, managedFields) or in any event.
func leakCheck(ctx context.Context) {
	seen := tokens.All()
	Expect(seen).NotTo(BeEmpty())
	keys := &keysv1.ApiKeyList{}
	Expect(k8s.List(ctx, keys)).To(Succeed())
	rawKeys, err := json.Marshal(keys)
	Expect(err).NotTo(HaveOccurred())
	events, err := json.Marshal(listAllEvents(ctx))
	Expect(err).NotTo(HaveOccurred())
	log := logs.String()
	Expect(log).To(ContainSubstring("Reconcile"), "the controller's debug log must have been captured")
	Expect(testkit.Leaks(seen, map[string]string{
		"the controller log": log, "an ApiKey": string(rawKeys), "an event": string(events),
	})).To(BeEmpty())
}
