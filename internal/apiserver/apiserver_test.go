package apiserver_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// review asks kube-apiserver, which forwards to the aggregated API,
// accepting keys of every namespace that exists: it names them, at most
// 32 a review, until one review finds the key's namespace.
func review(ctx context.Context, key string, perms ...string) accessv1.ApiKeyReviewStatus {
	nss := &corev1.NamespaceList{}
	ExpectWithOffset(1, k8s.List(ctx, nss)).To(Succeed())
	var st accessv1.ApiKeyReviewStatus
	for chunk := range slices.Chunk(nss.Items, 32) {
		var names []string
		for _, ns := range chunk {
			names = append(names, ns.Name)
		}
		st = reviewIn(ctx, accessv1.ApiKeyReviewSpec{Key: key, Permissions: perms, Namespaces: names})
		if st.Reason != accessv1.ReasonWrongNamespace {
			break
		}
	}
	return st
}

// reviewIn sends one review with the scope spec names.
func reviewIn(ctx context.Context, spec accessv1.ApiKeyReviewSpec) accessv1.ApiKeyReviewStatus {
	r := &accessv1.ApiKeyReview{Spec: spec}
	ExpectWithOffset(2, k8s.Create(ctx, r)).To(Succeed())
	ExpectWithOffset(2, r.Spec.Key).To(BeEmpty(), "a review must never return the key")
	return r.Status
}

var _ = Describe("ApiKeyReview through the aggregator", func() {
	ctx := context.Background()

	It("gives the verdict for a valid, an expired and a deleted key", func() {
		ns := newNamespace(ctx)
		tok := issueKey(ctx, ns, "reviewed", "invoices:read")
		Eventually(func() string { return review(ctx, tok, "invoices:read").Reason }).Should(Equal(accessv1.ReasonValid))
		st := review(ctx, tok, "invoices:read")
		Expect(st.Valid).To(BeTrue())
		Expect(st.ApiKey).NotTo(BeNil())
		Expect(st.ApiKey.Namespace).To(Equal(ns))
		Expect(st.ApiKey.Name).To(Equal("reviewed"))
		Expect(st.ApiKey.KeyPrefix).To(Equal(tok[:9]))
		Expect(review(ctx, tok, "invoices:write").Reason).To(Equal(accessv1.ReasonMissingPermission))
		Expect(review(ctx, typo(tok)).Reason).To(Equal(accessv1.ReasonMalformed))

		key := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "reviewed"}, key)).To(Succeed())
		key.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Minute)}
		Expect(k8s.Update(ctx, key)).To(Succeed())
		Eventually(func() string { return review(ctx, tok).Reason }).Should(Equal(accessv1.ReasonExpired))
		Expect(review(ctx, tok).Valid).To(BeFalse())

		Expect(k8s.Delete(ctx, key)).To(Succeed())
		Eventually(func() string { return review(ctx, tok).Reason }).WithTimeout(5 * time.Second).Should(Equal(accessv1.ReasonNotFound))
	})

	It("is listed by kubectl api-resources and answers kubectl create -o yaml", func() {
		ns := newNamespace(ctx)
		tok := issueKey(ctx, ns, "by-kubectl", "*")
		kubectl := func(args ...string) string {
			out, err := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			return string(out)
		}
		Expect(kubectl("api-resources", "--api-group=access.apikey-operator.io")).To(MatchRegexp(`apikeyreviews\s+access.apikey-operator.io/v1alpha1\s+false\s+ApiKeyReview`))
		file := filepath.Join(GinkgoT().TempDir(), "review.yaml")
		Expect(os.WriteFile(file, []byte("apiVersion: access.apikey-operator.io/v1alpha1\nkind: ApiKeyReview\nspec:\n  namespaces: [\""+ns+"\"]\n  key: "+tok+"\n"), 0o600)).To(Succeed())
		Eventually(func() string { return kubectl("create", "-f", file, "-o", "yaml") }).Should(ContainSubstring("valid: true"))
		Expect(kubectl("create", "-f", file, "-o", "yaml")).NotTo(ContainSubstring(tok))
	})

	It("serves OpenAPI v2 and v3 with the ApiKeyReview schema", func() {
		admin := kubeUser("openapi-reader")
		Expect(k8s.Create(ctx, clusterAdmin("openapi-reader"))).To(Succeed())
		for _, p := range []string{"/openapi/v2", "/openapi/v3/apis/access.apikey-operator.io/v1alpha1"} {
			r := admin.do("GET", p, nil)
			Expect(r.status).To(Equal(200), p+": "+r.body)
			Expect(r.body).To(ContainSubstring("ApiKeyReview"))
		}
	})
})

