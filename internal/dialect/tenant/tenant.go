// Package tenant serves the tenant-admin dialect: /api/{tenantId}/admin/apiKeys
// and /api/{tenantId}/admin/apiKeys/{keyName}, where the tenant is a
// namespace and a key is known by its display name. It translates shapes
// only; keystore.Store does the work and the authorisation.
// docs/dialects/tenant-admin.md records every choice made where the
// product's document is silent.
package tenant

import (
	"bytes"
	_ "embed"
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Scopes of the product; ["*"] grants both.
var Scopes = access.Scopes{Read: "tenant.apiKey:read", Write: "tenant.apiKey:write"}

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the dialect's OpenAPI 3.1 document.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// New returns the handler for every path under /api/.
func New(store keystore.Store) http.Handler { return &handler{store: store} }

type handler struct {
	store keystore.Store
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		writeError(w, r, err)
	}
}

// serve checks, in order: credentials, route, method, tenant, then hands
// over to the operation.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	if err := access.Authenticated(r.Context()); err != nil {
		return err
	}
	rt, err := parsePath(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	op, allow := h.operation(r.Method, rt.item)
	if op == nil {
		w.Header().Set("Allow", allow)
		return errorf(http.StatusMethodNotAllowed, "%s is not allowed here; allowed: %s", r.Method, allow)
	}
	if err := h.checkTenant(r, rt.tenant); err != nil {
		return err
	}
	return op(w, r, rt)
}

type route struct {
	tenant, key string
	item        bool
}

type operation func(w http.ResponseWriter, r *http.Request, rt route) error

func (h *handler) operation(method string, item bool) (operation, string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	switch {
	case !item && method == http.MethodGet:
		return h.list, ""
	case !item && method == http.MethodPost:
		return h.create, ""
	case item && method == http.MethodGet:
		return h.get, ""
	case item && method == http.MethodPut:
		return h.update, ""
	case item && method == http.MethodDelete:
		return h.delete, ""
	case item:
		return nil, "GET, HEAD, PUT, DELETE"
	}
	return nil, "GET, HEAD, POST"
}

// parsePath accepts /api/{tenantId}/admin/apiKeys[/{keyName}].
func parsePath(escaped string) (route, error) {
	segs, err := httpjson.Segments(escaped)
	if err != nil {
		return route{}, errorf(http.StatusBadRequest, "the path has a malformed %%-escape")
	}
	if len(segs) < 4 || len(segs) > 5 || segs[0] != "api" || segs[2] != "admin" || segs[3] != "apiKeys" {
		return route{}, errorf(http.StatusNotFound, "no such endpoint; the API keys are at /api/{tenantId}/admin/apiKeys")
	}
	rt := route{tenant: segs[1]}
	if len(segs) == 5 {
		rt.key, rt.item = segs[4], true
	}
	return rt, nil
}

// checkTenant answers 404 for a tenant that is no namespace. A name that
// cannot be a namespace is not looked up.
func (h *handler) checkTenant(r *http.Request, tenant string) error {
	if len(validation.IsDNS1123Label(tenant)) == 0 {
		exists, err := h.store.NamespaceExists(r.Context(), tenant)
		if err != nil || exists {
			return err
		}
	}
	return errorf(http.StatusNotFound, "tenant %q not found", truncate(tenant))
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, rt route) error {
	keys, _, err := h.store.List(r.Context(), Scopes, rt.tenant, keystore.ListOptions{})
	if err != nil {
		return err
	}
	out := make([]definition, 0, len(keys))
	for _, k := range keys {
		out = append(out, definitionOf(k))
	}
	httpjson.Write(w, http.StatusOK, "application/json", out)
	return nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, rt route) error {
	var req createRequest
	if err := httpjson.Decode(r, &req); err != nil {
		return err
	}
	nk, err := req.newKey()
	if err != nil {
		return err
	}
	issued, err := h.store.Create(keystore.WithDelivery(r.Context()), Scopes, rt.tenant, nk)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/"+rt.tenant+"/admin/apiKeys/"+url.PathEscape(issued.Name))
	httpjson.Write(w, http.StatusCreated, "application/json", createdOf(issued))
	if httpjson.Sent(w) {
		issued.Delivered()
	}
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := validateName(rt.key); err != nil {
		return err
	}
	k, err := h.store.Get(r.Context(), Scopes, rt.tenant, keystore.ByName(rt.key))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", definitionOf(k))
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := validateName(rt.key); err != nil {
		return err
	}
	var req updateRequest
	if err := httpjson.Decode(r, &req); err != nil {
		return err
	}
	u, err := req.keyUpdate()
	if err != nil {
		return err
	}
	k, err := h.store.Update(r.Context(), Scopes, rt.tenant, keystore.ByName(rt.key), u)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", definitionOf(k))
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := validateName(rt.key); err != nil {
		return err
	}
	if _, err := h.store.Delete(r.Context(), Scopes, rt.tenant, keystore.ByName(rt.key)); err != nil {
		return err
	}
	httpjson.NoContent(w)
	return nil
}

// validateName refuses a keyName in a path that no key can have, with
// the store's own rule for names.
func validateName(name string) error {
	return keystore.ValidateName(name)
}

// checkPermissions refuses repeats: the permissions are a set, and a
// silently shortened list would not round-trip.
func checkPermissions(perms []string) error {
	seen := make(map[string]bool, len(perms))
	for _, p := range perms {
		if seen[p] {
			return errorf(http.StatusBadRequest, "permissions: %q appears more than once", truncate(p))
		}
		seen[p] = true
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
