package nexus

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore/keystoretest"
)

// Callers of the tests. Kubernetes users: alice may do anything, bob
// only read, eve nothing; the service account ci may do anything in
// tenant-a. API keys: writer holds the scope and invoices:*, star holds
// everything, noscope lacks the scope, other is tenant-b's.
var (
	alice   = userCaller("alice")
	bob     = userCaller("bob")
	eve     = userCaller("eve")
	ci      = userCaller("system:serviceaccount:tenant-a:ci")
	writer  = keyCaller("tenant-a", "writer", "api-keys-manage", "invoices:*")
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
	s := keystoretest.New(&access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(rbac)}, "tenant-a", "tenant-b")
	s.AddRole("tenant-a", "invoice-reader", "invoices:read")
	s.AddRole("tenant-a", "everything", "*")
	return s
}

// req is one request to the handler.
type req struct {
	method, path, body string
	caller             *access.Caller
	failure            *access.Failure
	contentType        string // default application/json when there is a body
	namespace          string // X-Namespace
}

func serve(h http.Handler, q req) *httptest.ResponseRecorder {
	r := httptest.NewRequest(q.method, "http://localhost:8443"+q.path, strings.NewReader(q.body))
	if q.body != "" && q.contentType == "" {
		q.contentType = "application/json"
	}
	if q.contentType != "" {
		r.Header.Set("Content-Type", q.contentType)
	}
	if q.namespace != "" {
		r.Header.Set(NamespaceHeader, q.namespace)
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
		checkProblem(t, w, q.path)
	}
	return w
}

// checkProblem asserts an RFC 7807 body with exactly the vendor's fields.
func checkProblem(t *testing.T, w *httptest.ResponseRecorder, path string) problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	fields := decodeObject(t, w.Body.Bytes())
	if len(fields) != 5 {
		t.Errorf("problem has fields %v, want type, title, detail, status, instance", keys(fields))
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem: %v", err)
	}
	if p.Status != w.Code || p.Title != http.StatusText(w.Code) || p.Type == "" || p.Detail == "" {
		t.Errorf("problem %+v does not match status %d", p, w.Code)
	}
	if u, err := url.Parse(path); path != "" && (err != nil || p.Instance != u.EscapedPath()) {
		t.Errorf("instance %q, want the request path %q", p.Instance, path)
	}
	return p
}

func decodeObject(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
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

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeKey reads a key response and checks it has exactly the vendor's
// eleven fields.
func decodeKey(t *testing.T, body io.Reader) apiKey {
	t.Helper()
	b, _ := io.ReadAll(body)
	if n := len(decodeObject(t, b)); n != 11 {
		t.Errorf("key has %d fields, want 11: %s", n, b)
	}
	var k apiKey
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	return k
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}