var _ = Describe("The REST dialects over one store", func() {
	ctx := context.Background()

	It("shows a key made through one dialect in the others and to kubectl, and the token only once", func() {
		ns := newNamespace(ctx)
		admin := apiKey(issueKey(ctx, ns, "admin", "*"))

		created := admin.do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "Billing_Prod", "permissions": []string{"invoices:read"}})
		Expect(created.status).To(Equal(201), created.body)
		tok := created.json()["token"].(string)
		rememberToken(tok)
		Expect(created.json()).To(HaveLen(4))

		// kubectl sees it, with the display name kept exactly.
		key := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: keystore.ObjectName("Billing_Prod")}, key)).To(Succeed())
		Expect(string(key.Spec.Name)).To(Equal("Billing_Prod"))

		// The three dialects list it.
		list := admin.do("GET", "/api/"+ns+"/admin/apiKeys", nil)
		Expect(list.status).To(Equal(200), list.body)
		Expect(list.body).To(ContainSubstring(`"name":"Billing_Prod"`))
		hub := admin.do("GET", "/v1/hubs/current/api-keys", nil, "X-Hub-Id", ns)
		Expect(hub.status).To(Equal(200), hub.body)
		Expect(hub.body).To(ContainSubstring(`"name":"Billing_Prod"`))
		nexus := admin.do("GET", "/v1/api-keys", nil)
		Expect(nexus.status).To(Equal(200), nexus.body)
		Expect(nexus.body).To(ContainSubstring(`"id":"Billing_Prod"`))
		for _, r := range []response{list, hub, nexus, admin.do("GET", "/api/"+ns+"/admin/apiKeys/Billing_Prod", nil)} {
			Expect(r.body).NotTo(ContainSubstring(tok))
			Expect(r.body).NotTo(ContainSubstring("sha256:"))
		}

		// The minted token works once the controller has seen the key.
		Eventually(func() string { return review(ctx, tok, "invoices:read").Reason }).WithTimeout(10 * time.Second).Should(Equal(accessv1.ReasonValid))
		Expect(getSecretToken(ctx, ns, keystore.ObjectName("Billing_Prod"))).To(Equal(tok), "the controller must keep the token the API server minted")

		// Delete through the tenant dialect: it stops working at once.
		del := admin.do("DELETE", "/api/"+ns+"/admin/apiKeys/Billing_Prod", nil)
		Expect(del.status).To(Equal(204), del.body)
		Eventually(func() string { return review(ctx, tok).Reason }).WithTimeout(2 * time.Second).Should(Equal(accessv1.ReasonNotFound))
		Expect(admin.do("GET", "/api/"+ns+"/admin/apiKeys/Billing_Prod", nil).status).To(Equal(404))
	})

	It("creates through Nexus with a supplied secret and through the hub with a role", func() {
		ns := newNamespace(ctx)
		admin := apiKey(issueKey(ctx, ns, "admin", "*"))
		supplied := "supplied-secret-value-0123456789-abcdef"
		rememberToken(supplied)
		r := admin.do("POST", "/v1/api-keys", map[string]any{"id": "nexus-key", "secret": supplied, "permissions": "invoices:read, invoices:write"})
		Expect(r.status).To(Equal(201), r.body)
		Expect(r.json()["secret"]).To(Equal(supplied))
		Eventually(func() string { return review(ctx, supplied, "invoices:write").Reason }).WithTimeout(10 * time.Second).Should(Equal(accessv1.ReasonValid))

		role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "readers"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"}}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		roleID := keystore.IDOf(role.UID)
		Eventually(func() int {
			return admin.do("POST", "/v1/hubs/current/api-keys", map[string]any{"name": "hub-key", "role_id": roleID, "ips": []string{"10.0.0.0/8"}}, "X-Hub-Id", ns).status
		}).WithTimeout(5 * time.Second).Should(Equal(201))
		got := admin.do("GET", "/v1/hubs/current/api-keys?include=roles", nil, "X-Hub-Id", ns)
		Expect(got.status).To(Equal(200), got.body)
		Expect(got.body).To(ContainSubstring(roleID))
	})
})

