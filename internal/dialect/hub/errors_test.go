package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Every error status and code, each with the store unchanged.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	existing := f.createKey(t, managerA, hubA, "existing", f.manage.ID, `["10.0.0.1"]`)
	id := existing["id"].(string)
	other := f.createKey(t, managerA, hubA, "other", f.manage.ID, "")["id"].(string)
	one := BasePath + "/" + id
	role := f.manage.ID
	create := func(body string) call {
		return call{method: "POST", path: BasePath, as: managerA, body: strings.ReplaceAll(body, "ROLE", role)}
	}
	patch := func(body string) call {
		return call{method: "PATCH", path: one, as: managerA, body: strings.ReplaceAll(body, "ROLE", role)}
	}
	unknownID := strings.Repeat("ab", 12)
	ip101 := `["` + strings.TrimSuffix(strings.Repeat(`10.0.0.1","`, 101), `","`) + `"]`
	cases := []struct {
		name   string
		c      call
		status int
		code   string
		source string
	}{
		// 401, 403 and 429 from authentication, before anything else.
		{"no credentials", call{method: "GET", path: BasePath}, 401, codeAuth, ""},
		{"no credentials, unknown path", call{method: "GET", path: "/v1/hubs/x"}, 401, codeAuth, ""},
		{"invalid credentials", call{method: "POST", path: BasePath, body: `{}`, failure: &access.Failure{Err: access.ErrInvalidCredentials}}, 401, codeAuth, ""},
		{"unauthenticated failure", call{method: "GET", path: BasePath, failure: &access.Failure{Err: access.ErrUnauthenticated}}, 401, codeAuth, ""},
		{"IP not allowed", call{method: "GET", path: BasePath, failure: &access.Failure{Err: access.ErrIPNotAllowed}}, 403, codeInvalidIP, ""},
		{"rate limited", call{method: "GET", path: BasePath, failure: &access.Failure{Err: access.ErrRateLimited, RetryAfter: 1500 * time.Millisecond}}, 429, codeRateLimit, ""},
		// Routing.
		{"unknown path", call{method: "GET", path: "/v1/hubs/current/members", as: managerA}, 404, codeURI, ""},
		{"other hub in the path", call{method: "GET", path: "/v1/hubs/hub-a/api-keys", as: managerA}, 404, codeURI, ""},
		{"prefix only", call{method: "GET", path: BasePath + "x", as: managerA}, 404, codeURI, ""},
		{"trailing slash", call{method: "GET", path: BasePath + "/", as: managerA}, 404, codeURI, ""},
		{"nested", call{method: "GET", path: one + "/secret", as: managerA}, 404, codeURI, ""},
		// The product's enum has no 405: 404.uri with Allow.
		{"PUT on the collection", call{method: "PUT", path: BasePath, as: managerA}, 404, codeURI, ""},
		{"POST on a key", call{method: "POST", path: one, body: `{}`, as: managerA}, 404, codeURI, ""},
		{"POST on the roles", call{method: "POST", path: RolesPath, body: `{}`, as: managerA}, 404, codeURI, ""},
		{"DELETE on a role", call{method: "DELETE", path: RolesPath + "/" + strings.Repeat("a", 24), as: managerA}, 404, codeURI, ""},
		{"a path under a role", call{method: "GET", path: RolesPath + "/" + strings.Repeat("a", 24) + "/x", as: managerA}, 404, codeURI, ""},
		{"an unknown role", call{method: "GET", path: RolesPath + "/" + strings.Repeat("a", 24), as: managerA}, 404, codeRole, ""},
		{"a role ID that is not one", call{method: "GET", path: RolesPath + "/manager", as: managerA}, 404, codeRole, ""},
		{"roles without the capability", call{method: "GET", path: RolesPath, as: keyCaller(hubA, "invoices:read")}, 403, codePermissions, ""},
		{"roles of another hub", call{method: "GET", path: RolesPath, hub: hubB, as: managerA}, 403, codeWrongHub, ""},
		{"a role of another hub", call{method: "GET", path: RolesPath + "/" + f.roleB.ID, hub: hubB, as: managerA}, 403, codeWrongHub, ""},
		{"roles: unknown sort", call{method: "GET", path: RolesPath + "?sort=rank", as: managerA}, 422, codeInvalid, ""},
		{"roles: unknown filter", call{method: "GET", path: RolesPath + "?filter%5Bstate%5D=live", as: managerA}, 422, codeInvalid, ""},
		{"roles: page[size] 0", call{method: "GET", path: RolesPath + "?page%5Bsize%5D=0", as: managerA}, 422, codeInvalid, ""},
		// The hub.
		{"no hub header", call{method: "GET", path: BasePath, hub: "-", as: managerA}, 422, codeMissing, ""},
		{"bad hub header", call{method: "GET", path: BasePath, hub: "Hub_A", as: managerA}, 422, codeInvalid, ""},
		{"long hub header", call{method: "GET", path: BasePath, hub: strings.Repeat("a", 64), as: managerA}, 422, codeInvalid, ""},
		{"two hub headers", call{method: "GET", path: BasePath, as: managerA, header: http.Header{HubHeader: {hubB}}}, 422, codeInvalid, ""},
		// A key may not learn which hubs exist: an unknown hub looks like
		// another hub (as the Kubernetes-backed store answers).
		{"unknown hub", call{method: "GET", path: BasePath, hub: "nosuch", as: managerA}, 403, codeWrongHub, ""},
		{"unknown hub for a key", call{method: "DELETE", path: one, hub: "nosuch", as: managerA}, 403, codeWrongHub, ""},
		// Authorisation.
		{"key without the capability", call{method: "GET", path: BasePath, as: keyCaller(hubA, "invoices:read")}, 403, codePermissions, ""},
		{"key without the capability creates", call{method: "POST", path: BasePath, as: keyCaller(hubA, "invoices:read"), body: `{"name":"n","role_id":"` + role + `"}`}, 403, codePermissions, ""},
		{"key of another hub", call{method: "GET", path: BasePath, hub: hubB, as: managerA}, 403, codeWrongHub, ""},
		{"key of another hub deletes", call{method: "DELETE", path: one, as: keyCaller(hubB, "*")}, 403, codeWrongHub, ""},
		{"Kubernetes user without RBAC", call{method: "GET", path: BasePath, as: kubeUser("mallory")}, 403, codePermissions, ""},
		{"Kubernetes viewer creates", call{method: "POST", path: BasePath, as: kubeUser("viewer"), body: `{"name":"n","role_id":"` + f.manage.ID + `"}`}, 403, codePermissions, ""},
		{"Kubernetes viewer deletes", call{method: "DELETE", path: one, as: kubeUser("viewer")}, 403, codePermissions, ""},
		{"escalation", create(`{"name":"n","role_id":"` + f.all.ID + `"}`), 403, codePermissions, "/role_id"},
		// 404.
		{"unknown key", call{method: "GET", path: BasePath + "/" + unknownID, as: managerA}, 404, codeKey, ""},
		{"malformed key ID", call{method: "GET", path: BasePath + "/not-an-id", as: managerA}, 404, codeKey, ""},
		{"patch unknown key", call{method: "PATCH", path: BasePath + "/" + unknownID, body: `{"name":"x"}`, as: managerA}, 404, codeKey, ""},
		{"delete unknown key", call{method: "DELETE", path: BasePath + "/" + unknownID, as: managerA}, 404, codeKey, ""},
		{"unknown role", create(`{"name":"n","role_id":"` + unknownID + `"}`), 404, codeRole, "/role_id"},
		{"patch unknown role", patch(`{"role_id":"` + unknownID + `"}`), 404, codeRole, "/role_id"},
		// 409.
		{"duplicate name", create(`{"name":"existing","role_id":"ROLE"}`), 409, codeDuplicate, "/name"},
		{"rename to a taken name", call{method: "PATCH", path: BasePath + "/" + other, body: `{"name":"existing"}`, as: managerA}, 409, codeDuplicate, "/name"},
		// The product's enum has no 413: 422.max-exceeded.
		{"body over 1 MiB", create(`{"name":"` + strings.Repeat("a", MaxBodyBytes) + `","role_id":"ROLE"}`), 422, codeMaxExceeded, ""},
		{"patch over 1 MiB", patch(`{"ips":["` + strings.Repeat("1", MaxBodyBytes) + `"]}`), 422, codeMaxExceeded, ""},
		// 415.
		{"no content type", call{method: "POST", path: BasePath, body: `{}`, contentType: "-", as: managerA}, 415, codeContentType, ""},
		{"text/plain", call{method: "POST", path: BasePath, body: `{}`, contentType: "text/plain", as: managerA}, 415, codeContentType, ""},
		{"form", call{method: "PATCH", path: one, body: `name=x`, contentType: "application/x-www-form-urlencoded", as: managerA}, 415, codeContentType, ""},
		{"latin1", call{method: "POST", path: BasePath, body: `{}`, contentType: "application/json; charset=latin1", as: managerA}, 415, codeContentType, ""},
		{"bad media type", call{method: "POST", path: BasePath, body: `{}`, contentType: "application/json;;", as: managerA}, 415, codeContentType, ""},
		// 400.
		{"malformed JSON", create(`{"name":`), 400, codeSyntax, ""},
		{"empty body", call{method: "POST", path: BasePath, contentType: "application/json", as: managerA}, 400, codeSyntax, ""},
		{"array body", create(`[{"name":"n"}]`), 400, codeSyntax, ""},
		{"null body", patch(`null`), 400, codeSyntax, ""},
		{"string body", patch(`"x"`), 400, codeSyntax, ""},
		{"trailing data", create(`{"name":"n","role_id":"ROLE"} {}`), 400, codeSyntax, ""},
		{"trailing garbage", patch(`{"name":"n"}x`), 400, codeSyntax, ""},
		{"trailing comma", patch(`{"name":"n",}`), 400, codeSyntax, ""},
		{"duplicate member", create(`{"name":"a","role_id":"ROLE","name":"b"}`), 400, codeSyntax, "/name"},
		{"duplicate member escaped", patch(`{"name":"a","n\u0061me":"b"}`), 400, codeSyntax, "/name"},
		{"bad query on get", call{method: "GET", path: one + "?include=%", as: managerA}, 400, codeSyntax, ""},
		// 422: missing.
		{"missing name", create(`{"role_id":"ROLE"}`), 422, codeMissing, "/name"},
		{"missing role_id", create(`{"name":"n"}`), 422, codeMissing, "/role_id"},
		{"missing both", create(`{}`), 422, codeMissing, "/name"},
		// 422: invalid.
		{"unknown field", create(`{"name":"n","role_id":"ROLE","permissions":["*"]}`), 422, codeInvalid, "/permissions"},
		{"field in other case", create(`{"Name":"n","role_id":"ROLE"}`), 422, codeInvalid, "/Name"},
		{"patch unknown field", patch(`{"secret":"x"}`), 422, codeInvalid, "/secret"},
		{"patch id", patch(`{"id":"` + unknownID + `"}`), 422, codeInvalid, "/id"},
		{"name empty", create(`{"name":"","role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name with a line break", create(`{"name":"my\nkey","role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name with NUL", create(`{"name":"my\u0000key","role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name with a bidi isolate", create(`{"name":"a\u2066b","role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name too long", create(`{"name":"` + strings.Repeat("a", keystore.MaxNameLen+1) + `","role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name number", create(`{"name":5,"role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name null", create(`{"name":null,"role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"name object", create(`{"name":{"a":1,"a":2},"role_id":"ROLE"}`), 422, codeInvalid, "/name"},
		{"patch name empty", patch(`{"name":""}`), 422, codeInvalid, "/name"},
		{"patch name null", patch(`{"name":null}`), 422, codeInvalid, "/name"},
		{"role_id not hex", create(`{"name":"n","role_id":"manager"}`), 422, codeInvalid, "/role_id"},
		{"role_id short", create(`{"name":"n","role_id":"abc"}`), 422, codeInvalid, "/role_id"},
		{"role_id number", create(`{"name":"n","role_id":1}`), 422, codeInvalid, "/role_id"},
		{"role_id null", create(`{"name":"n","role_id":null}`), 422, codeInvalid, "/role_id"},
		{"patch role_id null", patch(`{"role_id":null}`), 422, codeInvalid, "/role_id"},
		{"ips string", create(`{"name":"n","role_id":"ROLE","ips":"10.0.0.1"}`), 422, codeInvalid, "/ips"},
		{"ips numbers", create(`{"name":"n","role_id":"ROLE","ips":[1]}`), 422, codeInvalid, "/ips"},
		{"ips with null", patch(`{"ips":[null]}`), 422, codeInvalid, "/ips"},
		{"ips object", patch(`{"ips":{}}`), 422, codeInvalid, "/ips"},
		{"ips not an IP", create(`{"name":"n","role_id":"ROLE","ips":["10.0.0.300"]}`), 422, codeInvalid, "/ips"},
		{"ips bad CIDR", patch(`{"ips":["10.0.0.0/33"]}`), 422, codeInvalid, "/ips"},
		{"ips empty string", patch(`{"ips":[""]}`), 422, codeInvalid, "/ips"},
		{"ips over the limit", patch(`{"ips":` + ip101 + `}`), 422, codeInvalid, "/ips"},
		{"bad include", call{method: "GET", path: one + "?include=keys", as: managerA}, 422, codeInvalid, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.do(t, call{method: "GET", path: BasePath + "?sort=id", as: adminK8s}).raw
			res := f.do(t, c.c)
			e := res.errorObject(t)
			if res.status != c.status || e["code"] != c.code {
				t.Fatalf("got %d %v, want %d %s: %s", res.status, e["code"], c.status, c.code, res.raw)
			}
			if src, _ := e["source"].(string); src != c.source {
				t.Errorf("source %q, want %q", src, c.source)
			}
			if after := f.do(t, call{method: "GET", path: BasePath + "?sort=id", as: adminK8s}).raw; after != before {
				t.Errorf("the request changed the store:\n%s\n%s", before, after)
			}
			checkHeaders(t, c.status, res)
		})
	}
}

func checkHeaders(t *testing.T, status int, res result) {
	t.Helper()
	switch status {
	case 401:
		if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
			t.Error("401 without WWW-Authenticate")
		}
	case 429:
		if res.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2", res.header.Get("Retry-After"))
		}
	case 404:
		e := res.errorObject(t)
		if strings.Contains(e["detail"].(string), "not served") && res.header.Get("Allow") == "" {
			t.Error("a method not served without Allow")
		}
	case 403:
		e := res.errorObject(t)
		extra, _ := e["extra"].(map[string]any)
		if e["code"] == codePermissions && e["source"] == nil && extra["capability"] != capability {
			t.Errorf("403.permissions without extra.capability: %s", res.raw)
		}
	}
}

func TestRetryAfterRounding(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", time.Minute: "60"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

// failingStore answers every call with err.
type failingStore struct {
	keystore.Store
	err         error
	nsFails     bool
	createFails bool
}

func (s failingStore) NamespaceExists(ctx context.Context, ns string) (bool, error) {
	if s.nsFails {
		return false, s.err
	}
	return s.Store.NamespaceExists(ctx, ns)
}

func (s failingStore) List(context.Context, access.Scopes, string, keystore.ListOptions) ([]*keystore.Key, int, error) {
	return nil, 0, s.err
}

func (s failingStore) Create(ctx context.Context, sc access.Scopes, ns string, n keystore.NewKey) (*keystore.Issued, error) {
	if s.createFails {
		return nil, s.err
	}
	return s.Store.Create(ctx, sc, ns, n)
}

func TestStoreFailures(t *testing.T) {
	internal := errors.New("etcdserver: leader changed at 10.1.2.3")
	cases := []struct {
		name   string
		store  failingStore
		c      call
		status int
		code   string
	}{
		{"unavailable", failingStore{err: fmt.Errorf("list: %w", keystore.ErrUnavailable)}, call{method: "GET", path: BasePath, as: managerA}, 503, codeUnavailable},
		{"namespace check unavailable", failingStore{err: keystore.ErrUnavailable, nsFails: true}, call{method: "GET", path: BasePath, as: managerA}, 503, codeUnavailable},
		{"unexpected", failingStore{err: internal}, call{method: "GET", path: BasePath, as: managerA}, 500, codeInternal},
		{"unexpected on create with a role", failingStore{err: internal, createFails: true}, call{method: "POST", path: BasePath, as: managerA, body: `{"name":"n","role_id":"` + strings.Repeat("0", 24) + `"}`}, 500, codeInternal},
		{"namespace gone", failingStore{err: keystore.ErrNamespaceNotFound}, call{method: "GET", path: BasePath, as: managerA}, 404, codeHub},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.store.Store = f.store
			// The handler as production builds it (New), with the
			// logger where the API server puts it: in the request's
			// context. The old handler logged only to a logger passed in
			// Options, which production never set, so the causes of hub
			// 500s were lost.
			var logged []error
			h := withLogger(New(c.store), recordingLogger(&logged))
			res := doHandler(t, h, c.c)
			if res.status != c.status || res.code(t) != c.code {
				t.Fatalf("%d %s", res.status, res.raw)
			}
			if strings.Contains(res.raw, "etcd") || strings.Contains(res.raw, "10.1.2.3") {
				t.Errorf("internals leaked: %s", res.raw)
			}
			if c.status >= 500 && len(logged) != 1 {
				t.Errorf("the cause of a %d must be logged once, got %v", c.status, logged)
			}
		})
	}
}
