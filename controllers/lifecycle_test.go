package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }

func TestRequeueAfter(t *testing.T) {
	hour := &metav1.Duration{Duration: time.Hour}
	cases := []struct {
		name   string
		key    keysv1.ApiKey
		expiry time.Time
		now    time.Time
		want   time.Duration
	}{
		{"expiry only", keysv1.ApiKey{}, t0.Add(10 * time.Minute), t0, 10 * time.Minute},
		{"expired: nothing left", keysv1.ApiKey{}, t0, t0.Add(time.Second), 0},
		{"rotation before expiry", keysv1.ApiKey{
			Spec:   keysv1.ApiKeySpec{Rotation: &keysv1.RotationSpec{Period: hour}},
			Status: keysv1.ApiKeyStatus{IssuedAt: at(0)},
		}, t0.Add(24 * time.Hour), t0.Add(20 * time.Minute), 40 * time.Minute},
		{"rotation counts from the last rotation", keysv1.ApiKey{
			Spec:   keysv1.ApiKeySpec{Rotation: &keysv1.RotationSpec{Period: hour}},
			Status: keysv1.ApiKeyStatus{IssuedAt: at(0), LastRotatedAt: at(30 * time.Minute)},
		}, t0.Add(24 * time.Hour), t0.Add(40 * time.Minute), 50 * time.Minute},
		{"no rotation once expired", keysv1.ApiKey{
			Spec:   keysv1.ApiKeySpec{Rotation: &keysv1.RotationSpec{Period: hour}},
			Status: keysv1.ApiKeyStatus{IssuedAt: at(0)},
		}, t0.Add(time.Minute), t0.Add(2 * time.Minute), 0},
		{"end of a grace period first", keysv1.ApiKey{
			Status: keysv1.ApiKeyStatus{PreviousHashes: []keysv1.PreviousHash{{Hash: "h", ValidUntil: *at(5 * time.Second)}}},
		}, t0.Add(time.Hour), t0, 5 * time.Second},
	}
	for _, c := range cases {
		if got := requeueAfter(&c.key, c.expiry, c.now); got != c.want {
			t.Errorf("%s: requeueAfter = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestRotationDue(t *testing.T) {
	key := &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{keysv1.RotateAnnotation: "2"}},
		Status:     keysv1.ApiKeyStatus{Hash: "h", IssuedAt: at(0), ObservedRotateAnnotation: "1"},
	}
	if !rotationDue(key, t0) {
		t.Error("a changed annotation must make a rotation due")
	}
	key.Status.ObservedRotateAnnotation = "2"
	if rotationDue(key, t0.Add(1000*time.Hour)) {
		t.Error("no period, annotation seen: nothing is due")
	}
	key.Spec.Rotation = &keysv1.RotationSpec{Period: &metav1.Duration{Duration: time.Hour}}
	if rotationDue(key, t0.Add(time.Hour-time.Nanosecond)) || !rotationDue(key, t0.Add(time.Hour)) {
		t.Error("a period rotation falls due exactly at issuedAt + period")
	}
	key.Status.Hash = ""
	if rotationDue(key, t0.Add(2*time.Hour)) {
		t.Error("a key with no token has nothing to rotate")
	}
}

func TestRetireAndPrune(t *testing.T) {
	s := &keysv1.ApiKeyStatus{Hash: "h0"}
	for i := range maxPreviousHashes + 3 {
		retire(s, time.Minute, t0.Add(time.Duration(i)*time.Second))
		s.Hash = "h" + string(rune('a'+i))
	}
	if len(s.PreviousHashes) != maxPreviousHashes {
		t.Fatalf("previousHashes grew to %d", len(s.PreviousHashes))
	}
	prunePreviousHashes(s, t0.Add(time.Minute+5*time.Second))
	for _, p := range s.PreviousHashes {
		if !p.ValidUntil.After(t0.Add(time.Minute + 5*time.Second)) {
			t.Fatalf("kept a hash past its grace period: %v", p.ValidUntil)
		}
	}
	if len(s.PreviousHashes) != maxPreviousHashes-3 {
		t.Fatalf("pruned to %d, want the %d still in their grace period", len(s.PreviousHashes), maxPreviousHashes-3)
	}
	retire(s, 0, t0)
	if len(s.PreviousHashes) != maxPreviousHashes-3 {
		t.Fatalf("a zero grace period must not keep the old hash: %d", len(s.PreviousHashes))
	}
}

// The two crash windows: the Secret is written, then the operator stops
// before status is. On restart the reconcile must take the token that is
// in the Secret, never mint another.

func newFakeReconciler(t *testing.T, now time.Time, objs ...client.Object) (*ApiKeyReconciler, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	if err := keysv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&keysv1.ApiKey{}).Build()
	// The hash index as the informer would fill it from these objects;
	// it does not follow the fake client's writes.
	hashes := hashindex.New()
	for _, o := range objs {
		hashes.Handler().OnAdd(o, true)
	}
	hashes.MarkSynced()
	return &ApiKeyReconciler{Client: c, Clock: clocktesting.NewFakePassiveClock(now), DefaultLifetime: 24 * time.Hour, TokenPrefix: "ak", Hashes: hashes}, c
}

