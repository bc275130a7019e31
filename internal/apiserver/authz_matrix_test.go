package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// The authorisation matrix of issue 4: two tenants (namespaces A and B)
// × callers × operations × {own tenant A, other tenant B}, for each of
// the three dialects, every cell's status written out below; then the
// ApiKeyReview API, through kube-apiserver's aggregator and directly.
//
// Every refused cell also proves it changed nothing in either namespace
// (ApiKey specs, labels, annotations; the operator's Secrets); every
// allowed write proves its effect through the Kubernetes API.

// The operations, in the order of the tables' columns.
type mxOp int

const (
	opList mxOp = iota
	opGet
	opCreate
	opUpdate
	opDelete
)

var mxOps = []mxOp{opList, opGet, opCreate, opUpdate, opDelete}

func (o mxOp) String() string { return [...]string{"list", "get", "create", "update", "delete"}[o] }

// A row of the matrix: a caller.
type mxRow struct {
	name string
	// apiKey: the caller presents an API key (of tenant A), so the Nexus
	// dialect takes the namespace from it (no X-Namespace for tenant A).
	apiKey bool
	// badCredentials: sent from a fresh source address (see request.fresh).
	badCredentials bool
}

var (
	rowRead      = mxRow{name: "read key (tenant.apiKey:read)", apiKey: true}
	rowWrite     = mxRow{name: "write key (tenant.apiKey:write, api-keys-manage)", apiKey: true}
	rowStar      = mxRow{name: "* key", apiKey: true}
	rowNoScope   = mxRow{name: "key without a scope (invoices:read)", apiKey: true}
	rowDisabled  = mxRow{name: "disabled * key", apiKey: true, badCredentials: true}
	rowBad       = mxRow{name: "bad (unknown) key", apiKey: true, badCredentials: true}
	rowRBAC      = mxRow{name: "Kubernetes user with RBAC on apikeys in A"}
	rowNoRBAC    = mxRow{name: "Kubernetes user without RBAC"}
	rowAnonymous = mxRow{name: "anonymous", badCredentials: true}

	rowOnlyList   = mxRow{name: "Kubernetes user with only list in A"}
	rowOnlyGet    = mxRow{name: "Kubernetes user with only get in A"}
	rowOnlyCreate = mxRow{name: "Kubernetes user with only create in A"}
	rowOnlyUpdate = mxRow{name: "Kubernetes user with only update in A"}
	rowOnlyDelete = mxRow{name: "Kubernetes user with only delete in A"}
)

// The expected statuses: [tenant][op], tenant 0 = own tenant A, 1 = other
// tenant B; ops list, get, create, update, delete.
type mxCells [2][5]int

var all401 = mxCells{{401, 401, 401, 401, 401}, {401, 401, 401, 401, 401}}
var all403 = mxCells{{403, 403, 403, 403, 403}, {403, 403, 403, 403, 403}}

