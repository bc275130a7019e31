package apiserver_test

import (
	"context"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Issue 13: the dialects as clients written for the real products see
// them. Names and ids are free text (bounded, no control characters),
// one namespace is one space of names for every dialect and kubectl,
// the Nexus body binds as its ASP.NET server does, and permissions hold
// '/' and '@'. (The hub's roles, bodies and schema: hub_schema_test.go.)
var _ = Describe("Names, ids and permissions as real clients write them", Ordered, func() {
	ctx := context.Background()
	var (
		ns    string
		admin caller
		role  string
	)
	const hubColl = "/v1/hubs/current/api-keys"

	BeforeAll(func() {
		ns = newNamespace(ctx)
		_, tok := makeKey(ctx, ns, "n-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		admin = apiKey(tok)
		role = makeRole(ctx, ns, "n-role")
		waitRoleVisible(admin, ns, role)
	})

	hubCreate := func(name string) (id string, r response) {
		r = admin.send(jsonReq("POST", hubColl, map[string]any{"name": name, "role_id": role}, "X-Hub-Id", ns))
		if r.status == 201 {
			data := r.json()["data"].(map[string]any)
			rememberToken(data["secret"].(string))
			id = data["id"].(string)
		}
		return id, r
	}

	It("hub: a free-text name is accepted on create and on PATCH and round-trips byte for byte; the tenant-admin dialect shows it and addresses it by its URL-encoded name", func() {
		for _, name := range []string{"CI Deploy (prod)", "Déploiement", "build #42"} {
			id, r := hubCreate(name)
			Expect(r.status).To(Equal(201), r.body)
			Expect(r.json()["data"].(map[string]any)["name"]).To(Equal(name))
			Expect(string(keyByDisplayName(ctx, ns, name).Spec.Name)).To(Equal(name), "spec.name holds it exactly")

			var g response
			Eventually(func() int { g = admin.send(getReq(hubColl+"/"+id, "X-Hub-Id", ns)); return g.status }).Should(Equal(200))
			Expect(g.json()["data"].(map[string]any)["name"]).To(Equal(name))

			// The tenant-admin dialect: listed, fetched, updated, deleted
			// by the URL-encoded name.
			tenant := "/api/" + ns + "/admin/apiKeys"
			Expect(admin.send(getReq(tenant)).body).To(ContainSubstring(string(jsonBody(name))))
			item := tenant + "/" + url.PathEscape(name)
			t := admin.send(getReq(item))
			Expect(t.status).To(Equal(200), t.body)
			Expect(t.json()["name"]).To(Equal(name))
			u := admin.send(jsonReq("PUT", item, map[string]any{"enabled": false}))
			Expect(u.status).To(Equal(200), u.body)
			Expect(u.json()["name"]).To(Equal(name))

			// Rename through the hub's PATCH, to another free-text name.
			renamed := name + " — v2"
			var p response
			Eventually(func() int {
				p = admin.send(jsonReq("PATCH", hubColl+"/"+id, map[string]any{"name": renamed}, "X-Hub-Id", ns))
				return p.status
			}).Should(Equal(200))
			Expect(p.json()["data"].(map[string]any)["name"]).To(Equal(renamed))
			Expect(keyByDisplayName(ctx, ns, renamed)).NotTo(BeNil())
			Eventually(func() int { return admin.send(getReq(tenant + "/" + url.PathEscape(renamed))).status }).Should(Equal(200))

			d := admin.send(request{method: "DELETE", path: tenant + "/" + url.PathEscape(renamed)})
			Expect(d.status).To(Equal(204), d.body)
			Eventually(func() int { return admin.send(getReq(hubColl+"/"+id, "X-Hub-Id", ns)).status }).Should(Equal(404))
		}
	})

	It("hub: a client that knows only the product's OpenAPI lists the roles, creates a key with a role's id and a name with spaces, reads it with include=roles, renames and deletes it", func() {
		hubNS := newNamespace(ctx)
		_, tok := makeKey(ctx, hubNS, "hub-client", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"api-keys-manage", "invoices:read"} })
		client := apiKey(tok)
		makeRole(ctx, hubNS, "deployers", "api-keys-manage")
		makeRole(ctx, hubNS, "invoice-readers", "invoices:read")
		h := []string{"X-Hub-Id", hubNS}

		// 1. Discover the roles.
		var roles []any
		Eventually(func() int {
			r := client.send(getReq("/v1/hubs/current/roles", h...))
			Expect(r.status).To(Equal(200), r.body)
			roles = r.json()["data"].([]any)
			return len(roles)
		}).WithTimeout(10 * time.Second).Should(Equal(2))
		ids := map[string]string{}
		for _, it := range roles {
			ro := it.(map[string]any)
			ids[ro["identifier"].(string)] = ro["id"].(string)
		}
		deployers := roles[0].(map[string]any)
		Expect(deployers["name"]).To(Equal("deployers"))
		Expect(deployers["capabilities"]).To(Equal(map[string]any{"all": false, "specific": []any{"api-keys-manage"}}))
		readers := roles[1].(map[string]any)
		Expect(readers["capabilities"]).To(Equal(map[string]any{"all": false, "specific": []any{}}))
		Expect(readers["extra"]).To(Equal(map[string]any{"permissions": "invoices:read"}), "a permission that is no capability of the product")
		one := client.send(getReq("/v1/hubs/current/roles/"+ids["invoice-readers"], h...))
		Expect(one.status).To(Equal(200), one.body)
		Expect(one.json()["data"]).To(Equal(readers))

		// 2. Create a key with that role and a name with spaces.
		name := "CI Deploy (prod)"
		c := client.send(jsonReq("POST", hubColl, map[string]any{"name": name, "role_id": ids["invoice-readers"], "ips": []string{}}, h...))
		Expect(c.status).To(Equal(201), c.body)
		data := c.json()["data"].(map[string]any)
		rememberToken(data["secret"].(string))
		Expect(data["name"]).To(Equal(name))
		Expect(data["role_id"]).To(Equal(ids["invoice-readers"]))
		Expect(data["ips"]).To(Equal([]any{}), "ips: [] stays []")
		id := data["id"].(string)

		// 3. Read it with its role.
		var g response
		Eventually(func() int { g = client.send(getReq(hubColl+"/"+id+"?include=roles", h...)); return g.status }).Should(Equal(200))
		Expect(g.json()["data"].(map[string]any)["ips"]).To(Equal([]any{}))
		Expect(g.json()["includes"]).To(Equal(map[string]any{"roles": map[string]any{ids["invoice-readers"]: readers}}))

		// 4. Rename it, 5. delete it.
		var p response
		Eventually(func() int {
			p = client.send(jsonReq("PATCH", hubColl+"/"+id, map[string]any{"name": "CI Deploy (staging)"}, h...))
			return p.status
		}).Should(Equal(200))
		Expect(p.json()["data"].(map[string]any)["name"]).To(Equal("CI Deploy (staging)"))
		Expect(p.json()["data"].(map[string]any)["ips"]).To(Equal([]any{}))
		// The store answers a DELETE from its cache: wait until it has the
		// rename, so the answer's name is the new one.
		Eventually(func() any {
			return client.send(getReq(hubColl+"/"+id, h...)).json()["data"].(map[string]any)["name"]
		}).Should(Equal("CI Deploy (staging)"))
		var d response
		Eventually(func() int {
			d = client.send(request{method: "DELETE", path: hubColl + "/" + id, headers: h})
			return d.status
		}).Should(Equal(200))
		Expect(d.json()["data"].(map[string]any)["name"]).To(Equal("CI Deploy (staging)"))
		Eventually(func() int { return client.send(getReq(hubColl+"/"+id, h...)).status }).Should(Equal(404))
	})

	It("uniqueness: one namespace is one space of names, exact to the byte, for every dialect and kubectl", func() {
		const name = "Shared Name"
		_, r := hubCreate(name)
		Expect(r.status).To(Equal(201), r.body)
		waitVisible(admin, ns, url.PathEscape(name))

		// The same name through each dialect: refused in its own shape.
		before := snapshot(ctx, ns)
		_, r = hubCreate(name)
		expectHubError(r, 409, "409.duplicate-found")
		r = admin.send(jsonReq("POST", "/v1/api-keys", map[string]any{"id": name}))
		expectProblem(r, 409, "/v1/api-keys")
		Expect(snapshot(ctx, ns)).To(Equal(before))

		// A tenant-admin name taken through the hub, and the reverse.
		r = admin.send(jsonReq("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "billing"}))
		Expect(r.status).To(Equal(201), r.body)
		rememberToken(r.json()["token"].(string))
		waitVisible(admin, ns, "billing")
		before = snapshot(ctx, ns)
		_, r = hubCreate("billing")
		expectHubError(r, 409, "409.duplicate-found")
		r = admin.send(jsonReq("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "billing"}))
		expectTenantError(r, 409)
		Expect(snapshot(ctx, ns)).To(Equal(before))

		// Names that differ in case or by one space are different names.
		for _, other := range []string{"shared name", "Shared  Name", "Shared Name "} {
			_, r = hubCreate(other)
			Expect(r.status).To(Equal(201), other+": "+r.body)
		}
		Expect(keystore.ObjectName("shared name")).NotTo(Equal(keystore.ObjectName("Shared Name")))
	})

	It("Nexus: binds as ASP.NET (names ignoring case, response fields ignored, .NET date-times) and addresses ids as people write them", func() {
		before := time.Now()
		r := admin.send(rawReq("POST", "/v1/api-keys", `{"Id":"ops@example.com","ExpiresAt":"2030-01-31","userId":"someone","created":"2001-01-01T00:00:00Z","modified":null,"secret":null}`))
		expectCreated := func(r response, id, expires string) {
			ExpectWithOffset(1, r.status).To(Equal(201), r.body)
			m := r.json()
			rememberToken(m["secret"].(string))
			ExpectWithOffset(1, m["id"]).To(Equal(id))
			ExpectWithOffset(1, m["expiresAt"]).To(Equal(expires))
			ExpectWithOffset(1, m["userId"]).To(Equal("apikey:" + ns + "/n-admin"))
			ExpectWithOffset(1, rfc3339UTC(m["created"])).To(BeTemporally(">=", before.Add(-2*time.Second)))
		}
		expectCreated(r, "ops@example.com", "2030-01-31T00:00:00Z")
		expectCreated(admin.send(rawReq("POST", "/v1/api-keys", `{"ID":"tenant:42","EXPIRESAT":"2030-01-31T10:20:30.1234567"}`)), "tenant:42", "2030-01-31T10:20:30Z")
		expectCreated(admin.send(rawReq("POST", "/v1/api-keys", `{"id":"a/b c","expiresAt":"2030-01-31T10:20:30.5+02:00"}`)), "a/b c", "2030-01-31T08:20:30Z")

		for _, id := range []string{"ops@example.com", "tenant:42", "a/b c"} {
			path := "/v1/api-keys/" + url.PathEscape(id)
			var g response
			Eventually(func() int { g = admin.send(getReq(path)); return g.status }).Should(Equal(200))
			Expect(g.json()["id"]).To(Equal(id))
			d := admin.send(request{method: "DELETE", path: path})
			Expect(d.status).To(Equal(204), d.body)
			// Reads come from the cache, which sees the delete a moment
			// later (as the Hub specs above wait for it).
			var gone response
			Eventually(func() int { gone = admin.send(getReq(path)); return gone.status }).Should(Equal(404))
			expectProblem(gone, 404, path)
		}
	})

	It("permissions with '/' and '@': accepted by every dialect and the CRD, and a wildcard spans them as documented", func() {
		r := admin.send(jsonReq("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "scoped", "permissions": []string{"payments/*", "billing@eu", "urn:acme:invoices/read"}}))
		Expect(r.status).To(Equal(201), r.body)
		tok := r.json()["token"].(string)
		rememberToken(tok)
		r = admin.send(jsonReq("POST", "/v1/api-keys", map[string]any{"id": "nexus-scoped", "permissions": "payments/read, billing@eu"}))
		Expect(r.status).To(Equal(201), r.body)
		rememberToken(r.json()["secret"].(string))

		verdict := func(perm string) string {
			return reviewIn(ctx, accessv1.ApiKeyReviewSpec{Key: tok, Permissions: []string{perm}, Namespaces: []string{ns}}).Reason
		}
		Eventually(func() string { return verdict("payments/read") }).WithTimeout(10 * time.Second).Should(Equal(accessv1.ReasonValid))
		for perm, want := range map[string]string{
			"payments/eu@read":       accessv1.ReasonValid,
			"billing@eu":             accessv1.ReasonValid,
			"urn:acme:invoices/read": accessv1.ReasonValid,
			"payments:read":          accessv1.ReasonMissingPermission,
			"payments":               accessv1.ReasonMissingPermission,
			"billing@us":             accessv1.ReasonMissingPermission,
			"urn:acme:invoices:read": accessv1.ReasonMissingPermission,
		} {
			Expect(verdict(perm)).To(Equal(want), perm)
		}
	})
})