func ownedSecret(key *keysv1.ApiKey, value string) *corev1.Secret {
	return keysecret.New(key, value)
}

func reconcileOnce(t *testing.T, r *ApiKeyReconciler, c client.Client, key *keysv1.ApiKey) (*keysv1.ApiKey, string) {
	t.Helper()
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}); err != nil {
		t.Fatal(err)
	}
	got := &keysv1.ApiKey{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, secret); err != nil {
		t.Fatal(err)
	}
	return got, string(secret.Data[keysv1.SecretKeyField])
}

func TestRestartAfterSecretCreatedBeforeStatus(t *testing.T) {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "k", UID: "u1", CreationTimestamp: metav1.Time{Time: t0}}}
	minted, _ := token.Mint("ak")
	r, c := newFakeReconciler(t, t0.Add(time.Minute), key, ownedSecret(key, minted))

	got, inSecret := reconcileOnce(t, r, c, key)
	if inSecret != minted {
		t.Fatal("the restart minted a new token over the one already issued")
	}
	if got.Status.Hash != token.Hash(minted) || !meta.IsStatusConditionTrue(got.Status.Conditions, keysv1.ConditionReady) {
		t.Fatalf("status does not follow the Secret: %+v", got.Status)
	}
}

func TestRestartInTheMiddleOfARotation(t *testing.T) {
	oldToken, _ := token.Mint("ak")
	newToken, _ := token.Mint("ak")
	key := &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "k", UID: "u1", CreationTimestamp: metav1.Time{Time: t0},
			Annotations: map[string]string{keysv1.RotateAnnotation: "now"}},
		Spec: keysv1.ApiKeySpec{Rotation: &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}},
		Status: keysv1.ApiKeyStatus{Hash: token.Hash(oldToken), KeyPrefix: token.DisplayPrefix(oldToken), IssuedAt: at(0),
			ObservedRotateAnnotation: "before"},
	}
	// The rotation wrote the new token to the Secret and stopped.
	now := t0.Add(10 * time.Minute)
	r, c := newFakeReconciler(t, now, key, ownedSecret(key, newToken))

	got, inSecret := reconcileOnce(t, r, c, key)
	if inSecret != newToken {
		t.Fatal("the restart minted a third token instead of finishing the rotation")
	}
	want := []keysv1.PreviousHash{{Hash: token.Hash(oldToken), ValidUntil: metav1.NewTime(now.Add(time.Hour))}}
	if diff := cmp.Diff(want, got.Status.PreviousHashes); diff != "" {
		t.Fatalf("the old token must keep its grace period (-want +got):\n%s", diff)
	}
	if got.Status.Hash != token.Hash(newToken) || got.Status.ObservedRotateAnnotation != "now" || got.Status.LastRotatedAt == nil {
		t.Fatalf("rotation not recorded: %+v", got.Status)
	}

	// And the next reconcile changes nothing.
	again, inSecret := reconcileOnce(t, r, c, got)
	if inSecret != newToken || again.ResourceVersion != got.ResourceVersion {
		t.Fatal("a converged key was written again")
	}
}

// SetupWithManager refuses a reconciler built without its dependencies
// instead of running one that quietly skips the metadata read or events.
func TestSetupRefusesMissingDependencies(t *testing.T) {
	err := (&ApiKeyReconciler{MaxConcurrentReconciles: 1}).SetupWithManager(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "APIReader, Client, Hashes, Recorder must be set") {
		t.Fatalf("SetupWithManager without dependencies: %v", err)
	}
}
