//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Tokens minted in keyScenarios, used by the later scenarios.
var tokenA, tokenB string

const (
	nsA = "e2e-a"
	nsB = "e2e-b"
)

func keyScenarios() {
	Describe("keys", func() {
		It("become Ready with their Secrets minted when applied with kubectl", func(ctx SpecContext) {
			ensureNamespace(ctx, nsA)
			ensureNamespace(ctx, nsB)
			out, err := kubectl(ctx, fmt.Sprintf(`apiVersion: keys.apikey-operator.io/v1alpha1
kind: ApiKey
metadata: {name: key-a, namespace: %s}
spec: {description: e2e key A, permissions: ["invoices:read"]}
---
apiVersion: keys.apikey-operator.io/v1alpha1
kind: ApiKey
metadata: {name: key-b, namespace: %s}
spec: {description: e2e key B, permissions: ["invoices:read"]}
`, nsA, nsB), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred(), out)
			tokenA = readyToken(ctx, nsA, "key-a", 2*time.Minute)
			tokenB = readyToken(ctx, nsB, "key-b", 2*time.Minute)
			Expect(tokenA).To(HavePrefix("ak_"))
		})

		It("verify through the verify Service from a client pod: the key passes, a wrong key and another namespace's key are refused", func(ctx SpecContext) {
			url := verifyURL(ctx, nsA)
			results := runClient(ctx, nsA, "verify", "", Plan{Requests: []Request{
				{Name: "good key", Method: "GET", URL: url, Headers: bearer(tokenA), Expect: 200},
				{Name: "good key, permission held", Method: "GET", URL: url + "&permission=invoices:read", Headers: bearer(tokenA), Expect: 200},
				{Name: "permission not held", Method: "GET", URL: url + "&permission=invoices:write", Headers: bearer(tokenA), Expect: 403},
				{Name: "wrong key", Method: "GET", URL: url, Headers: bearer(tokenA[:len(tokenA)-4] + "AAAA"), Expect: 401},
				{Name: "another namespace's key", Method: "GET", URL: url, Headers: bearer(tokenB), Expect: 0},
			}})
			Expect(results).To(HaveLen(5), summary(results))
		})

		It("are created, listed and deleted through every REST dialect via the in-cluster Service, with a ServiceAccount token and with an API key", func(ctx SpecContext) {
			grantKeys(ctx, nsA, "e2e-rest")
			var role keysv1.ApiKeyRole
			role.Namespace, role.Name = nsA, "e2e-role"
			role.Spec.Permissions = []keysv1.Permission{"x:read"}
			Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &role))).To(Succeed())
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(&role), &role)).To(Succeed())
			roleID := strings.ReplaceAll(string(role.UID), "-", "")[:24]
			createKey(ctx, nsA, "e2e-admin", "*")
			adminToken := readyToken(ctx, nsA, "e2e-admin", 2*time.Minute)

			base := fmt.Sprintf("https://%s:443", serviceIP(ctx, releaseNS, apiserver))
			ca := apiserverCA(ctx)
			dialects := func(prefix string, auth map[string]string, bearerFile string) []Request {
				h := func(extra map[string]string) map[string]string {
					m := map[string]string{}
					for k, v := range auth {
						m[k] = v
					}
					for k, v := range extra {
						m[k] = v
					}
					return m
				}
				tenant := base + "/api/" + nsA + "/admin/apiKeys"
				hub := map[string]string{"X-Hub-Id": nsA}
				// A ServiceAccount names its own namespace in Nexus; an API
				// key belongs to one.
				return []Request{
					{Name: prefix + " nexus create", Method: "POST", URL: base + "/v1/api-keys", Headers: h(nil), BearerFile: bearerFile, Body: `{"id":"` + prefix + `-nexus","permissions":"x:read"}`, Expect: 201},
					{Name: prefix + " nexus list", Method: "GET", URL: base + "/v1/api-keys", Headers: h(nil), BearerFile: bearerFile, Expect: 200},
					{Name: prefix + " nexus delete", Method: "DELETE", URL: base + "/v1/api-keys/" + prefix + "-nexus", Headers: h(nil), BearerFile: bearerFile, Expect: 204},
					{Name: prefix + " tenant create", Method: "POST", URL: tenant, Headers: h(nil), BearerFile: bearerFile, Body: `{"name":"` + prefix + `-tenant","permissions":["x:read"]}`, Expect: 201},
					{Name: prefix + " tenant list", Method: "GET", URL: tenant, Headers: h(nil), BearerFile: bearerFile, Expect: 200},
					{Name: prefix + " tenant delete", Method: "DELETE", URL: tenant + "/" + prefix + "-tenant", Headers: h(nil), BearerFile: bearerFile, Expect: 204},
					{Name: prefix + " hub create", Method: "POST", URL: base + "/v1/hubs/current/api-keys", Headers: h(hub), BearerFile: bearerFile, Body: `{"name":"` + prefix + `-hub","role_id":"` + roleID + `"}`, Expect: 201, Capture: map[string]string{"HUBID": "data.id"}},
					{Name: prefix + " hub list", Method: "GET", URL: base + "/v1/hubs/current/api-keys", Headers: h(hub), BearerFile: bearerFile, Expect: 200},
					{Name: prefix + " hub delete", Method: "DELETE", URL: base + "/v1/hubs/current/api-keys/${HUBID}", Headers: h(hub), BearerFile: bearerFile, Expect: 200},
				}
			}
			By("a pod with a ServiceAccount token (TokenReview, SubjectAccessReview)")
			results := runClient(ctx, nsA, "rest-sa", "e2e-rest", Plan{CA: ca, ServerName: apiserverHost, Requests: dialects("sa", nil, tokenPath)})
			Expect(results).To(HaveLen(9), summary(results))
			By("a pod whose ServiceAccount has no RBAC on apikeys is refused")
			results = runClient(ctx, nsA, "rest-norbac", "default", Plan{CA: ca, ServerName: apiserverHost, Requests: []Request{
				{Name: "nexus list without RBAC", Method: "GET", URL: base + "/v1/api-keys", BearerFile: tokenPath, Expect: 403},
			}})
			Expect(results).To(HaveLen(1))
			By("a pod with an API key")
			results = runClient(ctx, nsA, "rest-key", "", Plan{CA: ca, ServerName: apiserverHost, Requests: dialects("key", map[string]string{"X-API-Key": adminToken}, "")})
			Expect(results).To(HaveLen(9), summary(results))
			var keys keysv1.ApiKeyList
			Expect(k8s.List(ctx, &keys, client.InNamespace(nsA))).To(Succeed())
			for _, k := range keys.Items {
				Expect(k.Name).NotTo(Or(HavePrefix("sa-"), HavePrefix("key-n"), HavePrefix("key-t"), HavePrefix("key-h")), "a key deleted through a dialect is still there")
			}
		})

		It("are reviewed with ApiKeyReview through the aggregator and the API server's Service", func(ctx SpecContext) {
			// A review names the namespaces whose keys it accepts.
			review := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tokenA, Namespaces: []string{nsA}, Permissions: []string{"invoices:read"}}}
			Expect(k8s.Create(ctx, review)).To(Succeed())
			Expect(review.Status.Valid).To(BeTrue(), "reason %s", review.Status.Reason)
			Expect(review.Status.ApiKey).NotTo(BeNil())
			Expect(review.Status.ApiKey.Namespace).To(Equal(nsA))
			Expect(review.Status.ApiKey.Name).To(Equal("key-a"))
			wrong := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tokenA[:len(tokenA)-4] + "AAAA", Namespaces: []string{nsA}}}
			Expect(k8s.Create(ctx, wrong)).To(Succeed())
			Expect(wrong.Status.Valid).To(BeFalse())
			other := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tokenB, Namespaces: []string{nsA}}}
			Expect(k8s.Create(ctx, other)).To(Succeed())
			Expect(other.Status.Valid).To(BeFalse(), "a key of %s passed a review for %s", nsB, nsA)
		})

		It("lose their Secret to kube-controller-manager's garbage collector when deleted", func(ctx SpecContext) {
			createKey(ctx, nsA, "short-lived", "x:read")
			readyToken(ctx, nsA, "short-lived", 2*time.Minute)
			var secret corev1.Secret
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "short-lived"}, &secret)).To(Succeed())
			Expect(secret.OwnerReferences).To(ContainElement(HaveField("Kind", "ApiKey")), "the Secret must be owned by its key for the GC to remove it")
			key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "short-lived"}}
			Expect(k8s.Delete(ctx, key, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "short-lived"}, &corev1.Secret{}))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(BeTrue())
		})
	})
}
