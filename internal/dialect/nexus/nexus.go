// Package nexus serves the "Nexus" dialect: POST /v1/api-keys exactly as
// the vendor documents it, with GET /v1/api-keys, GET and DELETE
// /v1/api-keys/{id} as companions, and RFC 7807 problem details for every
// error. It translates shapes only; keystore.Store does the work and the
// authorisation. docs/dialects/nexus.md records every choice made where
// the vendor's document is silent.
package nexus

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

const (
	// BasePath is the collection; the server routes it and everything
	// under it here.
	BasePath = "/v1/api-keys"
	// NamespaceHeader names the namespace for callers that belong to none
	// (Kubernetes users other than service accounts).
	NamespaceHeader = "X-Namespace"
	// PermissionsAttribute keeps the permissions string exactly as sent.
	PermissionsAttribute = "nexus.permissions"
)

// Scopes: the vendor's one capability covers reading and writing.
var Scopes = access.Scopes{Read: "api-keys-manage", Write: "api-keys-manage"}

//go:embed openapi.json
var openAPI []byte

// OpenAPI is the dialect's OpenAPI 3 document.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// New returns the handler for every path under BasePath.
func New(store keystore.Store) http.Handler { return &handler{store: store} }

type handler struct {
	store keystore.Store
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		writeError(w, r, err)
	}
}

// serve checks, in order: credentials, route, method, namespace, then
// hands over to the operation.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	if err := access.Authenticated(r.Context()); err != nil {
		return err
	}
	id, item, err := parsePath(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	op, allow := h.operation(r.Method, item)
	if op == nil {
		w.Header().Set("Allow", allow)
		return errorf(http.StatusMethodNotAllowed, "%s is not allowed here; allowed: %s", r.Method, allow)
	}
	ns, err := h.namespace(r)
	if err != nil {
		return err
	}
	return op(w, r, ns, id)
}

type operation func(w http.ResponseWriter, r *http.Request, ns, id string) error

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
	case item && method == http.MethodDelete:
		return h.delete, ""
	case item:
		return nil, "GET, HEAD, DELETE"
	}
	return nil, "GET, HEAD, POST"
}

// parsePath accepts BasePath and BasePath/{id}.
func parsePath(escaped string) (id string, item bool, err error) {
	segs, err := httpjson.Segments(escaped)
	if err != nil {
		return "", false, errorf(http.StatusBadRequest, "the path has a malformed %%-escape")
	}
	if len(segs) < 2 || len(segs) > 3 || segs[0] != "v1" || segs[1] != "api-keys" {
		return "", false, errorf(http.StatusNotFound, "no such endpoint; the API keys are at %s", BasePath)
	}
	if len(segs) == 2 {
		return "", false, nil
	}
	return segs[2], true, nil
}

// namespace is the X-Namespace header when sent, else the caller's own:
// an API key's or a service account's.
func (h *handler) namespace(r *http.Request) (string, error) {
	ns := r.Header.Get(NamespaceHeader)
	if ns == "" {
		own, ok := access.CallerNamespace(r.Context())
		if !ok {
			return "", errorf(http.StatusBadRequest, "the caller belongs to no namespace: name one in the %s header", NamespaceHeader)
		}
		ns = own
	} else if len(validation.IsDNS1123Label(ns)) > 0 {
		return "", errorf(http.StatusBadRequest, "the %s header must be a namespace name (a DNS-1123 label)", NamespaceHeader)
	}
	exists, err := h.store.NamespaceExists(r.Context(), ns)
	switch {
	case err != nil:
		return "", err
	case !exists:
		return "", errorf(http.StatusNotFound, "namespace %q not found", ns)
	}
	return ns, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, ns, _ string) error {
	var req createRequest
	// The vendor's server is ASP.NET Core: bind as it does.
	if err := httpjson.DecodeAsASPNET(r, &req); err != nil {
		return err
	}
	nk, err := req.newKey()
	if err != nil {
		return err
	}
	issued, err := h.store.Create(keystore.WithDelivery(r.Context()), Scopes, ns, nk)
	if err != nil {
		return err
	}
	w.Header().Set("Location", BasePath+"/"+url.PathEscape(issued.Name))
	httpjson.Write(w, http.StatusCreated, "application/json", view(&issued.Key, &issued.Token))
	if httpjson.Sent(w) {
		issued.Delivered()
	}
	return nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, ns, _ string) error {
	keys, _, err := h.store.List(r.Context(), Scopes, ns, keystore.ListOptions{})
	if err != nil {
		return err
	}
	out := make([]apiKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, view(k, nil))
	}
	httpjson.Write(w, http.StatusOK, "application/json", out)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, ns, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	k, err := h.store.Get(r.Context(), Scopes, ns, keystore.ByName(id))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, "application/json", view(k, nil))
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, ns, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	if _, err := h.store.Delete(r.Context(), Scopes, ns, keystore.ByName(id)); err != nil {
		return err
	}
	httpjson.NoContent(w)
	return nil
}

// validateID refuses an id in a path that no key can have, with the
// store's own rule for names: any text of up to 128 characters without
// control characters (ops@example.com, tenant:42), URL-encoded in the path.
func validateID(id string) error {
	return keystore.ValidateName(id)
}
