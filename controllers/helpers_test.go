package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// tokens collects every plaintext token the tests read from a Secret, for
// the leak check at the end of the suite.
var tokens testkit.Tokens

func rememberToken(t string) { tokens.Remember(t) }

func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "keys-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newKey(ctx context.Context, ns, name string, mutate ...func(*keysv1.ApiKey)) *keysv1.ApiKey {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(key)
	}
	Expect(k8s.Create(ctx, key)).To(Succeed())
	return key
}

func getKey(ctx context.Context, ns, name string) *keysv1.ApiKey {
	key := &keysv1.ApiKey{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key)).To(Succeed())
	return key
}

func ready(key *keysv1.ApiKey) metav1.Condition {
	c := meta.FindStatusCondition(key.Status.Conditions, keysv1.ConditionReady)
	if c == nil {
		return metav1.Condition{}
	}
	return *c
}

// waitReason waits until the key's Ready condition has the reason and
// returns the key as it was then.
func waitReason(ctx context.Context, ns, name, reason string) *keysv1.ApiKey {
	var key *keysv1.ApiKey
	EventuallyWithOffset(1, func(g Gomega) {
		key = &keysv1.ApiKey{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key)).To(Succeed())
		g.Expect(ready(key).Reason).To(Equal(reason), ready(key).Message)
	}).WithTimeout(20 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	return key
}

func waitReady(ctx context.Context, ns, name string) *keysv1.ApiKey {
	key := waitReason(ctx, ns, name, keysv1.ReasonIssued)
	ExpectWithOffset(1, ready(key).Status).To(Equal(metav1.ConditionTrue))
	return key
}

// secretToken reads the token from a Secret and remembers it.
func secretToken(ctx context.Context, ns, name string) string {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	t := string(s.Data[keysv1.SecretKeyField])
	rememberToken(t)
	return t
}

// eventReasons lists the reasons of the events about a key.
func eventReasons(ctx context.Context, ns, name string) []string {
	list := &eventsv1.EventList{}
	Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "ApiKey" && e.Regarding.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func waitEvent(ctx context.Context, ns, name, reason string) {
	EventuallyWithOffset(1, func() []string { return eventReasons(ctx, ns, name) }).
		WithTimeout(10 * time.Second).Should(ContainElement(reason))
}

func listAllEvents(ctx context.Context) *eventsv1.EventList {
	list := &eventsv1.EventList{}
	Expect(k8s.List(ctx, list)).To(Succeed())
	return list
}

func ptr[T any](v T) *T { return &v }
