package apiserver_test

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The smaller points of issue 11 on the REST dialects.
var _ = Describe("namespaces and secrets a caller may not learn or choose", func() {
	ctx := context.Background()

	It("answers an unknown namespace and a forbidden one alike to callers without rights in them", func() {
		nsA, nsB := newNamespace(ctx), newNamespace(ctx)
		missing := "no-such-tenant-" + strings.ToLower(randomSuffix()[:8])
		_, tok := makeKey(ctx, nsA, "curious", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		grantKeys(ctx, nsA, "curious-user", "get", "list", "create", "update", "delete")
		for name, c := range map[string]caller{"API key of A": apiKey(tok), "Kubernetes user with rights in A only": kubeUser("curious-user")} {
			answer := func(ns string) (int, string) {
				r := c.do("GET", "/api/"+ns+"/admin/apiKeys", nil)
				return r.status, strings.ReplaceAll(r.body, ns, "NS")
			}
			forbiddenStatus, forbiddenBody := answer(nsB)
			unknownStatus, unknownBody := answer(missing)
			Expect(forbiddenStatus).To(Equal(403), name)
			Expect(unknownStatus).To(Equal(forbiddenStatus), "%s: tenant-admin %s", name, unknownBody)
			Expect(unknownBody).To(Equal(forbiddenBody), name)

			hub := func(ns string) (int, string) {
				r := c.do("GET", "/v1/hubs/current/api-keys", nil, "X-Hub-Id", ns)
				return r.status, strings.ReplaceAll(r.body, ns, "NS")
			}
			forbiddenStatus, forbiddenBody = hub(nsB)
			unknownStatus, unknownBody = hub(missing)
			Expect(unknownStatus).To(Equal(forbiddenStatus), "%s: hub %s", name, unknownBody)
			Expect(unknownBody).To(Equal(forbiddenBody), name)

			nexus := func(ns string) (int, string) {
				r := c.do("GET", "/v1/api-keys", nil, "X-Namespace", ns)
				return r.status, strings.ReplaceAll(strings.ReplaceAll(r.body, ns, "NS"), "/v1/api-keys", "")
			}
			forbiddenStatus, forbiddenBody = nexus(nsB)
			unknownStatus, unknownBody = nexus(missing)
			Expect(unknownStatus).To(Equal(forbiddenStatus), "%s: nexus %s", name, unknownBody)
			Expect(unknownBody).To(Equal(forbiddenBody), name)
		}
		By("a caller with rights there still learns that a tenant does not exist")
		Expect(k8s.Create(ctx, clusterAdmin("admin-of-all"))).To(Succeed())
		all := kubeUser("admin-of-all")
		Expect(all.do("GET", "/api/"+missing+"/admin/apiKeys", nil).status).To(Equal(404))
		Expect(all.do("GET", "/v1/hubs/current/api-keys", nil, "X-Hub-Id", missing).status).To(Equal(404))
		Expect(all.do("GET", "/v1/api-keys", nil, "X-Namespace", missing).status).To(Equal(404))
	})

	It("refuses a chosen secret that is long enough but easy to guess", func() {
		ns := newNamespace(ctx)
		admin := apiKey(issueKey(ctx, ns, "admin", "*"))
		for _, weak := range []string{strings.Repeat("a", 40), strings.Repeat("password1", 5), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"} {
			r := admin.do("POST", "/v1/api-keys", map[string]any{"id": "weak", "secret": weak, "permissions": "invoices:read"})
			Expect(r.status).To(Equal(400), r.body)
			Expect(r.body).To(ContainSubstring("too easy to guess"))
			Expect(r.body).NotTo(ContainSubstring(weak))
		}
		Expect(keyByDisplayName(ctx, ns, "weak")).To(BeNil())
	})
})
