package apiserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Every documented status code and error body of the three dialects
// (docs/dialects/*.md), through the real server, each proving it changed
// nothing: the namespace's ApiKeys and Secrets (through the Kubernetes
// API) and the dialect's own list (as the namespace's admin key sees it)
// are the same before and after. Then every documented response field,
// with its type, for create, get and list.

// statusCase is one refused request.
type statusCase struct {
	what string
	as   string           // a caller of stCallers
	req  func() request   // built when it runs: it needs the namespace
	want int              // status
	code string           // hub: error.code
	src  string           // hub: error.source, when it has one
	hdr  [2]string        // a response header it must carry
	not  string           // text the answer must not contain (a rejected secret)
	pre  func(c caller)   // runs first (uses up a rate limit)
	more func(r response) // further checks
}

// Callers of the status cases; all but "other tenant" act in namespace N.
const (
	asAdmin     = "* key"
	asAnonymous = "anonymous"
	asBadBearer = "unknown key as Bearer"
	asBadHeader = "unknown key as X-API-Key"
	asBadBasic  = "unknown key as Basic password"
	asNoScope   = "key without a scope"
	asOther     = "* key of another tenant"
	asNoRBAC    = "Kubernetes user without RBAC"
	asRBAC      = "Kubernetes user with RBAC"
	asWriteOnly = "key with tenant.apiKey:write only"
	asManage    = "key with api-keys-manage only"
	asIP        = "* key allowed only from 192.0.2.0/24"
	asLimited   = "* key limited to 1 request per second"
)

var badCredentials = map[string]bool{asBadBearer: true, asBadHeader: true, asBadBasic: true}

