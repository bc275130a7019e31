//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func decodeB64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

func ensureNamespace(ctx context.Context, name string) {
	GinkgoHelper()
	err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	// Pods need the default ServiceAccount, made by the controller manager.
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{})
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
}

// createKey creates an ApiKey and returns it once the webhooks admitted it.
func createKey(ctx context.Context, namespace, name string, perms ...string) *keysv1.ApiKey {
	GinkgoHelper()
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	for _, p := range perms {
		key.Spec.Permissions = append(key.Spec.Permissions, keysv1.Permission(p))
	}
	// The webhooks may be briefly unreachable right after a rollout.
	Eventually(func() error { return k8s.Create(ctx, key) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	return key
}

// readyToken waits for the key to be Ready and returns its token.
func readyToken(ctx context.Context, namespace, name string, timeout time.Duration) string {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		var key keysv1.ApiKey
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &key)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(key.Status.Conditions, keysv1.ConditionReady)).To(BeTrue(), "conditions: %v", key.Status.Conditions)
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed(), func() string { return podDiagnostics(ctx) })
	var secret corev1.Secret
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &secret)).To(Succeed())
	token := string(secret.Data[keysv1.SecretKeyField])
	Expect(token).NotTo(BeEmpty())
	return token
}

// grantKeys gives a ServiceAccount RBAC on apikeys in its namespace, as a
// tenant's automation would have.
func grantKeys(ctx context.Context, namespace, sa string) {
	GinkgoHelper()
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sa}}))).To(Succeed())
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sa},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{keysv1.GroupVersion.Group}, Resources: []string{"apikeys", "apikeyroles"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}))).To(Succeed())
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: sa}},
	}))).To(Succeed())
}

// verifyURL is the forward-auth endpoint through the verify Service,
// naming the namespace the gateway serves.
func verifyURL(ctx context.Context, namespace string) string {
	return fmt.Sprintf("http://%s:8090/v1/auth?namespace=%s", serviceIP(ctx, releaseNS, apiserver), namespace)
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// loopVerify is a plan that verifies token for d, counting failures.
func loopVerify(ctx context.Context, namespace, token string, d time.Duration) Plan {
	return Plan{Requests: []Request{{Name: "loop", Method: "GET", URL: verifyURL(ctx, namespace), Headers: bearer(token), Expect: 200, RepeatFor: d.String()}}}
}

// releasePods lists the pods of one component of the release, leaving out
// those already terminating.
func releasePods(ctx context.Context, component string) []corev1.Pod {
	GinkgoHelper()
	pods, err := cs.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=" + component})
	Expect(err).NotTo(HaveOccurred())
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

func podNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

func summary(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%s: status %d ok %d failed %d %v\n", r.Name, r.Status, r.OK, r.Failed, r.Errors)
	}
	return b.String()
}
