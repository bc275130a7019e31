package webhook_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

var _ = Describe("ApiKeyRole changes that keys feel", func() {
	ctx := context.Background()

	// usedBy creates a role and keys that name it, and waits until the
	// webhooks' cache has the keys.
	usedBy := func(ns string, r *keysv1.ApiKeyRole, keys ...string) {
		Expect(k8s.Create(ctx, r)).To(Succeed())
		for _, name := range keys {
			k := apiKey(ns, name, withRole(r.Name))
			Expect(k8s.Create(ctx, k)).To(Succeed())
			cached(ctx, k)
		}
		warnings.take()
	}

	It("allows deleting a role that keys use, and warns with their names", func() {
		ns := newNamespace(ctx, nil)
		r := role(ns, "readers", "invoices:read")
		usedBy(ns, r, "beta", "alpha")
		Expect(k8s.Delete(ctx, r)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf(
			`ApiKeyRole "readers" is still used by 2 ApiKeys (alpha, beta); they are not Ready until the role exists again`))
	})

	It("allows shrinking a role that keys use, and warns what they lose", func() {
		ns := newNamespace(ctx, nil)
		r := role(ns, "writers", "invoices:read", "invoices:write", "tenant.apiKey:*")
		usedBy(ns, r, "k1")
		r.Spec.Permissions = []keysv1.Permission{"invoices:read"}
		Expect(k8s.Update(ctx, r)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf(
			`ApiKeyRole "writers" no longer grants invoices:write, tenant.apiKey:*; keys that use the role lose what their own spec.permissions do not grant (1 ApiKey: k1)`))
	})

	It("does not warn when nothing is lost or nobody uses the role", func() {
		ns := newNamespace(ctx, nil)
		used := role(ns, "used", "invoices:read")
		usedBy(ns, used, "k1")
		used.Spec.Permissions = append(used.Spec.Permissions, "invoices:write")
		Expect(k8s.Update(ctx, used)).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())

		unused := role(ns, "unused", "invoices:read")
		usedBy(ns, unused)
		unused.Spec.Permissions = nil
		Expect(k8s.Update(ctx, unused)).To(Succeed())
		Expect(k8s.Delete(ctx, unused)).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())
	})

	It("keeps a long list of keys within what the API server passes on", func() {
		ns := newNamespace(ctx, nil)
		r := role(ns, "popular")
		var names []string
		for i := range 30 {
			names = append(names, fmt.Sprintf("service-account-key-%02d", i))
		}
		usedBy(ns, r, names...)
		Expect(k8s.Delete(ctx, r)).To(Succeed())
		seen := warnings.take()
		Expect(seen).To(HaveLen(1))
		Expect(len(seen[0])).To(BeNumerically("<=", 256))
		Expect(seen[0]).To(HavePrefix(`ApiKeyRole "popular" is still used by 30 ApiKeys (service-account-key-00, service-account-key-01, service-account-key-02, service-account-key-03 and 26 more)`))
	})
})
