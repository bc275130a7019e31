package tenant

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/keystore/keystoretest"
)

// Callers of the tests. Kubernetes users: alice may do anything, bob
// only read, eve nothing; the service account ci may do anything in
// tenant-a. API keys of tenant-a: writer (both scopes and invoices:*),
// reader (read scope), wild (tenant.apiKey:*), star (*), noscope; other is
// tenant-b's key with *.
var (
	alice   = userCaller("alice")
	bob     = userCaller("bob")
	eve     = userCaller("eve")
	ci      = userCaller("system:serviceaccount:tenant-a:ci")
	writer  = keyCaller("tenant-a", "writer", "tenant.apiKey:read", "tenant.apiKey:write", "invoices:*")
	reader  = keyCaller("tenant-a", "reader", "tenant.apiKey:read")
	wild    = keyCaller("tenant-a", "wild", "tenant.apiKey:*")
	star    = keyCaller("tenant-a", "star", "*")
	noscope = keyCaller("tenant-a", "noscope", "invoices:*")
	other   = keyCaller("tenant-b", "other", "*")
)

func userCaller(name string) *access.Caller {
	return &access.Caller{User: &user.DefaultInfo{Name: name}}
}

func keyCaller(ns, name string, perms ...string) *access.Caller {
	return &access.Caller{
		User: &user.DefaultInfo{Name: "apikey:" + ns + "/" + name, Groups: []string{access.APIKeyGroup}},
		Key:  &access.KeyCaller{Namespace: ns, Name: name, Permissions: perms},
	}
}

func rbac(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	name, verb := a.GetUser().GetName(), a.GetVerb()
	switch {
	case name == "alice",
		name == "bob" && (verb == "get" || verb == "list"),
		name == "system:serviceaccount:tenant-a:ci" && a.GetNamespace() == "tenant-a":
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC rule allows it", nil
}

func newStore() *keystoretest.Store {
	return keystoretest.New(&access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(rbac)}, "tenant-a", "tenant-b")
}

// storeKey reads a key straight from the store.
func storeKey(t *testing.T, s keystore.Store, ns, name string) *keystore.Key {
	t.Helper()
	k, err := s.Get(access.WithCaller(context.Background(), alice), Scopes, ns, keystore.ByName(name))
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return k
}

func storeKeys(t *testing.T, s keystore.Store, ns string) []*keystore.Key {
	t.Helper()
	keys, _, err := s.List(access.WithCaller(context.Background(), alice), Scopes, ns, keystore.ListOptions{})
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return keys
}

// req is one request to the handler.
type req struct {
	method, path, body string
	caller             *access.Caller
	failure            *access.Failure
	contentType        string // default application/json when there is a body
}

func serve(h http.Handler, q req) *httptest.ResponseRecorder {
	r := httptest.NewRequest(q.method, "http://localhost:8443"+q.path, strings.NewReader(q.body))
	if q.body != "" && q.contentType == "" {
		q.contentType = "application/json"
	}
	if q.contentType != "" {
		r.Header.Set("Content-Type", q.contentType)
	}
	ctx := r.Context()
	if q.caller != nil {
		ctx = access.WithCaller(ctx, q.caller)
	}
	if q.failure != nil {
		ctx = access.WithFailure(ctx, q.failure)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20) // as the server does
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	return w
}

// do serves q and fails the test unless the status is want.
func do(t *testing.T, h http.Handler, q req, want int) *httptest.ResponseRecorder {
	t.Helper()
	w := serve(h, q)
	if w.Code != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", q.method, q.path, w.Code, want, w.Body)
	}
	if want >= 400 {
		checkError(t, w)
	}
	return w
}

// checkError asserts the dialect's error body: exactly error and message,
// the code matching the status.
func checkError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if got := fields(t, w.Body.Bytes()); !slices.Equal(got, []string{"error", "message"}) {
		t.Errorf("error body has %v, want error and message", got)
	}
	var e errorBody
	decodeJSON(t, w.Body.Bytes(), &e)
	if e.Error != codes[w.Code] || e.Error == "" || e.Message == "" {
		t.Errorf("error %+v for status %d", e, w.Code)
	}
	return e
}

// fields are the sorted property names of a JSON object.
func fields(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	decodeJSON(t, b, &m)
	return keys(m)
}

func keys[V any](m map[string]V) []string {
	out := slices.Collect(maps.Keys(m))
	slices.Sort(out)
	return out
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
}

// definitionFields are the only properties list and get may return.
var definitionFields = []string{"enabled", "name", "permissions"}

func decodeDefinition(t *testing.T, b []byte) definition {
	t.Helper()
	if got := fields(t, b); !slices.Equal(got, definitionFields) {
		t.Errorf("definition has %v, want exactly %v", got, definitionFields)
	}
	var d definition
	decodeJSON(t, b, &d)
	return d
}

func decodeCreated(t *testing.T, b []byte) createdKey {
	t.Helper()
	if got := fields(t, b); !slices.Equal(got, []string{"enabled", "name", "permissions", "token"}) {
		t.Errorf("create response has %v", got)
	}
	var c createdKey
	decodeJSON(t, b, &c)
	return c
}
