package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// newNamespace creates a namespace of its own for one test.
func newNamespace(ctx context.Context, annotations map[string]string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        "wh-" + rand.String(8),
		Annotations: annotations,
	}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func apiKey(ns, name string, mutate ...func(*keysv1.ApiKey)) *keysv1.ApiKey {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(k)
	}
	return k
}

func expiringAt(t time.Time) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: t} }
}

func named(n string) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.Name = keysv1.KeyName(n) }
}

func withRole(r string) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: r} }
}

func withSecret(s string) func(*keysv1.ApiKey) {
	return func(k *keysv1.ApiKey) { k.Spec.SecretName = s }
}

func role(ns, name string, perms ...keysv1.Permission) *keysv1.ApiKeyRole {
	return &keysv1.ApiKeyRole{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       keysv1.ApiKeyRoleSpec{Permissions: perms},
	}
}

// cached waits until the webhooks' cache holds the key, so a rule that
// reads other keys sees it (the cache follows writes within milliseconds).
func cached(ctx context.Context, k *keysv1.ApiKey) {
	Eventually(func() error {
		return keyCache.Get(ctx, client.ObjectKeyFromObject(k), &keysv1.ApiKey{})
	}).Should(Succeed())
}

// invalid is the error a client sees when the ApiKey webhook refuses a key
// for the given field errors.
func invalid(name string, fieldErrors ...string) string {
	detail := fieldErrors[0]
	if len(fieldErrors) > 1 {
		detail = "[" + strings.Join(fieldErrors, ", ") + "]"
	}
	return fmt.Sprintf(`admission webhook "vapikey.keys.apikey-operator.io" denied the request: ApiKey.keys.apikey-operator.io %q is invalid: %s`, name, detail)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