var _ = Describe("Dialect status codes, error bodies and fields", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()

	var (
		ns, otherNS, unknownNS string
		existingID, otherID    string // hub IDs of Existing_Key and st-second
		roleID, starRoleID     string
		callers                = map[string]caller{}
		limited                = map[string]caller{} // by dialect
	)
	const existing = "Existing_Key"

	BeforeAll(func() {
		ns, otherNS = newNamespace(ctx), newNamespace(ctx)
		unknownNS = "st-no-such-tenant"
		Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: unknownNS}, &corev1.Namespace{}))).To(BeTrue())
		roleID = makeRole(ctx, ns, "st-role")
		starRoleID = makeRole(ctx, ns, "st-star-role", "*")

		key := func(as, name string, mutate func(*keysv1.ApiKey), perms ...string) {
			_, tok := makeKey(ctx, ns, name, func(k *keysv1.ApiKey) {
				for _, p := range perms {
					k.Spec.Permissions = append(k.Spec.Permissions, keysv1.Permission(p))
				}
				if mutate != nil {
					mutate(k)
				}
			})
			callers[as] = apiKey(tok)
		}
		key(asAdmin, "st-admin", nil, "*")
		key(asNoScope, "st-noscope", nil, "invoices:read")
		key(asWriteOnly, "st-write-only", nil, "tenant.apiKey:write")
		key(asManage, "st-manage", nil, "api-keys-manage")
		key(asIP, "st-ip", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = []keysv1.IPOrCIDR{"192.0.2.0/24"} }, "*")
		for _, d := range []string{"tenant", "nexus", "hub"} {
			key(asLimited, "st-limited-"+d, func(k *keysv1.ApiKey) {
				k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 1}
			}, "*")
			limited[d] = callers[asLimited]
		}
		_, otherTok := makeKey(ctx, otherNS, "st-other-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		callers[asOther] = apiKey(otherTok)
		callers[asAnonymous] = anonymous
		callers[asBadBearer] = apiKey(unknownToken())
		callers[asBadHeader] = caller{headers: map[string]string{"X-API-Key": unknownToken()}}
		callers[asBadBasic] = caller{headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+unknownToken()))}}
		callers[asNoRBAC] = kubeUser("st-none")
		grantKeys(ctx, ns, "st-rbac", "get", "list", "create", "update", "delete")
		callers[asRBAC] = kubeUser("st-rbac")

		admin := callers[asAdmin]
		r := admin.do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": existing})
		Expect(r.status).To(Equal(201), r.body)
		rememberToken(r.json()["token"].(string))
		_, _ = makeKey(ctx, ns, "st-second", nil)
		waitVisible(admin, ns, existing)
		waitVisible(admin, ns, "st-second")
		existingID = keystore.IDOf(keyByDisplayName(ctx, ns, existing).UID)
		otherID = keystore.IDOf(keyByDisplayName(ctx, ns, "st-second").UID)
		waitRoleVisible(admin, ns, roleID)
		waitRoleVisible(admin, ns, starRoleID)
		// Every key issued, so the dialects' lists (which show state and
		// the key prefix) only change when a request changes them.
		Eventually(func(g Gomega) {
			keys := &keysv1.ApiKeyList{}
			g.Expect(k8s.List(ctx, keys, client.InNamespace(ns))).To(Succeed())
			for _, k := range keys.Items {
				g.Expect(k.Status.KeyPrefix).NotTo(BeEmpty(), k.Name)
				g.Expect(k.Status.Conditions).NotTo(BeEmpty(), k.Name)
			}
		}).WithTimeout(20 * time.Second).Should(Succeed())
		Eventually(func() string {
			return admin.send(getReq("/v1/hubs/current/api-keys?page%5Bsize%5D=100", "X-Hub-Id", ns)).body
		}).ShouldNot(ContainSubstring(`"new"`))
	})

	// list is the dialect's list as the namespace's admin key sees it.
	list := func(dialect string) string {
		admin := callers[asAdmin]
		var r response
		switch dialect {
		case "tenant":
			r = admin.send(getReq("/api/" + ns + "/admin/apiKeys"))
		case "nexus":
			r = admin.send(getReq("/v1/api-keys"))
		case "hub":
			r = admin.send(getReq("/v1/hubs/current/api-keys?page%5Bsize%5D=100", "X-Hub-Id", ns))
		}
		ExpectWithOffset(1, r.status).To(Equal(200), r.body)
		return r.body
	}

	run := func(dialect string, c statusCase) {
		who := callers[c.as]
		if c.as == asLimited {
			who = limited[dialect]
		}
		Expect(who.headers != nil || who.cert != nil || c.as == asAnonymous).To(BeTrue(), "caller %q not set up", c.as)
		req := c.req()
		req.fresh = badCredentials[c.as]
		before, beforeOther, listBefore := snapshot(ctx, ns), snapshot(ctx, otherNS), list(dialect)
		if c.pre != nil {
			c.pre(who)
		}
		r := who.send(req)
		Expect(r.status).To(Equal(c.want), "%s as %s: %s", describeCall(req), c.as, r.body)
		switch dialect {
		case "tenant":
			expectTenantError(r, c.want)
		case "nexus":
			path, _, _ := strings.Cut(req.path, "?")
			expectProblem(r, c.want, path)
		case "hub":
			e := expectHubError(r, c.want, c.code)
			if c.src != "" {
				Expect(e["source"]).To(Equal(c.src), r.body)
			}
		}
		if c.hdr[0] != "" {
			Expect(r.header.Get(c.hdr[0])).To(Equal(c.hdr[1]), "header %s", c.hdr[0])
		}
		if c.not != "" {
			Expect(r.body).NotTo(ContainSubstring(c.not), "a rejected secret is never echoed")
		}
		if c.more != nil {
			c.more(r)
		}
		Expect(snapshot(ctx, ns)).To(Equal(before), "a refused request changes no ApiKey or Secret")
		Expect(snapshot(ctx, otherNS)).To(Equal(beforeOther), "nor in another tenant")
		Expect(list(dialect)).To(Equal(listBefore), "the dialect's list is the same before and after")
	}

	primeLimit := func(path string, headers ...string) func(c caller) {
		return func(c caller) {
			r := c.send(getReq(path, headers...))
			Expect(r.status).To(Equal(200), "the first request is within the limit: "+r.body)
		}
	}
	big := func(field string) string {
		return `{"` + field + `":"` + strings.Repeat("a", 1<<20) + `"}`
	}
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	retryAfter := func(r response) {
		Expect(r.header.Get("Retry-After")).To(MatchRegexp(`^[1-9][0-9]*$`))
	}

	Context("tenant admin", func() {
		coll := func() string { return "/api/" + ns + "/admin/apiKeys" }
		item := func(name string) string { return coll() + "/" + name }
		post := func(body string) func() request { return func() request { return rawReq("POST", coll(), body) } }
		put := func(name, body string) func() request {
			return func() request { return rawReq("PUT", item(name), body) }
		}
		get := func(path func() string) func() request { return func() request { return getReq(path()) } }
		perms := func(p []string) string { return string(jsonBody(map[string]any{"name": "st-new", "permissions": p})) }

		cases := []statusCase{
			{what: "malformed JSON", as: asAdmin, req: post(`{"name":`), want: 400},
			{what: "unknown field", as: asAdmin, req: post(`{"name":"st-new","bogus":true}`), want: 400},
			{what: "mis-cased field (Name)", as: asAdmin, req: post(`{"Name":"st-new"}`), want: 400},
			{what: "wrong type: name a number", as: asAdmin, req: post(`{"name":5}`), want: 400},
			{what: "wrong type: enabled a string", as: asAdmin, req: post(`{"name":"st-new","enabled":"yes"}`), want: 400},
			{what: "wrong type: permissions a string", as: asAdmin, req: post(`{"name":"st-new","permissions":"a:b"}`), want: 400},
			{what: "wrong type: a permission a number", as: asAdmin, req: post(`{"name":"st-new","permissions":[1]}`), want: 400},
			{what: "empty name", as: asAdmin, req: post(`{"name":""}`), want: 400},
			{what: "null name", as: asAdmin, req: post(`{"name":null}`), want: 400},
			{what: "missing name", as: asAdmin, req: post(`{}`), want: 400},
			{what: "bad-character name", as: asAdmin, req: post(`{"name":"bad name!"}`), want: 400},
			{what: "name with a slash", as: asAdmin, req: post(`{"name":"a/b"}`), want: 400},
			{what: "name over 128 characters", as: asAdmin, req: post(`{"name":"` + strings.Repeat("n", 129) + `"}`), want: 400},
			{what: "over-long list: 65 permissions", as: asAdmin, req: post(perms(many(65, func(i int) string { return fmt.Sprintf("p%d:read", i) }))), want: 400},
			{what: "a repeated permission", as: asAdmin, req: post(perms([]string{"a:b", "a:b"})), want: 400},
			{what: "a malformed permission", as: asAdmin, req: post(perms([]string{"has space"})), want: 400},
			{what: "a body that is an array", as: asAdmin, req: post(`[]`), want: 400},
			{what: "a body that is null", as: asAdmin, req: post(`null`), want: 400},
			{what: "trailing data", as: asAdmin, req: post(`{"name":"st-new"} {}`), want: 400},
			{what: "a duplicate field", as: asAdmin, req: post(`{"name":"st-new","name":"st-new2"}`), want: 400},
			{what: "an empty body", as: asAdmin, req: post(``), want: 400},
			{what: "update without enabled", as: asAdmin, req: put(existing, `{}`), want: 400},
			{what: "update with enabled null", as: asAdmin, req: put(existing, `{"enabled":null}`), want: 400},
			{what: "update with enabled a string", as: asAdmin, req: put(existing, `{"enabled":"true"}`), want: 400},
			{what: "update trying to rename (unknown field name)", as: asAdmin, req: put(existing, `{"enabled":true,"name":"x"}`), want: 400},
			{what: "update with a token field", as: asAdmin, req: put(existing, `{"enabled":true,"token":"x"}`), want: 400},
			{what: "update with a repeated permission", as: asAdmin, req: put(existing, `{"enabled":true,"permissions":["a:b","a:b"]}`), want: 400},
			{what: "a keyName no key can have: a line break (get)", as: asAdmin, req: get(func() string { return item("bad%0Aname") }), want: 400},
			{what: "a keyName no key can have: a tab (update)", as: asAdmin, req: put("bad%09name", `{"enabled":true}`), want: 400},
			{what: "a keyName that is not UTF-8 (delete)", as: asAdmin, req: func() request { return request{method: "DELETE", path: item("%FF")} }, want: 400},
			{what: "a keyName over 128 characters", as: asAdmin, req: get(func() string { return item(strings.Repeat("k", 129)) }), want: 400},

			{what: "no credentials", as: asAnonymous, req: get(coll), want: 401},
			{what: "no credentials (create)", as: asAnonymous, req: post(`{"name":"st-new"}`), want: 401},
			{what: "an unknown key (Bearer)", as: asBadBearer, req: get(coll), want: 401},
			{what: "an unknown key (X-API-KEY)", as: asBadHeader, req: post(`{"name":"st-new"}`), want: 401},
			{what: "an unknown key (Basic)", as: asBadBasic, req: get(coll), want: 401},

			{what: "missing scope (list)", as: asNoScope, req: get(coll), want: 403},
			{what: "missing scope (create)", as: asNoScope, req: post(`{"name":"st-new"}`), want: 403},
			{what: "write scope does not read", as: asWriteOnly, req: get(coll), want: 403},
			{what: "other tenant (get)", as: asOther, req: get(func() string { return item(existing) }), want: 403},
			{what: "other tenant (create)", as: asOther, req: post(`{"name":"st-new"}`), want: 403},
			{what: "other tenant (delete)", as: asOther, req: func() request { return request{method: "DELETE", path: item(existing)} }, want: 403},
			{what: "Kubernetes user without RBAC", as: asNoRBAC, req: get(coll), want: 403},
			{what: "escalation: create granting more than the caller holds", as: asWriteOnly, req: post(perms([]string{"*"})), want: 403},
			{what: "escalation: update granting more than the caller holds", as: asWriteOnly, req: put(existing, `{"enabled":true,"permissions":["invoices:read"]}`), want: 403},
			{what: "a key used from an address its allowedIPs exclude", as: asIP, req: get(coll), want: 403},

			{what: "unknown key (get)", as: asAdmin, req: get(func() string { return item("No_Such_Key") }), want: 404},
			{what: "unknown key (update)", as: asAdmin, req: put("No_Such_Key", `{"enabled":true}`), want: 404},
			{what: "unknown key (delete)", as: asAdmin, req: func() request { return request{method: "DELETE", path: item("No_Such_Key")} }, want: 404},
			{what: "a key name differing only in case", as: asAdmin, req: get(func() string { return item(strings.ToLower(existing)) }), want: 404},
			// A key of another namespace is not told whether a tenant
			// exists (issue 11): unknown answers as forbidden does. A
			// caller with rights there gets 404 (smaller_test.go).
			{what: "unknown tenant (list), to a key of another tenant", as: asAdmin, req: get(func() string { return "/api/" + unknownNS + "/admin/apiKeys" }), want: 403},
			{what: "unknown tenant (create), to a key of another tenant", as: asAdmin, req: func() request { return rawReq("POST", "/api/"+unknownNS+"/admin/apiKeys", `{"name":"st-new"}`) }, want: 403},
			{what: "a tenant that cannot be a namespace (Tenant_A)", as: asAdmin, req: get(func() string { return "/api/Tenant_A/admin/apiKeys" }), want: 404},
			{what: "a path under the keys that is no endpoint", as: asAdmin, req: get(func() string { return item("a") + "/b" }), want: 404},
			// The server routes a tenant's whole admin subtree to the
			// dialect, so this is the dialect's 404, not a Kubernetes Status.
			{what: "a path under /api/ that is no endpoint", as: asAdmin, req: get(func() string { return "/api/" + ns + "/admin/users" }), want: 404},

			{what: "POST on a key", as: asAdmin, req: func() request { return rawReq("POST", item(existing), `{}`) }, want: 405, hdr: [2]string{"Allow", "GET, HEAD, PUT, DELETE"}},
			{what: "PATCH on the collection", as: asAdmin, req: func() request { return rawReq("PATCH", coll(), `{}`) }, want: 405, hdr: [2]string{"Allow", "GET, HEAD, POST"}},

			{what: "duplicate name", as: asAdmin, req: post(`{"name":"` + existing + `"}`), want: 409},
			{what: "duplicate name of a key made with kubectl", as: asAdmin, req: post(`{"name":"st-second"}`), want: 409},

			{what: "body over 1 MiB", as: asAdmin, req: post(big("name")), want: 413},

			{what: "wrong content type (text/plain)", as: asAdmin, req: func() request {
				return request{method: "POST", path: coll(), body: []byte(`{"name":"st-new"}`), contentType: "text/plain"}
			}, want: 415},
			{what: "wrong charset", as: asAdmin, req: func() request {
				return request{method: "POST", path: coll(), body: []byte(`{"name":"st-new"}`), contentType: "application/json; charset=latin1"}
			}, want: 415},
			{what: "no content type", as: asAdmin, req: func() request {
				return request{method: "PUT", path: item(existing), body: []byte(`{"enabled":true}`)}
			}, want: 415},

			{what: "over the key's rate limit", as: asLimited, req: get(coll), want: 429, pre: func(c caller) { primeLimit(coll())(c) }, more: retryAfter},
		}
		for _, c := range cases {
			It(fmt.Sprintf("%d: %s", c.want, c.what), func() { run("tenant", c) })
		}
		It("400: a malformed %-escape in the path", func() {
			// net/http refuses the request line before any handler runs,
			// so the answer is its plain "400 Bad Request", not the
			// dialect's body that docs/dialects/tenant-admin.md lists.
			before := snapshot(ctx, ns)
			r := callers[asAdmin].send(request{method: "DELETE", path: item("a%zz")})
			Expect(r.status).To(Equal(400), r.body)
			Expect(snapshot(ctx, ns)).To(Equal(before))
		})
	})

	Context("Nexus", func() {
		const coll = "/v1/api-keys"
		post := func(body string, headers ...string) func() request {
			return func() request { return rawReq("POST", coll, body, headers...) }
		}
		get := func(path string, headers ...string) func() request {
			return func() request { return getReq(path, headers...) }
		}
		inNS := func(f func(headers ...string) func() request) func() request {
			return func() request { return f("X-Namespace", ns)() }
		}
		perms := func(p string) string { return string(jsonBody(map[string]any{"permissions": p})) }
		shortSecret := "short-secret-value"
		spacedSecret := "a secret with spaces that is long enough to pass"

		cases := []statusCase{
			{what: "malformed JSON", as: asAdmin, req: post(`{"id":`), want: 400},
			// ASP.NET binds names ignoring case (binding_test.go in the
			// nexus package and names_test.go here show the accepted forms).
			{what: "one field in two cases (id, ID)", as: asAdmin, req: post(`{"id":"st-new","ID":"st-other"}`), want: 400},
			{what: "wrong type in another case (ExpiresAt a number)", as: asAdmin, req: post(`{"ExpiresAt":5}`), want: 400},
			{what: "wrong type: id a number", as: asAdmin, req: post(`{"id":5}`), want: 400},
			{what: "wrong type: permissions an array", as: asAdmin, req: post(`{"permissions":["a:b"]}`), want: 400},
			{what: "wrong type: expiresAt a number", as: asAdmin, req: post(`{"expiresAt":123}`), want: 400},
			{what: "empty id", as: asAdmin, req: post(`{"id":""}`), want: 400},
			{what: "id with a line break", as: asAdmin, req: post(`{"id":"bad\nid"}`), want: 400},
			{what: "id with a right-to-left override", as: asAdmin, req: post(`{"id":"bad\u202eid"}`), want: 400},
			{what: "id over 128 characters", as: asAdmin, req: post(`{"id":"` + strings.Repeat("i", 129) + `"}`), want: 400},
			{what: "empty roleId", as: asAdmin, req: post(`{"roleId":""}`), want: 400},
			{what: "unknown roleId", as: asAdmin, req: post(`{"roleId":"no-such-role"}`), want: 400},
			{what: "secret under 32 characters", as: asAdmin, req: post(`{"secret":"` + shortSecret + `"}`), want: 400, not: shortSecret},
			{what: "secret with spaces", as: asAdmin, req: post(`{"secret":"` + spacedSecret + `"}`), want: 400, not: spacedSecret},
			{what: "past expiry", as: asAdmin, req: post(`{"expiresAt":"2000-01-01T00:00:00Z"}`), want: 400},
			{what: "expiresAt with 8 fractional digits", as: asAdmin, req: post(`{"expiresAt":"2030-01-31T00:00:00.12345678Z"}`), want: 400},
			{what: "expiresAt on February 30", as: asAdmin, req: post(`{"expiresAt":"2030-02-30"}`), want: 400},
			{what: "expiresAt a past bare date", as: asAdmin, req: post(`{"expiresAt":"2001-01-31"}`), want: 400},
			{what: "over-long list: 65 permissions", as: asAdmin, req: post(perms(strings.Join(many(65, func(i int) string { return fmt.Sprintf("p%d:read", i) }), ","))), want: 400},
			{what: "permissions over 1024 characters", as: asAdmin, req: post(perms(strings.Repeat("a", 1025))), want: 400},
			{what: "a malformed permission", as: asAdmin, req: post(perms("invoices:read, bad#perm")), want: 400},
			{what: "a permission with an empty segment", as: asAdmin, req: post(perms("payments//read")), want: 400},
			{what: "description over 1024 characters", as: asAdmin, req: post(`{"description":"` + strings.Repeat("d", 1025) + `"}`), want: 400},
			{what: "a body that is an array", as: asAdmin, req: post(`[]`), want: 400},
			{what: "a body that is null", as: asAdmin, req: post(`null`), want: 400},
			{what: "trailing data", as: asAdmin, req: post(`{} []`), want: 400},
			{what: "a duplicate field", as: asAdmin, req: post(`{"id":"st-a","id":"st-b"}`), want: 400},
			{what: "an empty body", as: asAdmin, req: post(``), want: 400},
			{what: "a bad id in the path (a line break)", as: asAdmin, req: get(coll + "/bad%0Aname"), want: 400},
			{what: "an empty id in the path", as: asAdmin, req: get(coll + "/"), want: 400},
			{what: "a Kubernetes user without X-Namespace", as: asRBAC, req: get(coll), want: 400},
			{what: "an X-Namespace that is no namespace name", as: asAdmin, req: get(coll, "X-Namespace", "Bad_NS"), want: 400},

			{what: "no credentials", as: asAnonymous, req: inNS(func(h ...string) func() request { return get(coll, h...) }), want: 401},
			{what: "no credentials (create)", as: asAnonymous, req: inNS(func(h ...string) func() request { return post(`{}`, h...) }), want: 401},
			{what: "an unknown key (Bearer)", as: asBadBearer, req: get(coll), want: 401},
			{what: "an unknown key (X-API-Key)", as: asBadHeader, req: post(`{}`), want: 401},
			{what: "an unknown key (Basic)", as: asBadBasic, req: get(coll), want: 401},

			{what: "missing scope (list)", as: asNoScope, req: get(coll), want: 403},
			{what: "missing scope (create)", as: asNoScope, req: post(`{}`), want: 403},
			{what: "tenant.apiKey scopes are not api-keys-manage", as: asWriteOnly, req: post(`{}`), want: 403},
			{what: "other tenant (list)", as: asOther, req: inNS(func(h ...string) func() request { return get(coll, h...) }), want: 403},
			{what: "other tenant (create)", as: asOther, req: inNS(func(h ...string) func() request { return post(`{}`, h...) }), want: 403},
			{what: "other tenant (delete)", as: asOther, req: func() request {
				return request{method: "DELETE", path: coll + "/" + existing, headers: []string{"X-Namespace", ns}}
			}, want: 403},
			{what: "Kubernetes user without RBAC", as: asNoRBAC, req: inNS(func(h ...string) func() request { return get(coll, h...) }), want: 403},
			{what: "escalation through permissions", as: asManage, req: post(perms("invoices:read")), want: 403},
			{what: "escalation through roleId", as: asManage, req: post(`{"roleId":"st-star-role"}`), want: 403},
			{what: "a key used from an address its allowedIPs exclude", as: asIP, req: get(coll), want: 403},

			{what: "unknown id (get)", as: asAdmin, req: get(coll + "/No_Such_Key"), want: 404},
			{what: "unknown id (delete)", as: asAdmin, req: func() request { return request{method: "DELETE", path: coll + "/No_Such_Key"} }, want: 404},
			{what: "an unknown namespace, to a key of another (answered as forbidden, issue 11)", as: asAdmin, req: func() request { return getReq(coll, "X-Namespace", unknownNS) }, want: 403},
			{what: "a path under /v1/api-keys that is no endpoint", as: asAdmin, req: get(coll + "/a/b"), want: 404},

			{what: "PUT on a key", as: asAdmin, req: func() request { return rawReq("PUT", coll+"/"+existing, `{}`) }, want: 405, hdr: [2]string{"Allow", "GET, HEAD, DELETE"}},
			{what: "DELETE on the collection", as: asAdmin, req: func() request { return request{method: "DELETE", path: coll} }, want: 405, hdr: [2]string{"Allow", "GET, HEAD, POST"}},

			{what: "duplicate id", as: asAdmin, req: post(`{"id":"` + existing + `"}`), want: 409},

			{what: "body over 1 MiB", as: asAdmin, req: post(big("description")), want: 413},

			{what: "wrong content type", as: asAdmin, req: func() request {
				return request{method: "POST", path: coll, body: []byte(`{}`), contentType: "text/plain"}
			}, want: 415},
			{what: "wrong charset", as: asAdmin, req: func() request {
				return request{method: "POST", path: coll, body: []byte(`{}`), contentType: "application/json; charset=iso-8859-1"}
			}, want: 415},

			{what: "over the key's rate limit", as: asLimited, req: get(coll), want: 429, pre: primeLimit(coll), more: retryAfter},
		}
		for _, c := range cases {
			It(fmt.Sprintf("%d: %s", c.want, c.what), func() { run("nexus", c) })
		}
	})

	Context("hub", func() {
		const coll = "/v1/hubs/current/api-keys"
		hub := func(extra ...string) []string { return append([]string{"X-Hub-Id", ns}, extra...) }
		post := func(body string) func() request {
			return func() request { return rawReq("POST", coll, body, hub()...) }
		}
		create := func(v map[string]any) func() request {
			return func() request {
				if _, ok := v["role_id"]; !ok {
					v["role_id"] = roleID
				}
				return jsonReq("POST", coll, v, hub()...)
			}
		}
		patch := func(body string) func() request {
			return func() request { return rawReq("PATCH", coll+"/"+existingID, body, hub()...) }
		}
		list := func(query string) func() request {
			return func() request { return getReq(coll+"?"+query, hub()...) }
		}
		get := func(path string) func() request { return func() request { return getReq(path, hub()...) } }
		named := func(name string) string { return `{"name":"` + name + `","role_id":"` + strings.Repeat("0", 24) + `"}` }
		const noSuchID = "0123456789abcdef01234567"

		cases := []statusCase{
			{what: "malformed JSON", as: asAdmin, req: post(`{"name":`), want: 400, code: "400.invalid-syntax"},
			{what: "an empty body", as: asAdmin, req: post(``), want: 400, code: "400.invalid-syntax"},
			{what: "a body that is an array", as: asAdmin, req: post(`[]`), want: 400, code: "400.invalid-syntax"},
			{what: "a body that is null", as: asAdmin, req: post(`null`), want: 400, code: "400.invalid-syntax"},
			{what: "trailing data", as: asAdmin, req: post(named("st-new") + `{}`), want: 400, code: "400.invalid-syntax"},
			{what: "a member given twice", as: asAdmin, req: post(`{"name":"a","name":"b"}`), want: 400, code: "400.invalid-syntax", src: "/name"},
			{what: "a bad %-escape in the query", as: asAdmin, req: list("filter%5Bsearch%5D=%zz"), want: 400, code: "400.invalid-syntax"},
			{what: "a ';' in the query", as: asAdmin, req: list("sort=name;page=1"), want: 400, code: "400.invalid-syntax"},
			{what: "more than 64 query parameters", as: asAdmin, req: list(strings.Join(many(65, func(i int) string { return fmt.Sprintf("x%d=1", i) }), "&")), want: 400, code: "400.invalid-syntax"},

			{what: "no credentials", as: asAnonymous, req: list(""), want: 401, code: "401.auth-invalid"},
			{what: "no credentials (create)", as: asAnonymous, req: create(map[string]any{"name": "st-new"}), want: 401, code: "401.auth-invalid"},
			{what: "an unknown key (Bearer)", as: asBadBearer, req: list(""), want: 401, code: "401.auth-invalid"},
			{what: "an unknown key (X-API-Key)", as: asBadHeader, req: create(map[string]any{"name": "st-new"}), want: 401, code: "401.auth-invalid"},
			{what: "an unknown key (Basic)", as: asBadBasic, req: list(""), want: 401, code: "401.auth-invalid"},

			{what: "a key used from an address its allowedIPs exclude", as: asIP, req: list(""), want: 403, code: "403.invalid-ip"},
			{what: "missing capability (list)", as: asNoScope, req: list(""), want: 403, code: "403.permissions", more: func(r response) {
				Expect(r.body).To(ContainSubstring(`"extra":{"capability":"api-keys-manage"}`))
			}},
			{what: "missing capability (create)", as: asNoScope, req: create(map[string]any{"name": "st-new"}), want: 403, code: "403.permissions"},
			{what: "missing capability (delete)", as: asWriteOnly, req: func() request {
				return request{method: "DELETE", path: coll + "/" + existingID, headers: hub()}
			}, want: 403, code: "403.permissions"},
			{what: "Kubernetes user without RBAC", as: asNoRBAC, req: list(""), want: 403, code: "403.permissions"},
			{what: "a role granting more than the caller holds (create)", as: asManage, req: func() request {
				return jsonReq("POST", coll, map[string]any{"name": "st-new", "role_id": starRoleID}, hub()...)
			}, want: 403, code: "403.permissions", src: "/role_id"},
			{what: "a role granting more than the caller holds (update)", as: asManage, req: func() request {
				return jsonReq("PATCH", coll+"/"+existingID, map[string]any{"role_id": starRoleID}, hub()...)
			}, want: 403, code: "403.permissions", src: "/role_id"},
			{what: "another hub (list)", as: asOther, req: list(""), want: 403, code: "403.wrong-hub"},
			{what: "another hub (create)", as: asOther, req: create(map[string]any{"name": "st-new"}), want: 403, code: "403.wrong-hub"},
			{what: "another hub (patch)", as: asOther, req: patch(`{"ips":["10.0.0.0/8"]}`), want: 403, code: "403.wrong-hub"},
			{what: "another hub (delete)", as: asOther, req: func() request {
				return request{method: "DELETE", path: coll + "/" + existingID, headers: hub()}
			}, want: 403, code: "403.wrong-hub"},

			{what: "a hub path other than current", as: asAdmin, req: get("/v1/hubs/other/api-keys"), want: 404, code: "404.uri"},
			{what: "a path under a key", as: asAdmin, req: func() request { return getReq(coll+"/"+existingID+"/x", hub()...) }, want: 404, code: "404.uri"},
			{what: "an unknown hub, to a key of another (answered as forbidden, issue 11)", as: asAdmin, req: func() request { return getReq(coll, "X-Hub-Id", unknownNS) }, want: 403, code: "403.wrong-hub"},
			{what: "an unknown key ID (get)", as: asAdmin, req: get(coll + "/" + noSuchID), want: 404, code: "404.hub.api-key"},
			{what: "an unknown key ID (patch)", as: asAdmin, req: func() request { return rawReq("PATCH", coll+"/"+noSuchID, `{"name":"x"}`, hub()...) }, want: 404, code: "404.hub.api-key"},
			{what: "an unknown key ID (delete)", as: asAdmin, req: func() request { return request{method: "DELETE", path: coll + "/" + noSuchID, headers: hub()} }, want: 404, code: "404.hub.api-key"},
			{what: "a key ID that is not 24 hex digits", as: asAdmin, req: get(coll + "/" + existing), want: 404, code: "404.hub.api-key"},
			{what: "an unknown role_id (create)", as: asAdmin, req: post(named("st-new")), want: 404, code: "404.hub.role", src: "/role_id"},
			{what: "an unknown role_id (patch)", as: asAdmin, req: patch(`{"role_id":"` + noSuchID + `"}`), want: 404, code: "404.hub.role", src: "/role_id"},

			// The product's error enum has no 405: 404.uri, with Allow.
			{what: "PUT on a key", as: asAdmin, req: func() request { return rawReq("PUT", coll+"/"+existingID, `{}`, hub()...) }, want: 404, code: "404.uri", hdr: [2]string{"Allow", "DELETE, GET, PATCH"}},
			{what: "DELETE on the collection", as: asAdmin, req: func() request { return request{method: "DELETE", path: coll, headers: hub()} }, want: 404, code: "404.uri", hdr: [2]string{"Allow", "GET, POST"}},
			{what: "POST on the roles", as: asAdmin, req: func() request { return rawReq("POST", "/v1/hubs/current/roles", `{}`, hub()...) }, want: 404, code: "404.uri", hdr: [2]string{"Allow", "GET"}},
			{what: "an unknown role ID", as: asAdmin, req: get("/v1/hubs/current/roles/" + noSuchID), want: 404, code: "404.hub.role"},
			{what: "a role ID that is not 24 hex digits", as: asAdmin, req: get("/v1/hubs/current/roles/st-role"), want: 404, code: "404.hub.role"},
			{what: "roles without the capability", as: asNoScope, req: get("/v1/hubs/current/roles"), want: 403, code: "403.permissions"},
			{what: "roles of another hub", as: asOther, req: get("/v1/hubs/current/roles"), want: 403, code: "403.wrong-hub"},
			{what: "roles: an unknown sort key", as: asAdmin, req: get("/v1/hubs/current/roles?sort=rank"), want: 422, code: "422.invalid-argument"},
			{what: "roles: an unknown filter", as: asAdmin, req: get("/v1/hubs/current/roles?filter%5Bstate%5D=live"), want: 422, code: "422.invalid-argument"},

			{what: "duplicate name (create)", as: asAdmin, req: create(map[string]any{"name": existing}), want: 409, code: "409.duplicate-found", src: "/name"},
			{what: "duplicate name (rename)", as: asAdmin, req: func() request {
				return jsonReq("PATCH", coll+"/"+otherID, map[string]any{"name": existing}, hub()...)
			}, want: 409, code: "409.duplicate-found", src: "/name"},

			// ...nor 413: 422.max-exceeded.
			{what: "body over 1 MiB", as: asAdmin, req: post(big("name")), want: 422, code: "422.max-exceeded"},

			{what: "wrong content type", as: asAdmin, req: func() request {
				return request{method: "POST", path: coll, body: []byte(named("st-new")), contentType: "text/plain", headers: hub()}
			}, want: 415, code: "415.invalid-content-type"},
			{what: "wrong charset", as: asAdmin, req: func() request {
				return request{method: "PATCH", path: coll + "/" + existingID, body: []byte(`{"name":"x"}`), contentType: "application/json; charset=latin1", headers: hub()}
			}, want: 415, code: "415.invalid-content-type"},

			{what: "missing name", as: asAdmin, req: create(map[string]any{}), want: 422, code: "422.missing-argument", src: "/name"},
			{what: "missing role_id", as: asAdmin, req: post(`{"name":"st-new"}`), want: 422, code: "422.missing-argument", src: "/role_id"},
			{what: "missing X-Hub-Id", as: asAdmin, req: func() request { return getReq(coll) }, want: 422, code: "422.missing-argument"},
			{what: "unknown field", as: asAdmin, req: create(map[string]any{"name": "st-new", "bogus": 1}), want: 422, code: "422.invalid-argument", src: "/bogus"},
			{what: "mis-cased field (Name)", as: asAdmin, req: create(map[string]any{"Name": "st-new"}), want: 422, code: "422.invalid-argument", src: "/Name"},
			{what: "wrong type: name a number", as: asAdmin, req: create(map[string]any{"name": 5}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "wrong type: name null", as: asAdmin, req: create(map[string]any{"name": nil}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "wrong type: role_id null", as: asAdmin, req: create(map[string]any{"name": "st-new", "role_id": nil}), want: 422, code: "422.invalid-argument", src: "/role_id"},
			{what: "wrong type: ips a string", as: asAdmin, req: create(map[string]any{"name": "st-new", "ips": "10.0.0.1"}), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "wrong type: ips [null]", as: asAdmin, req: create(map[string]any{"name": "st-new", "ips": []any{nil}}), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "empty name", as: asAdmin, req: create(map[string]any{"name": ""}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "name with a line break", as: asAdmin, req: create(map[string]any{"name": "bad\nname"}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "name with a bidi isolate", as: asAdmin, req: create(map[string]any{"name": "bad\u2067name"}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "name over 128 characters", as: asAdmin, req: create(map[string]any{"name": strings.Repeat("n", 129)}), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "role_id not 24 hex digits", as: asAdmin, req: create(map[string]any{"name": "st-new", "role_id": "st-role"}), want: 422, code: "422.invalid-argument", src: "/role_id"},
			{what: "bad CIDR", as: asAdmin, req: create(map[string]any{"name": "st-new", "ips": []string{"10.0.0.0/33"}}), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "bad IP", as: asAdmin, req: create(map[string]any{"name": "st-new", "ips": []string{"10.0.0.300"}}), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "over-long list: 101 IPs", as: asAdmin, req: create(map[string]any{"name": "st-new", "ips": many(101, func(i int) string { return fmt.Sprintf("10.0.%d.1", i) })}), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "bad CIDR (patch)", as: asAdmin, req: patch(`{"ips":["2001:db8::/129"]}`), want: 422, code: "422.invalid-argument", src: "/ips"},
			{what: "role_id null (patch)", as: asAdmin, req: patch(`{"role_id":null}`), want: 422, code: "422.invalid-argument", src: "/role_id"},
			{what: "name with a tab (patch)", as: asAdmin, req: patch(`{"name":"a\tb"}`), want: 422, code: "422.invalid-argument", src: "/name"},
			{what: "bad X-Hub-Id", as: asAdmin, req: func() request { return getReq(coll, "X-Hub-Id", "Bad_Hub") }, want: 422, code: "422.invalid-argument"},
			{what: "X-Hub-Id sent twice", as: asAdmin, req: func() request { return getReq(coll, "X-Hub-Id", ns, "X-Hub-Id", ns) }, want: 422, code: "422.invalid-argument"},
			{what: "page[size] over the limit", as: asAdmin, req: list("page%5Bsize%5D=101"), want: 422, code: "422.invalid-argument"},
			{what: "page[size] zero", as: asAdmin, req: list("page%5Bsize%5D=0"), want: 422, code: "422.invalid-argument"},
			{what: "page[size] not a number", as: asAdmin, req: list("page%5Bsize%5D=ten"), want: 422, code: "422.invalid-argument"},
			{what: "page[number] zero", as: asAdmin, req: list("page%5Bnumber%5D=0"), want: 422, code: "422.invalid-argument"},
			{what: "page[number] over 1,000,000", as: asAdmin, req: list("page%5Bnumber%5D=1000001"), want: 422, code: "422.invalid-argument"},
			{what: "page[offset]", as: asAdmin, req: list("page%5Boffset%5D=1"), want: 422, code: "422.invalid-argument"},
			{what: "unknown sort key", as: asAdmin, req: list("sort=bogus"), want: 422, code: "422.invalid-argument"},
			{what: "a sort key twice", as: asAdmin, req: list("sort=name,-name"), want: 422, code: "422.invalid-argument"},
			{what: "sort[]", as: asAdmin, req: list("sort%5B%5D=name"), want: 422, code: "422.invalid-argument"},
			{what: "unknown filter", as: asAdmin, req: list("filter%5Bbogus%5D=x"), want: 422, code: "422.invalid-argument"},
			{what: "unknown state filter", as: asAdmin, req: list("filter%5Bstate%5D=live,bogus"), want: 422, code: "422.invalid-argument"},
			{what: "filter[role_id] not an ID", as: asAdmin, req: list("filter%5Brole_id%5D=st-role"), want: 422, code: "422.invalid-argument"},
			{what: "empty filter[name]", as: asAdmin, req: list("filter%5Bname%5D="), want: 422, code: "422.invalid-argument"},
			{what: "unknown include", as: asAdmin, req: list("include=users"), want: 422, code: "422.invalid-argument"},
			{what: "unknown include (get)", as: asAdmin, req: func() request { return getReq(coll+"/"+existingID+"?include=users", hub()...) }, want: 422, code: "422.invalid-argument"},

			{what: "over the key's rate limit", as: asLimited, req: list(""), want: 429, code: "429.rate-limiting",
				pre: func(c caller) { primeLimit(coll, hub()...)(c) }, more: retryAfter},
		}
		for _, c := range cases {
			It(fmt.Sprintf("%d %s: %s", c.want, c.code, c.what), func() { run("hub", c) })
		}
	})

	// The response fields, in their own namespace so the status cases'
	// lists never see a key in the middle of being issued.
	Context("response fields", func() {
		var (
			fns     string
			admin   caller
			adminID string // how the admin key is recorded as creator
			role    string // hub ID of "f-role" (no permissions)
		)
		BeforeAll(func() {
			fns = newNamespace(ctx)
			_, tok := makeKey(ctx, fns, "f-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
			admin, adminID = apiKey(tok), "apikey:"+fns+"/f-admin"
			role = makeRole(ctx, fns, "f-role")
			waitRoleVisible(admin, fns, role)
		})
		noStore := func(r response) {
			ExpectWithOffset(1, r.header.Get("Cache-Control")).To(Equal("no-store"))
		}
		// plaintextOnce: the token was in the create answer; no other
		// answer shows it; a review gives it the reason (skipped when "").
		plaintextOnce := func(tok, reason string, others ...response) {
			rememberToken(tok)
			for _, r := range others {
				ExpectWithOffset(1, r.body).NotTo(ContainSubstring(tok), "the plaintext appears only in the create response")
				ExpectWithOffset(1, r.body).NotTo(ContainSubstring(token.HashPrefix))
			}
			if reason != "" {
				EventuallyWithOffset(1, func() string { return review(ctx, tok).Reason }).WithTimeout(10 * time.Second).Should(Equal(reason))
			}
		}

		It("tenant admin: create, get and list answer exactly the documented fields, names round-trip exactly", func() {
			coll := "/api/" + fns + "/admin/apiKeys"
			names := []string{"Payments_Reader", "payments_reader", "A.b-C_d.9", "UPPER", strings.Repeat("Z_", 64)}
			tokens := map[string]string{}
			for i, name := range names {
				body := map[string]any{"name": name, "permissions": []string{"payments:read"}}
				if i == 1 {
					body = map[string]any{"name": name, "enabled": false}
				}
				r := admin.send(jsonReq("POST", coll, body))
				Expect(r.status).To(Equal(201), r.body)
				noStore(r)
				Expect(r.header.Get("Content-Type")).To(HavePrefix("application/json"))
				Expect(r.header.Get("Location")).To(Equal(coll + "/" + url.PathEscape(name)))
				Expect(topLevelKeys(r.body)).To(ConsistOf("name", "enabled", "permissions", "token"))
				m := r.json()
				Expect(m["name"]).To(Equal(name))
				Expect(m["enabled"]).To(Equal(i != 1))
				if i == 1 {
					Expect(m["permissions"]).To(Equal([]any{}), "permissions is [] when the key has none, never null")
				} else {
					Expect(m["permissions"]).To(Equal([]any{"payments:read"}))
				}
				tok, ok := m["token"].(string)
				Expect(ok).To(BeTrue())
				Expect(token.Check(tok)).To(Succeed())
				tokens[name] = tok
				rememberToken(tok)
				// kubectl shows the display name exactly; the object name
				// is a valid Kubernetes name.
				k := keyByDisplayName(ctx, fns, name)
				Expect(k).NotTo(BeNil())
				Expect(k.Name).To(Equal(keystore.ObjectName(name)))
			}
			Expect(keystore.ObjectName("Payments_Reader")).NotTo(Equal(keystore.ObjectName("payments_reader")))

			var gets []response
			for i, name := range names {
				var g response
				Eventually(func() int { g = admin.send(getReq(coll + "/" + url.PathEscape(name))); return g.status }).Should(Equal(200))
				noStore(g)
				Expect(topLevelKeys(g.body)).To(ConsistOf("name", "enabled", "permissions"))
				Expect(g.json()["name"]).To(Equal(name))
				Expect(g.json()["enabled"]).To(Equal(i != 1))
				gets = append(gets, g)
			}
			l := admin.send(getReq(coll))
			Expect(l.status).To(Equal(200), l.body)
			var listed []string
			for _, item := range l.array() {
				m := item.(map[string]any)
				Expect(keysOf(m)).To(Equal([]string{"enabled", "name", "permissions"}))
				Expect(m["name"]).To(BeAssignableToTypeOf(""))
				Expect(m["enabled"]).To(BeAssignableToTypeOf(true))
				Expect(m["permissions"]).To(BeAssignableToTypeOf([]any{}))
				listed = append(listed, m["name"].(string))
			}
			Expect(listed).To(ContainElements(names))
			Expect(slices.IsSorted(listed)).To(BeTrue(), "the list is ordered by name: %v", listed)

			// PUT replaces enabled; permissions stay when left out; the
			// name (and token) do not change; only that key changes.
			u := admin.send(jsonReq("PUT", coll+"/Payments_Reader", map[string]any{"enabled": false}))
			Expect(u.status).To(Equal(200), u.body)
			Expect(u.body).To(MatchJSON(`{"name":"Payments_Reader","enabled":false,"permissions":["payments:read"]}`))
			Expect(*keyByDisplayName(ctx, fns, "Payments_Reader").Spec.Enabled).To(BeFalse())
			Expect(keyByDisplayName(ctx, fns, "UPPER").Spec.Enabled).NotTo(Equal(ptr(false)))
			Eventually(func() string { return review(ctx, tokens["Payments_Reader"]).Reason }).Should(Equal(accessv1.ReasonDisabled))
			// Eventually: an update right after another may meet a stale
			// cache (see the BUG test "consecutive updates").
			var u2 response
			Eventually(func() int {
				u2 = admin.send(jsonReq("PUT", coll+"/Payments_Reader", map[string]any{"enabled": true, "permissions": []string{}}))
				return u2.status
			}).Should(Equal(200))
			Expect(u2.body).To(MatchJSON(`{"name":"Payments_Reader","enabled":true,"permissions":[]}`))
			h := admin.send(request{method: "HEAD", path: coll + "/UPPER"})
			Expect(h.status).To(Equal(200))
			Expect(h.body).To(BeEmpty())
			for _, name := range names {
				reason := accessv1.ReasonValid
				if name == "payments_reader" {
					reason = accessv1.ReasonDisabled // created with enabled: false
				}
				plaintextOnce(tokens[name], reason, append(gets, l, u, u2)...)
			}
		})

		It("Nexus: all eleven fields in the vendor's order, with their types", func() {
			order := []string{"id", "roleId", "secret", "userId", "created", "modified", "createdBy", "expiresAt", "modifiedBy", "description", "permissions"}
			before := time.Now().Add(-2 * time.Second)
			r := admin.send(jsonReq("POST", "/v1/api-keys", map[string]any{"id": "Billing_Service", "permissions": "invoices:read, invoices:write"}))
			Expect(r.status).To(Equal(201), r.body)
			noStore(r)
			Expect(r.header.Get("Content-Type")).To(HavePrefix("application/json"))
			Expect(r.header.Get("Location")).To(Equal("/v1/api-keys/Billing_Service"))
			Expect(topLevelKeys(r.body)).To(Equal(order))
			m := r.json()
			Expect(m["id"]).To(Equal("Billing_Service"))
			Expect(m["roleId"]).To(BeNil())
			tok := m["secret"].(string)
			Expect(token.Check(tok)).To(Succeed())
			rememberToken(tok)
			Expect(m["userId"]).To(Equal(adminID))
			Expect(m["createdBy"]).To(Equal(adminID))
			Expect(m["modifiedBy"]).To(Equal(adminID))
			for _, f := range []string{"created", "modified", "expiresAt"} {
				Expect(m[f]).To(MatchRegexp(utcSeconds.String()), f)
			}
			created := rfc3339UTC(m["created"])
			Expect(created).To(BeTemporally(">=", before.Truncate(time.Second)))
			Expect(rfc3339UTC(m["expiresAt"])).To(BeTemporally("~", created.AddDate(1, 0, 0), 25*time.Hour), "one year by default")
			Expect(m["description"]).To(BeNil())
			Expect(m["permissions"]).To(Equal("invoices:read, invoices:write"), "kept exactly as sent")

			// roleId and expiresAt as given (a zone offset reads back in UTC);
			// a Kubernetes user is recorded by its name.
			user := kubeUser("f-nexus-user")
			grantKeys(ctx, fns, "f-nexus-user", "create", "get", "list")
			r2 := user.send(jsonReq("POST", "/v1/api-keys", map[string]any{"id": "with-role", "roleId": "f-role", "expiresAt": "2030-01-31T01:00:00+01:00", "description": "billing backend"}, "X-Namespace", fns))
			Expect(r2.status).To(Equal(201), r2.body)
			m2 := r2.json()
			rememberToken(m2["secret"].(string))
			Expect(m2["roleId"]).To(Equal("f-role"))
			Expect(m2["expiresAt"]).To(Equal("2030-01-31T00:00:00Z"))
			Expect(m2["description"]).To(Equal("billing backend"))
			Expect(m2["permissions"]).To(BeNil())
			Expect(m2["userId"]).To(Equal("f-nexus-user"))
			Expect(m2["createdBy"]).To(Equal("f-nexus-user"))

			// {} is enough: a generated id.
			r3 := admin.send(jsonReq("POST", "/v1/api-keys", map[string]any{}))
			Expect(r3.status).To(Equal(201), r3.body)
			rememberToken(r3.json()["secret"].(string))
			Expect(r3.json()["id"]).To(MatchRegexp(`^key-[0-9a-f]{10}$`))

			var g response
			Eventually(func() int { g = admin.send(getReq("/v1/api-keys/Billing_Service")); return g.status }).Should(Equal(200))
			noStore(g)
			Expect(topLevelKeys(g.body)).To(Equal(order))
			gm := g.json()
			Expect(gm["secret"]).To(BeNil(), "secret is null everywhere but the create answer")
			for _, f := range []string{"id", "userId", "created", "modified", "createdBy", "expiresAt", "modifiedBy", "permissions"} {
				Expect(gm[f]).To(Equal(m[f]), f)
			}
			var l response
			Eventually(func() string { l = admin.send(getReq("/v1/api-keys")); return l.body }).Should(ContainSubstring(`"with-role"`))
			var ids []string
			for _, item := range l.array() {
				im := item.(map[string]any)
				Expect(topLevelKeys(string(jsonBody(im)))).To(ConsistOf(order))
				Expect(im["secret"]).To(BeNil())
				Expect(im["id"]).To(BeAssignableToTypeOf(""))
				Expect(im["created"]).To(MatchRegexp(utcSeconds.String()))
				ids = append(ids, im["id"].(string))
			}
			Expect(slices.IsSorted(ids)).To(BeTrue(), "ordered by id: %v", ids)
			Expect(ids).To(ContainElements("Billing_Service", "with-role", r3.json()["id"]))
			// Raw order of a list item too.
			Expect(l.body).To(MatchRegexp(`\{"id":"[^"]+","roleId":[^,]+,"secret":null,"userId"`))
			plaintextOnce(tok, accessv1.ReasonValid, g, l)

			d := admin.send(request{method: "DELETE", path: "/v1/api-keys/Billing_Service"})
			Expect(d.status).To(Equal(204))
			Expect(d.body).To(BeEmpty())
			Eventually(func() string { return review(ctx, tok).Reason }).WithTimeout(2 * time.Second).Should(Equal(accessv1.ReasonNotFound))
		})

		It("hub: the ApiKey object of the OpenAPI spec; secret plaintext on create only; PATCH leaves ips alone", func() {
			coll := "/v1/hubs/current/api-keys"
			h := []string{"X-Hub-Id", fns}
			fields := []string{"creator", "events", "hub_id", "id", "ips", "name", "role_id", "secret", "state"}
			zero := "0001-01-01T00:00:00Z"
			checkKey := func(m map[string]any, name string) {
				ExpectWithOffset(1, keysOf(m)).To(Equal(fields))
				ExpectWithOffset(1, m["id"]).To(MatchRegexp(hex24.String()))
				ExpectWithOffset(1, m["hub_id"]).To(Equal(fns))
				ExpectWithOffset(1, m["name"]).To(Equal(name))
				cr := m["creator"].(map[string]any)
				sum := sha256.Sum256([]byte(adminID))
				ExpectWithOffset(1, cr).To(Equal(map[string]any{"id": hex.EncodeToString(sum[:12]), "type": "api-key"}))
				ExpectWithOffset(1, m["role_id"]).To(Equal(role))
				st := m["state"].(map[string]any)
				ExpectWithOffset(1, []string{"new", "live"}).To(ContainElement(st["current"]))
				rfc3339UTC(st["changed"])
				ev := m["events"].(map[string]any)
				ExpectWithOffset(1, keysOf(ev)).To(Equal([]string{"created", "deleted", "updated"}))
				rfc3339UTC(ev["created"])
				rfc3339UTC(ev["updated"])
				ExpectWithOffset(1, ev["deleted"]).To(Equal(zero))
			}
			r := admin.send(jsonReq("POST", coll, map[string]any{"name": "Ci_Deploy", "role_id": role, "ips": []string{"10.0.0.0/8", "2001:db8::/32"}}, h...))
			Expect(r.status).To(Equal(201), r.body)
			noStore(r)
			Expect(r.header.Get("X-Content-Type-Options")).To(Equal("nosniff"))
			Expect(topLevelKeys(r.body)).To(Equal([]string{"data"}))
			data := r.json()["data"].(map[string]any)
			checkKey(data, "Ci_Deploy")
			id := data["id"].(string)
			Expect(r.header.Get("Location")).To(Equal(coll + "/" + id))
			Expect(data["ips"]).To(Equal([]any{"10.0.0.0/8", "2001:db8::/32"}))
			tok := data["secret"].(string)
			Expect(token.Check(tok)).To(Succeed())
			rememberToken(tok)
			masked := token.DisplayPrefix(tok) + "********"

			var g response
			Eventually(func() any {
				g = admin.send(getReq(coll+"/"+id, h...))
				if g.status != 200 {
					return g.body
				}
				return g.json()["data"].(map[string]any)["secret"]
			}).WithTimeout(10*time.Second).Should(Equal(masked), "masked: the key prefix and ********")
			noStore(g)
			gd := g.json()["data"].(map[string]any)
			checkKey(gd, "Ci_Deploy")
			Expect(gd["id"]).To(Equal(id))
			Eventually(func() any {
				return admin.send(getReq(coll+"/"+id, h...)).json()["data"].(map[string]any)["state"].(map[string]any)["current"]
			}).Should(Equal("live"))

			gi := admin.send(getReq(coll+"/"+strings.ToUpper(id)+"?include=roles", h...))
			Expect(gi.status).To(Equal(200), "IDs are accepted in either case: "+gi.body)
			Expect(keysOf(gi.json())).To(Equal([]string{"data", "includes"}))
			roles := gi.json()["includes"].(map[string]any)["roles"].(map[string]any)
			Expect(keysOf(roles)).To(Equal([]string{role}))
			ro := roles[role].(map[string]any)
			Expect(ro["id"]).To(Equal(role))
			Expect(ro["name"]).To(Equal("f-role"))
			Expect(ro["identifier"]).To(Equal("f-role"))
			Expect(ro["root"]).To(BeFalse())
			Expect(ro).To(HaveKeyWithValue("default", BeNil()))
			Expect(ro["rank"]).To(BeEquivalentTo(0))
			Expect(ro["hub_id"]).To(Equal(fns))
			Expect(ro["capabilities"]).To(Equal(map[string]any{"all": false, "specific": []any{}}))
			Expect(ro["creator"]).To(Equal(map[string]any{"id": "000000000000000000000000", "type": "platform"}))
			Expect(ro["state"].(map[string]any)["current"]).To(Equal("live"))

			l := admin.send(getReq(coll, h...))
			Expect(l.status).To(Equal(200), l.body)
			Expect(topLevelKeys(l.body)).To(Equal([]string{"data"}))
			items := l.json()["data"].([]any)
			Expect(items).NotTo(BeEmpty())
			for _, it := range items {
				im := it.(map[string]any)
				Expect(keysOf(im)).To(Equal(fields))
				Expect(im["secret"]).To(HaveSuffix("********"))
			}

			// PATCH changes only what it sends.
			p := admin.send(jsonReq("PATCH", coll+"/"+id, map[string]any{"name": "Ci_Deploy_2"}, h...))
			Expect(p.status).To(Equal(200), p.body)
			pd := p.json()["data"].(map[string]any)
			Expect(pd["name"]).To(Equal("Ci_Deploy_2"))
			Expect(pd["ips"]).To(Equal([]any{"10.0.0.0/8", "2001:db8::/32"}), "leaving ips out never wipes them")
			Expect(pd["secret"]).To(Equal(masked))
			k := keyByDisplayName(ctx, fns, "Ci_Deploy_2")
			Expect(k).NotTo(BeNil())
			Expect(k.Spec.AllowedIPs).To(Equal([]keysv1.IPOrCIDR{"10.0.0.0/8", "2001:db8::/32"}))
			Expect(k.Spec.RoleRef.Name).To(Equal("f-role"))
			Eventually(func() int {
				return admin.send(jsonReq("PATCH", coll+"/"+id, map[string]any{"role_id": role}, h...)).status
			}).Should(Equal(200))
			Expect(keyByDisplayName(ctx, fns, "Ci_Deploy_2").Spec.AllowedIPs).To(HaveLen(2), "a PATCH of role_id leaves ips alone")
			var pn response
			Eventually(func() int {
				pn = admin.send(jsonReq("PATCH", coll+"/"+id, map[string]any{"ips": nil}, h...))
				return pn.status
			}).Should(Equal(200))
			Expect(pn.json()["data"].(map[string]any)["ips"]).To(BeNil(), "ips: null clears them, and answers null")
			Expect(keyByDisplayName(ctx, fns, "Ci_Deploy_2").Spec.AllowedIPs).To(BeEmpty())

			Eventually(func() string { return review(ctx, tok).Reason }).WithTimeout(10 * time.Second).Should(Equal(accessv1.ReasonValid))

			// DELETE answers the key as it was, state deleted.
			var d response
			Eventually(func() int {
				d = admin.send(request{method: "DELETE", path: coll + "/" + id, headers: h})
				return d.status
			}).Should(Equal(200))
			dd := d.json()["data"].(map[string]any)
			Expect(dd["id"]).To(Equal(id))
			Expect(dd["secret"]).To(Equal(masked))
			Expect(dd["state"].(map[string]any)["current"]).To(Equal("deleted"))
			deleted := rfc3339UTC(dd["events"].(map[string]any)["deleted"])
			Expect(deleted).To(BeTemporally("~", time.Now(), time.Minute))
			Expect(rfc3339UTC(dd["state"].(map[string]any)["changed"])).To(Equal(deleted))
			plaintextOnce(tok, "", g, gi, l, p, pn, d)
			Eventually(func() string { return review(ctx, tok).Reason }).WithTimeout(2 * time.Second).Should(Equal(accessv1.ReasonNotFound))
			Expect(review(ctx, masked).Valid).To(BeFalse(), "a masked secret is never a valid key")
		})

		It("hub: a key made with kubectl has no role and the platform as creator; list pages, sorts and filters", func() {
			coll := "/v1/hubs/current/api-keys"
			h := []string{"X-Hub-Id", fns}
			_, tok := makeKey(ctx, fns, "f-kubectl", nil)
			var g response
			Eventually(func() string {
				g = admin.send(getReq(coll+"?filter%5Bname%5D=f-kubectl", h...))
				return g.body
			}).Should(ContainSubstring(`"f-kubectl"`))
			item := g.json()["data"].([]any)[0].(map[string]any)
			Expect(item["role_id"]).To(Equal("000000000000000000000000"), "a valid ID that no role has (issue 13)")
			Expect(admin.send(getReq("/v1/hubs/current/roles/000000000000000000000000", h...)).status).To(Equal(404))
			Expect(item["creator"]).To(Equal(map[string]any{"id": "000000000000000000000000", "type": "platform"}))
			Expect(item["ips"]).To(BeNil())
			Expect(item["secret"]).To(Equal(token.DisplayPrefix(tok) + "********"))

			for _, n := range []string{"pg-b", "PG-a", "pg-c"} {
				r := admin.send(jsonReq("POST", coll, map[string]any{"name": n, "role_id": role}, h...))
				Expect(r.status).To(Equal(201), r.body)
				rememberToken(r.json()["data"].(map[string]any)["secret"].(string))
			}
			names := func(q string) []string {
				r := admin.send(getReq(coll+"?"+q, h...))
				ExpectWithOffset(1, r.status).To(Equal(200), r.body)
				var out []string
				for _, it := range r.json()["data"].([]any) {
					out = append(out, it.(map[string]any)["name"].(string))
				}
				return out
			}
			Eventually(func() []string { return names("filter%5Bsearch%5D=pg-") }).Should(Equal([]string{"PG-a", "pg-b", "pg-c"}), "search ignores case; default order by name")
			Expect(names("filter%5Bsearch%5D=pg-&page%5Bsize%5D=2")).To(Equal([]string{"PG-a", "pg-b"}))
			Expect(names("filter%5Bsearch%5D=pg-&page%5Bsize%5D=2&page%5Bnumber%5D=2")).To(Equal([]string{"pg-c"}))
			Expect(names("filter%5Bsearch%5D=pg-&page%5Bsize%5D=2&page%5Bnumber%5D=3")).To(BeEmpty())
			Expect(names("filter%5Bsearch%5D=pg-&sort=-name")).To(Equal([]string{"pg-c", "pg-b", "PG-a"}))
			Expect(names("filter%5Bsearch%5D=pg-&filter%5Brole_id%5D=" + role + "&sort=-created,name")).To(HaveLen(3))
			Expect(names("filter%5Bname%5D=pg-b&unrelated=1")).To(Equal([]string{"pg-b"}), "parameters outside the families are ignored")
			all := names("page%5Bsize%5D=100")
			Expect(len(all)).To(BeNumerically(">=", 4))
			Expect(names("")).To(HaveLen(min(len(all), 20)), "20 per page by default")
			empty := admin.send(getReq(coll+"?filter%5Bname%5D=nothing-here", h...))
			Expect(empty.body).To(MatchJSON(`{"data":[]}`), "an empty list is [], not null")
		})

		It("ApiKeyReview names the key's role in status.apiKey.role", func() {
			// Issue 4: status.apiKey{namespace, name, keyPrefix, role,
			// permissions, expiresAt}.
			_, tok := makeKey(ctx, fns, "f-reviewed-role", func(k *keysv1.ApiKey) {
				k.Spec.RoleRef = &keysv1.RoleReference{Name: "f-role"}
				k.Spec.Permissions = []keysv1.Permission{"invoices:read"}
			})
			var st accessv1.ApiKeyReviewStatus
			Eventually(func() string { st = review(ctx, tok); return st.Reason }).Should(Equal(accessv1.ReasonValid))
			Expect(st.ApiKey).NotTo(BeNil())
			Expect(st.ApiKey.Permissions).To(Equal([]string{"invoices:read"}))
			Expect(st.ApiKey.ExpiresAt).NotTo(BeNil())
			Expect(st.ApiKey.Role).To(Equal("f-role"))
		})

		It("consecutive updates of one key succeed (tenant PUT, hub PATCH)", func() {
			// Each update must see the previous one: the store patches what
			// changed rather than writing back its (possibly stale) cached
			// copy, which the API server would refuse as a conflict.
			coll := "/api/" + fns + "/admin/apiKeys"
			k, _ := makeKey(ctx, fns, "f-edited", nil)
			id := keystore.IDOf(k.UID)
			waitVisible(admin, fns, "f-edited")
			var failures []string
			for i := 0; i < 10; i++ {
				for _, req := range []request{
					jsonReq("PUT", coll+"/f-edited", map[string]any{"enabled": i%2 == 0}),
					jsonReq("PATCH", "/v1/hubs/current/api-keys/"+id, map[string]any{"ips": []string{fmt.Sprintf("10.0.%d.0/24", i)}}, "X-Hub-Id", fns),
				} {
					if r := admin.send(req); r.status != 200 {
						failures = append(failures, fmt.Sprintf("%s → %d %s", describeCall(req), r.status, r.body))
					}
				}
			}
			Expect(failures).To(BeEmpty())
		})

		It("tenant admin: a write key can disable (revoke) a key that holds more, but not widen it", func() {
			// docs/dialects/tenant-admin.md: an update that only sets
			// enabled needs no grant check; one that sets permissions is
			// checked as the key will be.
			_, weak := makeKey(ctx, fns, "f-weak", func(k *keysv1.ApiKey) {
				k.Spec.Permissions = []keysv1.Permission{"tenant.apiKey:write", "tenant.apiKey:read"}
			})
			_, strongTok := makeKey(ctx, fns, "f-strong", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
			weakCaller := apiKey(weak)
			path := "/api/" + fns + "/admin/apiKeys/f-strong"
			waitVisible(admin, fns, "f-strong")

			before := snapshot(ctx, fns)
			r := weakCaller.send(jsonReq("PUT", path, map[string]any{"enabled": false, "permissions": []string{"*"}}))
			expectTenantError(r, 403)
			Expect(snapshot(ctx, fns)).To(Equal(before), "a refused update changes nothing")
			Expect(review(ctx, strongTok).Reason).To(Equal(accessv1.ReasonValid))

			r = weakCaller.send(jsonReq("PUT", path, map[string]any{"enabled": false}))
			Expect(r.status).To(Equal(200), r.body)
			Expect(r.body).To(MatchJSON(`{"name":"f-strong","enabled":false,"permissions":["*"]}`))
			Eventually(func() string { return review(ctx, strongTok).Reason }).WithTimeout(5 * time.Second).Should(Equal(accessv1.ReasonDisabled))
		})
	})
})
