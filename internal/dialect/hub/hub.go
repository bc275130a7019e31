// Package hub serves the hub dialect: a container platform's public API
// for a hub's API keys, /v1/hubs/current/api-keys[/{apikeyId}], and the
// roles they are given, /v1/hubs/current/roles[/{roleId}], with the hub
// named by the X-Hub-Id header (a namespace). It only translates
// shapes, status codes and errors; keystore.Store does the work and
// internal/access decides who may do it.
package hub

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// BasePath is the collection of a hub's API keys.
const BasePath = "/v1/hubs/current/api-keys"

// HubHeader names the hub (a Kubernetes namespace).
const HubHeader = "X-Hub-Id"

// scopes: the product has one capability for every API-key operation.
var scopes = access.Scopes{Read: capability, Write: capability}

// Options tune the handler; the zero value is ready to use.
type Options struct {
	// Now is the clock for the deletion time; nil means time.Now.
	Now func() time.Time
}

type handler struct {
	store keystore.Store
	now   func() time.Time
}

// New returns the handler for every path under /v1/hubs/. The server's
// middleware has authenticated the request (access.WithCaller or
// access.WithFailure) and bounded its body.
func New(store keystore.Store) http.Handler { return NewWithOptions(store, Options{}) }

// NewWithOptions is New with options.
func NewWithOptions(store keystore.Store, o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &handler{store: store, now: o.Now}
}

// request is what the routing found out about a request.
type request struct {
	hub string
	id  string // the raw {apikeyId}, for single-key operations
}

type operation func(h *handler, w http.ResponseWriter, r *http.Request, req request) error

// ServeHTTP has the shape of every dialect: serve, and answer its error
// in the dialect's own shape.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		writeError(w, r, err)
	}
}

// serve checks, in order: credentials, path and method, the hub header,
// the hub's existence; then the operation parses its input and calls the
// store, which authorises.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	if err := access.Authenticated(r.Context()); err != nil {
		return err
	}
	op, id, e := route(r.Method, r.URL.Path)
	if e != nil {
		return e
	}
	hub, e := hubID(r.Header)
	if e != nil {
		return e
	}
	exists, err := h.store.NamespaceExists(r.Context(), hub)
	switch {
	case err != nil:
		return err
	case !exists:
		return hubNotFound()
	}
	return op(h, w, r, request{hub: hub, id: id})
}

// route finds the operation for a method and path.
func route(method, path string) (operation, string, *apiError) {
	if rest, ok := strings.CutPrefix(path, BasePath); ok {
		return routeIn(method, rest, map[string]operation{http.MethodGet: (*handler).list, http.MethodPost: (*handler).create},
			map[string]operation{http.MethodGet: (*handler).get, http.MethodPatch: (*handler).update, http.MethodDelete: (*handler).delete})
	}
	if rest, ok := strings.CutPrefix(path, RolesPath); ok {
		return routeIn(method, rest, map[string]operation{http.MethodGet: (*handler).listRoles},
			map[string]operation{http.MethodGet: (*handler).getRole})
	}
	return nil, "", noSuchURI()
}

// routeIn routes what follows a collection's path: nothing (the
// collection) or one segment (an item).
func routeIn(method, rest string, collection, item map[string]operation) (operation, string, *apiError) {
	switch {
	case rest == "":
		return pick(method, collection)
	case len(rest) > 1 && rest[0] == '/' && !strings.Contains(rest[1:], "/"):
		op, _, e := pick(method, item)
		return op, rest[1:], e
	}
	return nil, "", noSuchURI()
}

func noSuchURI() *apiError {
	return newError(http.StatusNotFound, codeURI, "no such resource: the API keys are at "+BasePath+"[/{apikeyId}], the roles at "+RolesPath+"[/{roleId}]")
}

// pick finds the method's operation. The product's error enum has no 405:
// a method a path does not serve is its 404.uri, with the Allow header a
// 405 would carry.
func pick(method string, ops map[string]operation) (operation, string, *apiError) {
	if op, ok := ops[method]; ok {
		return op, "", nil
	}
	allow := slices.Sorted(maps.Keys(ops))
	e := newError(http.StatusNotFound, codeURI, "the method "+quoteShort(method)+" is not served here; use "+strings.Join(allow, ", "))
	e.allow = strings.Join(allow, ", ")
	return nil, "", e
}

// hubID reads X-Hub-Id: one namespace name (an RFC 1123 label).
func hubID(header http.Header) (string, *apiError) {
	values := header.Values(HubHeader)
	switch {
	case len(values) == 0 || values[0] == "":
		return "", newError(http.StatusUnprocessableEntity, codeMissing, "the X-Hub-Id header is required: the ID of the hub (a Kubernetes namespace)")
	case len(values) > 1:
		return "", invalidArg("send the X-Hub-Id header once")
	case !isLabel(values[0]):
		return "", invalidArg("the X-Hub-Id header must be a hub ID: a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)")
	}
	return values[0], nil
}

func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// errorFor maps an error of the store, of access or of the handler to
// the dialect's answer.
func errorFor(r *http.Request, err error) *apiError {
	return fromError(errorContext{retryAfter: access.RetryAfter(r.Context())}, err)
}

// writeError answers err in the dialect's error shape, with the headers
// its status needs. The cause of a 5xx goes to the request's logger (the
// API server puts one in every dialect request's context), never to the
// client.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errorFor(r, err)
	if e.cause != nil {
		logr.FromContextOrDiscard(r.Context()).Error(e.cause, "hub dialect request failed", "method", r.Method, "path", r.URL.Path)
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="apikey-operator"`)
	case e.Status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfterSeconds(e.retryAfter))
	}
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	httpjson.Write(w, e.Status, "application/json", errorEnvelope{Error: e})
}

// retryAfterSeconds rounds up, and never says 0: that would invite an
// immediate retry.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
