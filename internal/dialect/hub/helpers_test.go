package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/hub/hubspec"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/keystore/keystoretest"
)

const (
	hubA = "hub-a"
	hubB = "hub-b"
)

// fixture is a handler over an in-memory store with two hubs and roles.
type fixture struct {
	store *keystoretest.Store
	h     http.Handler
	// Roles in hub-a: manage grants exactly api-keys-manage, all grants
	// "*", reader grants invoices:read. roleB is in hub-b.
	manage, all, reader, roleB *keystore.Role
}

var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := keystoretest.New(&access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(kubeRBAC)}, hubA, hubB)
	f := &fixture{store: s, h: NewWithOptions(s, Options{Now: func() time.Time { return fixedNow }})}
	f.manage = s.AddRole(hubA, "manager", "api-keys-manage")
	f.all = s.AddRole(hubA, "admin", "*")
	f.reader = s.AddRole(hubA, "reader", "invoices:read")
	f.roleB = s.AddRole(hubB, "manager", "api-keys-manage")
	return f
}

// kubeRBAC stands for SubjectAccessReview: "admin" may do anything,
// "viewer" may get and list, everyone else nothing.
func kubeRBAC(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	switch name := a.GetUser().GetName(); {
	case name == "admin":
		return authorizer.DecisionAllow, "", nil
	case name == "viewer" && (a.GetVerb() == "get" || a.GetVerb() == "list"):
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionDeny, "RBAC: no rule", nil
}

// Callers.
func keyCaller(ns string, perms ...string) *access.Caller {
	return &access.Caller{
		User: &user.DefaultInfo{Name: "apikey:" + ns + "/caller", Groups: []string{access.APIKeyGroup}},
		Key:  &access.KeyCaller{Namespace: ns, Name: "caller", Permissions: perms},
	}
}

func kubeUser(name string) *access.Caller {
	return &access.Caller{User: &user.DefaultInfo{Name: name}}
}

var (
	managerA = keyCaller(hubA, "api-keys-manage")
	adminK8s = kubeUser("admin")
)

// call is one request to the handler.
type call struct {
	method, path, body string
	hub                string // X-Hub-Id; "-" sends none
	contentType        string // "" with a body: application/json; "-": none
	as                 *access.Caller
	failure            *access.Failure
	header             http.Header
	// query, when set, replaces the raw query after the request is built:
	// fuzzed queries need not survive request-line parsing.
	query string
}

// result is an answer, decoded.
type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (f *fixture) do(t testing.TB, c call) result {
	t.Helper()
	return doHandler(t, f.h, c)
}

func doHandler(t testing.TB, h http.Handler, c call) result {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	if c.query != "" {
		r.URL.RawQuery = c.query
	}
	switch {
	case c.hub == "":
		r.Header.Set(HubHeader, hubA)
	case c.hub != "-":
		r.Header.Set(HubHeader, c.hub)
	}
	for k, vs := range c.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	switch {
	case c.contentType == "" && c.body != "":
		r.Header.Set("Content-Type", "application/json")
	case c.contentType != "" && c.contentType != "-":
		r.Header.Set("Content-Type", c.contentType)
	}
	ctx := r.Context()
	if c.failure != nil {
		ctx = access.WithFailure(ctx, c.failure)
	} else if c.as != nil {
		ctx = access.WithCaller(ctx, c.as)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	res := result{status: w.Code, header: w.Header(), raw: w.Body.String()}
	// Every answer of every test here must match the product's schema.
	target := r.URL.RequestURI()
	if err := schema(t).Validate(c.method, target, w.Code, w.Header(), w.Body.Bytes()); err != nil {
		t.Errorf("%s %s → %d: the answer does not match the product's OpenAPI schema: %v\n%s", c.method, target, w.Code, err, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v: %q", c.method, c.path, err, res.raw)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("%s %s: Content-Type %q", c.method, c.path, got)
	}
	return res
}

var (
	schemaOnce sync.Once
	validator  *hubspec.Validator
	schemaErr  error
)

// schema is the validator of the product's OpenAPI files, loaded once.
func schema(t testing.TB) *hubspec.Validator {
	t.Helper()
	schemaOnce.Do(func() { validator, schemaErr = hubspec.Load() })
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	return validator
}

// data is the "data" member as an object.
func (r result) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := r.body["data"].(map[string]any)
	if !ok {
		t.Fatalf("answer %d has no data object: %s", r.status, r.raw)
	}
	return d
}

// list is the "data" member as an array of objects.
func (r result) list(t testing.TB) []map[string]any {
	t.Helper()
	items, ok := r.body["data"].([]any)
	if !ok {
		t.Fatalf("answer %d has no data array: %s", r.status, r.raw)
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)
	}
	return out
}

// errorObject checks the error envelope and returns its error.
func (r result) errorObject(t testing.TB) map[string]any {
	t.Helper()
	checkErrorEnvelope(t, r.status, r.body, r.raw)
	return r.body["error"].(map[string]any)
}

func checkErrorEnvelope(t testing.TB, status int, body map[string]any, raw string) {
	t.Helper()
	if len(body) != 2 {
		t.Fatalf("error envelope must be exactly {error, data}: %s", raw)
	}
	if d, ok := body["data"]; !ok || d != nil {
		t.Fatalf("error envelope needs data: null: %s", raw)
	}
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", raw)
	}
	code, _ := e["code"].(string)
	st, _ := e["status"].(float64)
	if int(st) != status || titles[code] == "" || e["title"] != titles[code] || e["detail"] == "" {
		t.Fatalf("error object does not match status %d: %s", status, raw)
	}
	if !strings.HasPrefix(code, strconv.Itoa(status)+".") {
		t.Fatalf("code %q does not start with the status: %s", code, raw)
	}
}

func (r result) code(t testing.TB) string {
	t.Helper()
	return r.errorObject(t)["code"].(string)
}

// createKey creates a key through the handler and returns its data.
func (f *fixture) createKey(t testing.TB, as *access.Caller, hub, name, roleID, ips string) map[string]any {
	t.Helper()
	body := `{"name":"` + name + `","role_id":"` + roleID + `"`
	if ips != "" {
		body += `,"ips":` + ips
	}
	res := f.do(t, call{method: "POST", path: BasePath, hub: hub, body: body + "}", as: as})
	if res.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, res.status, res.raw)
	}
	return res.data(t)
}

// keyCount lists hub's keys as the Kubernetes admin.
func (f *fixture) keyCount(t testing.TB, hub string) int {
	t.Helper()
	keys, n, err := f.store.List(access.WithCaller(context.Background(), adminK8s), scopes, hub, keystore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = keys
	return n
}

// jsonEscape is s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func urlQuery(s string) string { return url.QueryEscape(s) }
