package apiserver_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// No widening without the right (issue 11): an update that makes a key
// more powerful — enabling it, lifting or widening its IP allowlist — is
// the same as granting its permissions, so an API-key caller needs every
// permission the key will grant. Narrowing needs no such right.
var _ = Describe("an update that widens a key", func() {
	ctx := context.Background()

	It("is refused to a write key that lacks the key's permissions, and allowed to one that holds them", func() {
		ns := newNamespace(ctx)
		_, adminTok := makeKey(ctx, ns, "wide-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		admin := apiKey(adminTok)
		_, writerTok := makeKey(ctx, ns, "wide-writer", func(k *keysv1.ApiKey) {
			k.Spec.Permissions = []keysv1.Permission{"tenant.apiKey:read", "tenant.apiKey:write", "api-keys-manage"}
		})
		writer := apiKey(writerTok)
		star, _ := makeKey(ctx, ns, "wide-star", func(k *keysv1.ApiKey) {
			k.Spec.Permissions = []keysv1.Permission{"*"}
			k.Spec.AllowedIPs = []keysv1.IPOrCIDR{"10.0.0.0/8"}
			k.Spec.Enabled = ptr(false)
		})
		id := keystore.IDOf(star.UID)
		waitVisible(admin, ns, "wide-star")
		spec := func() keysv1.ApiKeySpec {
			k := &keysv1.ApiKey{}
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(star), k)).To(Succeed())
			return k.Spec
		}
		hub := "/v1/hubs/current/api-keys/" + id
		tenant := "/api/" + ns + "/admin/apiKeys/wide-star"

		By("enabling a disabled * key")
		r := writer.do("PUT", tenant, map[string]any{"enabled": true})
		Expect(r.status).To(Equal(403), r.body)
		Expect(*spec().Enabled).To(BeFalse())

		By("lifting its IP allowlist, or widening it")
		for _, ips := range []any{nil, []string{}, []string{"0.0.0.0/0"}, []string{"10.0.0.0/8", "192.0.2.1"}} {
			r = writer.do("PATCH", hub, map[string]any{"ips": ips}, "X-Hub-Id", ns)
			Expect(r.status).To(Equal(403), "%v: %s", ips, r.body)
			Expect(spec().AllowedIPs).To(Equal([]keysv1.IPOrCIDR{"10.0.0.0/8"}))
		}

		By("narrowing is allowed to the same caller")
		r = writer.do("PATCH", hub, map[string]any{"ips": []string{"10.1.0.0/16", "10.2.3.4"}}, "X-Hub-Id", ns)
		Expect(r.status).To(Equal(200), r.body)
		Expect(spec().AllowedIPs).To(Equal([]keysv1.IPOrCIDR{"10.1.0.0/16", "10.2.3.4"}))

		By("a caller holding * may widen it")
		Eventually(func() int { return admin.do("PUT", tenant, map[string]any{"enabled": true}).status }).Should(Equal(200))
		Expect(*spec().Enabled).To(BeTrue())
		Eventually(func() int { return admin.do("PATCH", hub, map[string]any{"ips": nil}, "X-Hub-Id", ns).status }).Should(Equal(200))
		Expect(spec().AllowedIPs).To(BeEmpty())

		By("and the write key may still disable it")
		Eventually(func() int { return writer.do("PUT", tenant, map[string]any{"enabled": false}).status }).Should(Equal(200))
		Expect(*spec().Enabled).To(BeFalse())
	})
})