// One token, one key (issue 11): a tenant cannot register another
// tenant's token as its own key's secret, through any dialect.
var _ = Describe("a caller-chosen secret already in use", func() {
	ctx := context.Background()

	It("is refused without saying where, and creates nothing", func() {
		nsA, nsB := newNamespace(ctx), newNamespace(ctx)
		victim := issueKey(ctx, nsA, "victim", "*")
		chosen := "another-tenants-chosen-secret-9f8e7d6c5b4a"
		rememberToken(chosen)
		adminA := apiKey(issueKey(ctx, nsA, "admin", "*"))
		Expect(adminA.do("POST", "/v1/api-keys", map[string]any{"id": "chosen", "secret": chosen, "permissions": "invoices:read"}).status).To(Equal(201))
		Eventually(func() string { return review(ctx, chosen).Reason }).WithTimeout(10 * time.Second).Should(Equal(accessv1.ReasonValid))

		adminB := apiKey(issueKey(ctx, nsB, "admin", "*"))
		for _, stolen := range []string{victim, chosen} {
			// The Nexus dialect is the one that takes a caller's secret.
			r := adminB.do("POST", "/v1/api-keys", map[string]any{"id": "copy", "secret": stolen, "permissions": "invoices:read"})
			Expect(r.status).To(Equal(400), r.body)
			Expect(r.body).To(ContainSubstring("secret"))
			Expect(r.body).NotTo(ContainSubstring(nsA), "the refusal says nothing of where the token is used")
			Expect(r.body).NotTo(ContainSubstring(stolen))
		}
		keys := &keysv1.ApiKeyList{}
		Expect(k8s.List(ctx, keys, client.InNamespace(nsB))).To(Succeed())
		Expect(keys.Items).To(HaveLen(1), "only B's admin key exists")
		st := reviewIn(ctx, accessv1.ApiKeyReviewSpec{Key: victim, Namespaces: []string{nsA}})
		Expect(st.Reason).To(Equal(accessv1.ReasonValid))
		Expect(st.ApiKey.Name).To(Equal("victim"))
	})
})

// typo changes the token's last character, as a person mistyping it would.
func typo(tok string) string {
	last := byte('a')
	if tok[len(tok)-1] == 'a' {
		last = 'b'
	}
	return tok[:len(tok)-1] + string(last)
}

func getSecretToken(ctx context.Context, ns, name string) string {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return string(s.Data[keysv1.SecretKeyField])
}

// leakCheck: no token the tests saw is in any object, event or log line.
func leakCheck() {
	ctx := context.Background()
	keys := &keysv1.ApiKeyList{}
	Expect(k8s.List(ctx, keys)).To(Succeed())
	events := &eventsv1.EventList{}
	Expect(k8s.List(ctx, events)).To(Succeed())
	rawKeys, _ := json.Marshal(keys)
	rawEvents, _ := json.Marshal(events)
	Expect(tokens.All()).NotTo(BeEmpty())
	audited, err := os.ReadFile(auditLog)
	Expect(err).NotTo(HaveOccurred())
	Expect(audited).NotTo(BeEmpty())
	Expect(testkit.Leaks(tokens.All(), map[string]string{
		"the log": logs.String(), "an ApiKey": string(rawKeys), "an event": string(rawEvents), "the audit log": string(audited),
	})).To(BeEmpty())
	// Nor a hash: every key's, current and previous.
	for _, k := range keys.Items {
		for _, h := range append([]string{k.Status.Hash}, previousHashes(&k)...) {
			if h != "" {
				Expect(string(audited)).NotTo(ContainSubstring(strings.TrimPrefix(h, "sha256:")), "a hash of "+k.Namespace+"/"+k.Name+" in the audit log")
			}
		}
	}
}