// Tenant admin: read scope for list/get, write scope for create (POST),
// update (PUT) and delete; 204 on delete.
var tenantMatrix = []struct {
	row   mxRow
	cells mxCells
}{
	{rowRead, mxCells{{200, 200, 403, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowWrite, mxCells{{403, 403, 201, 200, 204}, {403, 403, 403, 403, 403}}},
	{rowStar, mxCells{{200, 200, 201, 200, 204}, {403, 403, 403, 403, 403}}},
	{rowNoScope, all403},
	{rowDisabled, all401},
	{rowBad, all401},
	{rowRBAC, mxCells{{200, 200, 201, 200, 204}, {403, 403, 403, 403, 403}}},
	{rowNoRBAC, all403},
	{rowAnonymous, all401},
	// One RBAC verb each: the verb of the operation and nothing else.
	{rowOnlyList, mxCells{{200, 403, 403, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyGet, mxCells{{403, 200, 403, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyCreate, mxCells{{403, 403, 201, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyUpdate, mxCells{{403, 403, 403, 200, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyDelete, mxCells{{403, 403, 403, 403, 204}, {403, 403, 403, 403, 403}}},
}

// Hub: api-keys-manage for everything; update is PATCH; delete answers
// 200 with the key.
var hubMatrix = []struct {
	row   mxRow
	cells mxCells
}{
	{rowRead, all403},
	{rowWrite, mxCells{{200, 200, 201, 200, 200}, {403, 403, 403, 403, 403}}},
	{rowStar, mxCells{{200, 200, 201, 200, 200}, {403, 403, 403, 403, 403}}},
	{rowNoScope, all403},
	{rowDisabled, all401},
	{rowBad, all401},
	{rowRBAC, mxCells{{200, 200, 201, 200, 200}, {403, 403, 403, 403, 403}}},
	{rowNoRBAC, all403},
	{rowAnonymous, all401},
	{rowOnlyList, mxCells{{200, 403, 403, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyGet, mxCells{{403, 200, 403, 403, 403}, {403, 403, 403, 403, 403}}},
	// A create with a role needs only the create verb: the store resolves
	// role_id itself (it once needed get too, through GetRole).
	{rowOnlyCreate, mxCells{{403, 403, 201, 403, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyUpdate, mxCells{{403, 403, 403, 200, 403}, {403, 403, 403, 403, 403}}},
	{rowOnlyDelete, mxCells{{403, 403, 403, 403, 200}, {403, 403, 403, 403, 403}}},
}

// Hub roles (issue 13): GET /v1/hubs/current/roles and .../roles/{roleId}
// follow the keys' rules: api-keys-manage, or RBAC list (the list) and
// get (one role) on apikeys, in the caller's own hub only. Columns: list,
// get.
var hubRolesMatrix = []struct {
	row   mxRow
	cells [2][2]int
}{
	{rowRead, [2][2]int{{403, 403}, {403, 403}}},
	{rowWrite, [2][2]int{{200, 200}, {403, 403}}},
	{rowStar, [2][2]int{{200, 200}, {403, 403}}},
	{rowNoScope, [2][2]int{{403, 403}, {403, 403}}},
	{rowDisabled, [2][2]int{{401, 401}, {401, 401}}},
	{rowBad, [2][2]int{{401, 401}, {401, 401}}},
	{rowRBAC, [2][2]int{{200, 200}, {403, 403}}},
	{rowNoRBAC, [2][2]int{{403, 403}, {403, 403}}},
	{rowAnonymous, [2][2]int{{401, 401}, {401, 401}}},
	{rowOnlyList, [2][2]int{{200, 403}, {403, 403}}},
	{rowOnlyGet, [2][2]int{{403, 200}, {403, 403}}},
	{rowOnlyCreate, [2][2]int{{403, 403}, {403, 403}}},
	{rowOnlyUpdate, [2][2]int{{403, 403}, {403, 403}}},
	{rowOnlyDelete, [2][2]int{{403, 403}, {403, 403}}},
}

// Nexus: api-keys-manage for everything. The dialect has no update: the
// update column is PUT /v1/api-keys/{id}, a 405 for every authenticated
// caller (the method is checked before the namespace).
var nexusMatrix = []struct {
	row   mxRow
	cells mxCells
}{
	{rowRead, mxCells{{403, 403, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowWrite, mxCells{{200, 200, 201, 405, 204}, {403, 403, 403, 405, 403}}},
	{rowStar, mxCells{{200, 200, 201, 405, 204}, {403, 403, 403, 405, 403}}},
	{rowNoScope, mxCells{{403, 403, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowDisabled, all401},
	{rowBad, all401},
	{rowRBAC, mxCells{{200, 200, 201, 405, 204}, {403, 403, 403, 405, 403}}},
	{rowNoRBAC, mxCells{{403, 403, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowAnonymous, all401},
	{rowOnlyList, mxCells{{200, 403, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowOnlyGet, mxCells{{403, 200, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowOnlyCreate, mxCells{{403, 403, 201, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowOnlyUpdate, mxCells{{403, 403, 403, 405, 403}, {403, 403, 403, 405, 403}}},
	{rowOnlyDelete, mxCells{{403, 403, 403, 405, 204}, {403, 403, 403, 405, 403}}},
}

// The ApiKeyReview API: cluster-scoped like TokenReview, so the "tenant"
// is whose key is reviewed (A's or B's); status 201 carries the verdict.
type reviewRow struct {
	name string
	// through kube-apiserver's aggregator, and directly to the API server
	aggregated, direct [2]int
}

var reviewMatrix = []reviewRow{
	{name: "Kubernetes user allowed to create apikeyreviews", aggregated: [2]int{201, 201}, direct: [2]int{201, 201}},
	{name: "Kubernetes user with RBAC on apikeys in A", aggregated: [2]int{403, 403}, direct: [2]int{403, 403}},
	{name: "Kubernetes user without RBAC", aggregated: [2]int{403, 403}, direct: [2]int{403, 403}},
	{name: "anonymous", aggregated: [2]int{403, 403}, direct: [2]int{403, 403}},
	{name: "* API key of A as a bearer token", aggregated: [2]int{401, 401}, direct: [2]int{401, 401}},
	{name: "bad bearer token", aggregated: [2]int{401, 401}, direct: [2]int{401, 401}},
}

var _ = Describe("Authorisation matrix", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()

	var (
		nsA, nsB string
		// callers by row name; identity: how a key they create records
		// its creator (keys.apikey-operator.io/created-by).
		callers  = map[string]caller{}
		identity = map[string]string{}
		// roleID of "mx-role" (no permissions) by namespace.
		roleID = map[string]string{}
		// the shared target of get/update and of refused deletes.
		targetID = map[string]string{}
		admin    = map[string]caller{} // a * key per namespace
		tokA     string                // the * key of A, for reviews
		tokB     string                // the * key of B
		created  int                   // names of created keys
	)
	const target = "mx-target"

	BeforeAll(func() {
		nsA, nsB = newNamespace(ctx), newNamespace(ctx)
		for _, ns := range []string{nsA, nsB} {
			roleID[ns] = makeRole(ctx, ns, "mx-role")
		}
		key := func(row mxRow, name string, enabled bool, perms ...string) {
			_, tok := makeKey(ctx, nsA, name, func(k *keysv1.ApiKey) {
				for _, p := range perms {
					k.Spec.Permissions = append(k.Spec.Permissions, keysv1.Permission(p))
				}
				if !enabled {
					k.Spec.Enabled = ptr(false)
				}
			})
			callers[row.name] = apiKey(tok)
			identity[row.name] = "apikey:" + nsA + "/" + name
		}
		key(rowRead, "mx-read", true, "tenant.apiKey:read")
		key(rowWrite, "mx-write", true, "tenant.apiKey:write", "api-keys-manage")
		key(rowStar, "mx-star", true, "*")
		key(rowNoScope, "mx-noscope", true, "invoices:read")
		key(rowDisabled, "mx-disabled", false, "*")
		tokA = getSecretToken(ctx, nsA, "mx-star")
		callers[rowBad.name] = apiKey(unknownToken())
		callers[rowAnonymous.name] = anonymous
		admin[nsA] = callers[rowStar.name]
		_, tokB = makeKey(ctx, nsB, "mx-star-b", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		admin[nsB] = apiKey(tokB)

		user := func(row mxRow, name string, verbs ...string) {
			if len(verbs) > 0 {
				grantKeys(ctx, nsA, name, verbs...)
			}
			callers[row.name] = kubeUser(name)
			identity[row.name] = name
		}
		user(rowRBAC, "mx-rbac", "get", "list", "create", "update", "delete")
		user(rowNoRBAC, "mx-none")
		user(rowOnlyList, "mx-only-list", "list")
		user(rowOnlyGet, "mx-only-get", "get")
		user(rowOnlyCreate, "mx-only-create", "create")
		user(rowOnlyUpdate, "mx-only-update", "update")
		user(rowOnlyDelete, "mx-only-delete", "delete")

		for _, ns := range []string{nsA, nsB} {
			k, _ := makeKey(ctx, ns, target, func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "mx-role"} })
			targetID[ns] = keystore.IDOf(k.UID)
			waitVisible(admin[ns], ns, target)
			waitRoleVisible(admin[ns], ns, roleID[ns])
		}
	})

	// freshTarget is a new key for a delete that is meant to succeed.
	freshTarget := func(ns string) (name, id string) {
		created++
		name = fmt.Sprintf("mx-del-%d", created)
		k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		Expect(k8s.Create(ctx, k)).To(Succeed())
		waitVisible(admin[ns], ns, name)
		return name, keystore.IDOf(k.UID)
	}

	type cell struct {
		dialect string
		row     mxRow
		op      mxOp
		other   bool // tenant B
		want    int
	}

	// run sends one cell's request and checks status, error shape, and
	// what changed.
	run := func(c cell) {
		ns, otherNS := nsA, nsB
		if c.other {
			ns, otherNS = nsB, nsA
		}
		who := callers[c.row.name]
		Expect(who.headers != nil || who.cert != nil || c.row == rowAnonymous).To(BeTrue(), "caller not set up")
		name, id := target, targetID[ns]
		success := c.want < 300
		if c.op == opDelete && success {
			name, id = freshTarget(ns)
		}
		created++
		newName := fmt.Sprintf("Mx_Created_%d", created)
		before, beforeOther := snapshot(ctx, ns), snapshot(ctx, otherNS)
		current := keyByDisplayName(ctx, ns, name)
		Expect(current).NotTo(BeNil())
		if c.op == opUpdate {
			// Let the controller finish with the target first: an update
			// racing its status write can meet a stale cache and answer
			// 503 (see the BUG test "consecutive updates" in
			// dialect_status_test.go); this matrix is about authorisation.
			Eventually(func() int64 {
				current = keyByDisplayName(ctx, ns, name)
				return current.Generation - current.Status.ObservedGeneration
			}).WithTimeout(10 * time.Second).Should(BeZero())
			time.Sleep(20 * time.Millisecond)
		}

		var req request
		ipsSent := fmt.Sprintf("10.%d.%d.0/24", created/250, created%250)
		enabledSent := !(current.Spec.Enabled == nil || *current.Spec.Enabled)
		switch c.dialect {
		case "tenant":
			coll := "/api/" + ns + "/admin/apiKeys"
			req = [...]request{
				getReq(coll),
				getReq(coll + "/" + name),
				jsonReq("POST", coll, map[string]any{"name": newName}),
				jsonReq("PUT", coll+"/"+name, map[string]any{"enabled": enabledSent}),
				{method: "DELETE", path: coll + "/" + name},
			}[c.op]
		case "hub":
			coll := "/v1/hubs/current/api-keys"
			h := []string{"X-Hub-Id", ns}
			req = [...]request{
				getReq(coll, h...),
				getReq(coll+"/"+id, h...),
				jsonReq("POST", coll, map[string]any{"name": newName, "role_id": roleID[ns]}, h...),
				jsonReq("PATCH", coll+"/"+id, map[string]any{"ips": []string{ipsSent}}, h...),
				{method: "DELETE", path: coll + "/" + id, headers: h},
			}[c.op]
		case "nexus":
			var h []string
			if c.other || !c.row.apiKey {
				h = []string{"X-Namespace", ns}
			}
			coll := "/v1/api-keys"
			req = [...]request{
				getReq(coll, h...),
				getReq(coll+"/"+name, h...),
				jsonReq("POST", coll, map[string]any{"id": newName}, h...),
				jsonReq("PUT", coll+"/"+name, map[string]any{"description": "changed"}, h...),
				{method: "DELETE", path: coll + "/" + name, headers: h},
			}[c.op]
		}
		req.fresh = c.row.badCredentials
		r := who.send(req)
		Expect(r.status).To(Equal(c.want), "%s as %s: %s", describeCall(req), c.row.name, r.body)
		Expect(snapshot(ctx, otherNS)).To(Equal(beforeOther), "the other tenant must not change")

		if !success {
			switch c.dialect {
			case "tenant":
				expectTenantError(r, c.want)
			case "nexus":
				expectProblem(r, c.want, req.path)
			case "hub":
				code := map[int]string{401: "401.auth-invalid", 403: "403.permissions"}[c.want]
				if c.want == 403 && c.other && c.row.apiKey {
					code = "403.wrong-hub"
				}
				e := expectHubError(r, c.want, code)
				if code == "403.permissions" {
					Expect(e["extra"]).To(Equal(map[string]any{"capability": "api-keys-manage"}), r.body)
				}
			}
			Expect(snapshot(ctx, ns)).To(Equal(before), "a refused request must change nothing")
			return
		}
		Expect(r.body).NotTo(ContainSubstring("sha256:"))
		switch c.op {
		case opList:
			Expect(r.body).To(ContainSubstring(`"` + target + `"`))
			Expect(snapshot(ctx, ns)).To(Equal(before))
		case opGet:
			Expect(r.body).To(ContainSubstring(`"` + target + `"`))
			Expect(snapshot(ctx, ns)).To(Equal(before))
		case opCreate:
			k := keyByDisplayName(ctx, ns, newName)
			Expect(k).NotTo(BeNil(), "the created key must exist")
			Expect(k.Annotations).To(HaveKeyWithValue(keystore.CreatedByAnnotation, identity[c.row.name]))
			tok := ""
			switch c.dialect {
			case "tenant":
				tok, _ = r.json()["token"].(string)
			case "nexus":
				tok, _ = r.json()["secret"].(string)
			case "hub":
				tok, _ = r.json()["data"].(map[string]any)["secret"].(string)
			}
			Expect(tok).NotTo(BeEmpty(), r.body)
			rememberToken(tok)
		case opUpdate:
			k := keyByDisplayName(ctx, ns, name)
			switch c.dialect {
			case "tenant":
				Expect(k.Spec.Enabled).To(Equal(&enabledSent))
			case "hub":
				Expect(k.Spec.AllowedIPs).To(Equal([]keysv1.IPOrCIDR{keysv1.IPOrCIDR(ipsSent)}))
			}
			Expect(k.Annotations).To(HaveKeyWithValue(keystore.ModifiedByAnnotation, identity[c.row.name]))
		case opDelete:
			Expect(keyByDisplayName(ctx, ns, name)).To(BeNil(), "the deleted key must be gone")
		}
	}

	for _, d := range []struct {
		name  string
		table []struct {
			row   mxRow
			cells mxCells
		}
	}{{"tenant", tenantMatrix}, {"hub", hubMatrix}, {"nexus", nexusMatrix}} {
		Context(d.name+" dialect", func() {
			for _, e := range d.table {
				for t, tenant := range []string{"own tenant A", "other tenant B"} {
					for _, op := range mxOps {
						c := cell{dialect: d.name, row: e.row, op: op, other: t == 1, want: e.cells[t][op]}
						It(fmt.Sprintf("%s | %s | %s → %d", e.row.name, op, tenant, c.want), func() { run(c) })
					}
				}
			}
		})
	}

	Context("hub roles", func() {
		for _, e := range hubRolesMatrix {
			for t, tenant := range []string{"own tenant A", "other tenant B"} {
				for op, opName := range []string{"list roles", "get role"} {
					want := e.cells[t][op]
					It(fmt.Sprintf("%s | %s | %s → %d", e.row.name, opName, tenant, want), func() {
						ns, otherNS := nsA, nsB
						if t == 1 {
							ns, otherNS = nsB, nsA
						}
						path := "/v1/hubs/current/roles"
						if op == 1 {
							path += "/" + roleID[ns]
						}
						req := getReq(path, "X-Hub-Id", ns)
						req.fresh = e.row.badCredentials
						before, beforeOther := snapshot(ctx, ns), snapshot(ctx, otherNS)
						r := callers[e.row.name].send(req)
						Expect(r.status).To(Equal(want), "%s as %s: %s", describeCall(req), e.row.name, r.body)
						Expect(snapshot(ctx, ns)).To(Equal(before))
						Expect(snapshot(ctx, otherNS)).To(Equal(beforeOther))
						if want == 200 {
							Expect(r.body).To(ContainSubstring(`"id":"` + roleID[ns] + `"`))
							Expect(r.body).To(ContainSubstring(`"name":"mx-role"`))
							Expect(r.body).NotTo(ContainSubstring(roleID[otherNS]))
							return
						}
						code := map[int]string{401: "401.auth-invalid", 403: "403.permissions"}[want]
						if want == 403 && t == 1 && e.row.apiKey {
							code = "403.wrong-hub"
						}
						expectHubError(r, want, code)
					})
				}
			}
		}
	})

	Context("ApiKeyReview", func() {
		// clients by row name, through kube-apiserver; and the same
		// identities as callers of the API server directly.
		clients := map[string]client.Client{}
		direct := map[string]caller{}

		BeforeAll(func() {
			reviewer := "mx-reviewer"
			Expect(k8s.Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: reviewer},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{accessv1.GroupVersion.Group}, Resources: []string{"apikeyreviews"}, Verbs: []string{"create"}}},
			})).To(Succeed())
			Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: reviewer},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reviewer},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: reviewer}},
			})).To(Succeed())
			newClient := func(cfg *rest.Config) client.Client {
				// The admin's mapper: these callers may not be allowed
				// discovery, and the request itself is what is tested.
				c, err := client.New(cfg, client.Options{Scheme: scheme(), Mapper: k8s.RESTMapper()})
				Expect(err).NotTo(HaveOccurred())
				return c
			}
			for row, user := range map[string]string{reviewMatrix[0].name: reviewer, reviewMatrix[1].name: "mx-rbac", reviewMatrix[2].name: "mx-none"} {
				cfg, err := env.AddUser(user)
				Expect(err).NotTo(HaveOccurred())
				clients[row] = newClient(cfg)
				direct[row] = kubeUser(user)
			}
			anon := rest.AnonymousClientConfig(env.Config)
			clients[reviewMatrix[3].name] = newClient(anon)
			direct[reviewMatrix[3].name] = anonymous
			withToken := func(tok string) *rest.Config {
				cfg := rest.AnonymousClientConfig(env.Config)
				cfg.BearerToken = tok
				return cfg
			}
			clients[reviewMatrix[4].name] = newClient(withToken(tokA))
			direct[reviewMatrix[4].name] = apiKey(tokA)
			bad := "not-a-kubernetes-token-" + strings.Repeat("x", 20)
			clients[reviewMatrix[5].name] = newClient(withToken(bad))
			direct[reviewMatrix[5].name] = apiKey(bad)
		})

		path := "/apis/" + accessv1.GroupVersion.String() + "/apikeyreviews"
		for _, e := range reviewMatrix {
			for t, tenant := range []string{"key of tenant A", "key of tenant B"} {
				It(fmt.Sprintf("through kube-apiserver | %s | %s → %d", e.name, tenant, e.aggregated[t]), func() {
					tok, ns := tokA, nsA
					if t == 1 {
						tok, ns = tokB, nsB
					}
					r := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tok, Namespaces: []string{ns}}}
					err := clients[e.name].Create(ctx, r)
					if e.aggregated[t] == 201 {
						Expect(err).NotTo(HaveOccurred())
						Expect(r.Status.Valid).To(BeTrue())
						Expect(r.Status.Reason).To(Equal(accessv1.ReasonValid))
						Expect(r.Status.ApiKey).NotTo(BeNil())
						Expect(r.Status.ApiKey.Namespace).To(Equal(ns))
						Expect(r.Spec.Key).To(BeEmpty(), "a review never returns the key")
						return
					}
					Expect(err).To(HaveOccurred())
					status, ok := err.(apierrors.APIStatus)
					Expect(ok).To(BeTrue(), err.Error())
					Expect(int(status.Status().Code)).To(Equal(e.aggregated[t]), err.Error())
					Expect(err.Error()).NotTo(ContainSubstring(tok))
				})
				It(fmt.Sprintf("directly | %s | %s → %d", e.name, tenant, e.direct[t]), func() {
					tok, ns := tokA, nsA
					if t == 1 {
						tok, ns = tokB, nsB
					}
					body := map[string]any{"apiVersion": accessv1.GroupVersion.String(), "kind": "ApiKeyReview", "spec": map[string]any{"key": tok, "namespaces": []string{ns}}}
					req := jsonReq(http.MethodPost, path, body)
					req.fresh = e.direct[t] == 401
					r := direct[e.name].send(req)
					Expect(r.status).To(Equal(e.direct[t]), r.body)
					Expect(r.body).NotTo(ContainSubstring(tok))
					if r.status == 201 {
						st := r.json()["status"].(map[string]any)
						Expect(st["valid"]).To(BeTrue())
						Expect(st["apiKey"].(map[string]any)["namespace"]).To(Equal(ns))
					} else {
						Expect(r.json()["kind"]).To(Equal("Status"), "the Kubernetes API answers in its own shape")
					}
				})
			}
		}
	})
})
