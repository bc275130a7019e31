package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

const base = "/api/tenant-a/admin/apiKeys"

func TestCreate(t *testing.T) {
	store := newStore()
	h := New(store)
	w := do(t, h, req{method: "POST", path: base, caller: writer, body: `{"name":"Billing_Service.v2","enabled":false,"permissions":["invoices:read","invoices:eu:write"]}`}, 201)
	if loc := w.Header().Get("Location"); loc != base+"/Billing_Service.v2" {
		t.Errorf("Location %q", loc)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	got := decodeCreated(t, w.Body.Bytes())
	want := createdKey{Name: "Billing_Service.v2", Enabled: false, Permissions: []string{"invoices:read", "invoices:eu:write"}, Token: got.Token}
	if diff := cmp.Diff(want, got); diff != "" || !strings.HasPrefix(got.Token, "ak_") {
		t.Errorf("response (-want +got):\n%s token %q", diff, got.Token)
	}
	k := storeKey(t, store, "tenant-a", "Billing_Service.v2")
	if k.Enabled || !cmp.Equal(k.Permissions, want.Permissions) || k.CreatedBy != "apikey:tenant-a/writer" {
		t.Errorf("stored %+v", k)
	}
}

func TestCreateDefaults(t *testing.T) {
	for _, body := range []string{`{"name":"a"}`, `{"name":"a","enabled":null,"permissions":null}`} {
		got := decodeCreated(t, do(t, New(newStore()), req{method: "POST", path: base, caller: star, body: body}, 201).Body.Bytes())
		if !got.Enabled || got.Permissions == nil || len(got.Permissions) != 0 {
			t.Errorf("%s: %+v, want enabled and permissions []", body, got)
		}
	}
	got := decodeCreated(t, do(t, New(newStore()), req{method: "POST", path: base, caller: star, body: `{"name":"a","permissions":["*"]}`}, 201).Body.Bytes())
	if !cmp.Equal(got.Permissions, []string{"*"}) {
		t.Errorf("permissions %v", got.Permissions)
	}
}

func TestCreateBadInput(t *testing.T) {
	var many []string
	for i := range 65 {
		many = append(many, fmt.Sprintf("p%d:read", i))
	}
	tooMany, _ := json.Marshal(many)
	tests := []struct {
		name, body, mention string
	}{
		{"no name", `{"enabled":true}`, "name"},
		{"null name", `{"name":null}`, "name"},
		{"empty name", `{"name":""}`, "name"},
		{"space in name", `{"name":"bad name"}`, "name"},
		{"slash in name", `{"name":"a/b"}`, "name"},
		{"unicode name", `{"name":"caf\u00e9"}`, "name"},
		{"long name", `{"name":"` + strings.Repeat("n", 129) + `"}`, "name"},
		{"name as number", `{"name":1}`, "name"},
		{"enabled as string", `{"name":"a","enabled":"yes"}`, "enabled"},
		{"permissions as string", `{"name":"a","permissions":"a:b"}`, "permissions"},
		{"permission as number", `{"name":"a","permissions":[1]}`, "permissions"},
		{"null permission", `{"name":"a","permissions":[null]}`, "permissions"},
		{"empty permission", `{"name":"a","permissions":[""]}`, "permissions"},
		{"bad permission", `{"name":"a","permissions":["a b"]}`, "permissions"},
		{"repeated permission", `{"name":"a","permissions":["a:b","a:b"]}`, "permissions"},
		{"too many permissions", `{"name":"a","permissions":` + string(tooMany) + `}`, "permissions"},
		{"token field", `{"name":"a","token":"ak_x"}`, "token"},
		{"wrong case", `{"Name":"a"}`, "Name"},
		{"duplicate key", `{"name":"a","name":"b"}`, "name"},
		{"malformed", `{"name":"a"`, "JSON"},
		{"trailing data", `{"name":"a"}]`, "after"},
		{"array", `[{"name":"a"}]`, "object"},
		{"empty body", ``, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore()
			e := checkError(t, do(t, New(store), req{method: "POST", path: base, caller: star, body: tt.body, contentType: "application/json"}, 400))
			if !strings.Contains(e.Message, tt.mention) {
				t.Errorf("message %q does not mention %q", e.Message, tt.mention)
			}
			if n := len(storeKeys(t, store, "tenant-a")); n != 0 {
				t.Errorf("bad input created %d keys", n)
			}
		})
	}
}

func TestAuthorization(t *testing.T) {
	type cell struct {
		caller *access.Caller
		tenant string
		read   int // GET list
		write  int // POST
	}
	for name, c := range map[string]cell{
		"writer key":                  {writer, "tenant-a", 200, 201},
		"read-only key":               {reader, "tenant-a", 200, 403},
		"tenant.apiKey:* key":         {wild, "tenant-a", 200, 201},
		"* key":                       {star, "tenant-a", 200, 201},
		"key without scope":           {noscope, "tenant-a", 403, 403},
		"key of another tenant":       {other, "tenant-a", 403, 403},
		"writer key, other tenant":    {writer, "tenant-b", 403, 403},
		"key, unknown tenant":         {star, "tenant-zzz", 403, 403}, // looks like another tenant's
		"key, impossible tenant":      {star, "Tenant_A", 404, 404},
		"admin user":                  {alice, "tenant-b", 200, 201},
		"read-only user":              {bob, "tenant-a", 200, 403},
		"user without RBAC":           {eve, "tenant-a", 403, 403},
		"service account":             {ci, "tenant-a", 200, 201},
		"service account elsewhere":   {ci, "tenant-b", 403, 403},
		"admin user, unknown tenant":  {alice, "nope", 404, 404},
		"read-only user, other write": {bob, "tenant-b", 200, 403},
	} {
		t.Run(name, func(t *testing.T) {
			h := New(newStore())
			path := "/api/" + c.tenant + "/admin/apiKeys"
			do(t, h, req{method: "GET", path: path, caller: c.caller}, c.read)
			do(t, h, req{method: "POST", path: path, caller: c.caller, body: `{"name":"k"}`}, c.write)
		})
	}
}

func TestNoEscalation(t *testing.T) {
	tests := []struct {
		perms string
		want  int
	}{
		{`["invoices:read"]`, 201},
		{`["invoices:eu:read","invoices:*"]`, 201},
		{`["payments:read"]`, 403},
		{`["*"]`, 403},
		{`["tenant.apiKey:*"]`, 403},
		{`["tenant.apiKey:write"]`, 201},
	}
	for _, tt := range tests {
		h := New(newStore())
		do(t, h, req{method: "POST", path: base, caller: writer, body: `{"name":"k","permissions":` + tt.perms + `}`}, tt.want)
	}
	// Nor by update.
	store := newStore()
	h := New(store)
	do(t, h, req{method: "POST", path: base, caller: writer, body: `{"name":"k","permissions":["invoices:read"]}`}, 201)
	do(t, h, req{method: "PUT", path: base + "/k", caller: writer, body: `{"enabled":true,"permissions":["*"]}`}, 403)
	if k := storeKey(t, store, "tenant-a", "k"); !cmp.Equal(k.Permissions, []string{"invoices:read"}) {
		t.Errorf("refused update changed permissions to %v", k.Permissions)
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name    string
		failure *access.Failure
		caller  *access.Caller
		want    int
	}{
		{"no credentials", nil, nil, 401},
		{"invalid credentials", &access.Failure{Err: access.ErrInvalidCredentials}, nil, 401},
		{"revoked key over a caller", &access.Failure{Err: access.ErrInvalidCredentials}, star, 401},
		{"wrong address", &access.Failure{Err: access.ErrIPNotAllowed}, nil, 403},
		{"rate limited", &access.Failure{Err: access.ErrRateLimited, RetryAfter: 1200 * time.Millisecond}, nil, 429},
	}
	for _, tt := range tests {
		for _, q := range []req{
			{method: "GET", path: base},
			{method: "POST", path: base, body: `{"name":"k"}`},
			{method: "GET", path: base + "/k"},
			{method: "PUT", path: base + "/k", body: `{"enabled":true}`},
			{method: "DELETE", path: base + "/k"},
			{method: "GET", path: "/api/nope/admin/apiKeys"},
			{method: "GET", path: "/api/unknown/route"},
		} {
			q.caller, q.failure = tt.caller, tt.failure
			w := do(t, New(newStore()), q, tt.want)
			switch tt.want {
			case 401:
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s: no WWW-Authenticate", tt.name)
				}
			case 429:
				if got := w.Header().Get("Retry-After"); got != "2" {
					t.Errorf("%s: Retry-After %q, want 2", tt.name, got)
				}
			}
		}
	}
}

func TestGetListRoundTrip(t *testing.T) {
	store := newStore()
	h := New(store)
	names := []string{"UPPER_case", "lower.dots-1", "A", "x_Y_z"}
	var tokens []string
	for _, n := range names {
		c := decodeCreated(t, do(t, h, req{method: "POST", path: base, caller: writer, body: `{"name":"` + n + `","permissions":["invoices:read"]}`}, 201).Body.Bytes())
		tokens = append(tokens, c.Token)
	}
	do(t, h, req{method: "POST", path: "/api/tenant-b/admin/apiKeys", caller: other, body: `{"name":"theirs"}`}, 201)

	w := do(t, h, req{method: "GET", path: base, caller: reader}, 200)
	assertNoToken(t, w.Body.String(), tokens)
	var list []json.RawMessage
	decodeJSON(t, w.Body.Bytes(), &list)
	var got []string
	for _, raw := range list {
		got = append(got, decodeDefinition(t, raw).Name)
	}
	if want := []string{"A", "UPPER_case", "lower.dots-1", "x_Y_z"}; !cmp.Equal(got, want) {
		t.Errorf("list names %v, want %v (only tenant-a's, by name)", got, want)
	}

	for _, n := range names {
		w := do(t, h, req{method: "GET", path: base + "/" + n, caller: reader}, 200)
		assertNoToken(t, w.Body.String(), tokens)
		d := decodeDefinition(t, w.Body.Bytes())
		if want := (definition{Name: n, Enabled: true, Permissions: []string{"invoices:read"}}); !cmp.Equal(d, want) {
			t.Errorf("get %s = %+v", n, d)
		}
	}
	do(t, h, req{method: "GET", path: base + "/upper_case", caller: reader}, 404)
	do(t, h, req{method: "GET", path: base + "/theirs", caller: reader}, 404)
	do(t, h, req{method: "GET", path: "/api/tenant-b/admin/apiKeys/theirs", caller: reader}, 403)
	do(t, h, req{method: "HEAD", path: base + "/A", caller: reader}, 200)
}

func assertNoToken(t *testing.T, body string, tokens []string) {
	t.Helper()
	for _, tok := range tokens {
		if strings.Contains(body, tok) {
			t.Fatalf("body holds a token: %s", body)
		}
	}
	if strings.Contains(body, "sha256:") || strings.Contains(body, "token") || strings.Contains(body, "hash") {
		t.Fatalf("body holds a hash or token: %s", body)
	}
}

func TestUpdate(t *testing.T) {
	store := newStore()
	h := New(store)
	created := decodeCreated(t, do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"My_Key","permissions":["a:read","b:read"]}`}, 201).Body.Bytes())
	before := storeKey(t, store, "tenant-a", "My_Key")
	steps := []struct {
		body string
		want definition
	}{
		{`{"enabled":false}`, definition{"My_Key", false, []string{"a:read", "b:read"}}},
		{`{"enabled":true,"permissions":null}`, definition{"My_Key", true, []string{"a:read", "b:read"}}},
		{`{"enabled":true,"permissions":["c:write"]}`, definition{"My_Key", true, []string{"c:write"}}},
		{`{"enabled":false,"permissions":[]}`, definition{"My_Key", false, []string{}}},
	}
	for _, s := range steps {
		w := do(t, h, req{method: "PUT", path: base + "/My_Key", caller: star, body: s.body}, 200)
		assertNoToken(t, w.Body.String(), []string{created.Token})
		if got := decodeDefinition(t, w.Body.Bytes()); !cmp.Equal(got, s.want) {
			t.Errorf("PUT %s = %+v, want %+v", s.body, got, s.want)
		}
		if got := decodeDefinition(t, do(t, h, req{method: "GET", path: base + "/My_Key", caller: reader}, 200).Body.Bytes()); !cmp.Equal(got, s.want) {
			t.Errorf("GET after PUT %s = %+v", s.body, got)
		}
	}
	after := storeKey(t, store, "tenant-a", "My_Key")
	if after.Name != before.Name || after.KeyPrefix != before.KeyPrefix || after.ID != before.ID {
		t.Errorf("update changed the name or token: %+v -> %+v", before, after)
	}
}

func TestUpdateErrors(t *testing.T) {
	tests := []struct {
		name, path, body string
		caller           *access.Caller
		want             int
	}{
		{"no enabled", base + "/k", `{"permissions":[]}`, star, 400},
		{"null enabled", base + "/k", `{"enabled":null}`, star, 400},
		{"enabled as string", base + "/k", `{"enabled":"false"}`, star, 400},
		{"rename", base + "/k", `{"enabled":true,"name":"other"}`, star, 400},
		{"token", base + "/k", `{"enabled":true,"token":"x"}`, star, 400},
		{"repeated permission", base + "/k", `{"enabled":true,"permissions":["a:b","a:b"]}`, star, 400},
		{"bad permission", base + "/k", `{"enabled":true,"permissions":["a b"]}`, star, 400},
		{"duplicate key", base + "/k", `{"enabled":true,"enabled":false}`, star, 400},
		{"empty body", base + "/k", ``, star, 400},
		{"bad name in path", base + "/bad%0A", `{"enabled":true}`, star, 400},
		{"unknown free-text name in path", base + "/bad!", `{"enabled":true}`, star, 404},
		{"unknown key", base + "/nope", `{"enabled":true}`, star, 404},
		{"read-only key", base + "/k", `{"enabled":false}`, reader, 403},
		{"other tenant", base + "/k", `{"enabled":false}`, other, 403},
		{"unknown tenant", "/api/nope/admin/apiKeys/k", `{"enabled":false}`, star, 403}, // looks like another tenant's
		{"unknown tenant, admin user", "/api/nope/admin/apiKeys/k", `{"enabled":false}`, alice, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore()
			h := New(store)
			do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"k","permissions":["a:read"]}`}, 201)
			do(t, h, req{method: "PUT", path: tt.path, caller: tt.caller, body: tt.body, contentType: "application/json"}, tt.want)
			if k := storeKey(t, store, "tenant-a", "k"); !k.Enabled || !cmp.Equal(k.Permissions, []string{"a:read"}) {
				t.Errorf("a refused update changed the key: %+v", k)
			}
		})
	}
	h := New(newStore())
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"k"}`}, 201)
	do(t, h, req{method: "PUT", path: base + "/k", caller: star, body: `{"enabled":true}`, contentType: "text/plain"}, 415)
	do(t, h, req{method: "PUT", path: base + "/k", caller: star, body: `{"enabled":true,"x":"` + strings.Repeat("a", 1<<20) + `"}`}, 413)
}

func TestDelete(t *testing.T) {
	store := newStore()
	h := New(store)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"Gone_Soon"}`}, 201)
	do(t, h, req{method: "DELETE", path: base + "/Gone_Soon", caller: reader}, 403)
	do(t, h, req{method: "DELETE", path: base + "/Gone_Soon", caller: other}, 403)
	if w := do(t, h, req{method: "DELETE", path: base + "/Gone_Soon", caller: writer}, 204); w.Body.Len() != 0 {
		t.Errorf("204 with body %q", w.Body)
	}
	do(t, h, req{method: "GET", path: base + "/Gone_Soon", caller: writer}, 404)
	do(t, h, req{method: "DELETE", path: base + "/Gone_Soon", caller: writer}, 404)
	if w := do(t, h, req{method: "GET", path: base, caller: writer}, 200); w.Body.String() != "[]\n" {
		t.Errorf("empty list %q, want []", w.Body)
	}
}

func TestCreateConflictAndLimits(t *testing.T) {
	h := New(newStore())
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"Same"}`}, 201)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"Same"}`}, 409)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"same"}`}, 201)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"a"}`, contentType: "text/plain"}, 415)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"a"}`, contentType: "application/x-www-form-urlencoded"}, 415)
	do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"` + strings.Repeat("a", 1<<20) + `"}`}, 413)
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"PUT", base, 405, "GET, HEAD, POST"},
		{"DELETE", base, 405, "GET, HEAD, POST"},
		{"PATCH", base + "/k", 405, "GET, HEAD, PUT, DELETE"},
		{"POST", base + "/k", 405, "GET, HEAD, PUT, DELETE"},
		{"GET", "/api/tenant-a/admin/apikeys", 404, ""},
		{"GET", "/api/tenant-a/admin", 404, ""},
		{"GET", "/api/tenant-a/admin/apiKeys/k/x", 404, ""},
		{"GET", "/api/tenant-a/user/apiKeys", 404, ""},
		{"GET", "/api/", 404, ""},
		{"GET", "/api//admin/apiKeys", 404, ""},
		{"GET", base + "/", 400, ""},
		{"GET", base + "/a%2Fb", 404, ""},
		{"GET", base + "/a%09b", 400, ""},
		{"GET", base + "/" + strings.Repeat("a", 129), 400, ""},
		{"GET", base + "?x=1", 200, ""},
	}
	for _, tt := range tests {
		w := serve(New(newStore()), req{method: tt.method, path: tt.path, caller: star})
		if w.Code != tt.want || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.want, tt.allow)
		}
		if tt.want >= 400 {
			checkError(t, w)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in     string
		want   route
		status int
	}{
		{"/api/t/admin/apiKeys", route{tenant: "t"}, 0},
		{"/api/t/admin/apiKeys/A_b", route{tenant: "t", key: "A_b", item: true}, 0},
		{"/api/t/admin/apiKeys/a%2Fb", route{tenant: "t", key: "a/b", item: true}, 0},
		{"/api/%zz/admin/apiKeys", route{}, 400},
		{"/api/t/admin/apiKeys/%", route{}, 400},
		{"/api/t/admin/ApiKeys", route{}, 404},
		{"", route{}, 404},
	}
	for _, tt := range tests {
		got, err := parsePath(tt.in)
		status := 0
		if err != nil {
			status, _ = classify(err)
		}
		if got != tt.want || status != tt.status {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v, status %d", tt.in, got, err, tt.want, tt.status)
		}
	}
}

// failingStore answers every key call with err.
type failingStore struct {
	keystore.Store
	err error
}

func (f failingStore) List(context.Context, access.Scopes, string, keystore.ListOptions) ([]*keystore.Key, int, error) {
	return nil, 0, f.err
}

func (f failingStore) Update(context.Context, access.Scopes, string, keystore.Ref, keystore.KeyUpdate) (*keystore.Key, error) {
	return nil, f.err
}

func TestStoreFailures(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{keystore.ErrUnavailable, 503},
		{fmt.Errorf("apiserver: %w", errors.New("internals at 10.0.0.1")), 500},
		{keystore.ErrNamespaceNotFound, 404},
		{keystore.ErrRoleNotFound, 404},
	}
	for _, tt := range tests {
		h := New(failingStore{Store: newStore(), err: tt.err})
		for _, q := range []req{{method: "GET", path: base}, {method: "PUT", path: base + "/k", body: `{"enabled":true}`}} {
			q.caller = star
			if e := checkError(t, do(t, h, q, tt.want)); strings.Contains(e.Message, "internals") {
				t.Errorf("message %q shows internals", e.Message)
			}
		}
	}
}

func TestOpenAPI(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	decodeJSON(t, OpenAPI(), &doc)
	for path, methods := range map[string][]string{
		"/api/{tenantId}/admin/apiKeys":           {"get", "post"},
		"/api/{tenantId}/admin/apiKeys/{keyName}": {"get", "put", "delete"},
	} {
		for _, m := range methods {
			if doc.Paths[path][m] == nil {
				t.Errorf("OpenAPI lacks %s %s", m, path)
			}
		}
	}
	for schema, v := range map[string]any{
		"ApiKeyDefinition": definition{}, "ApiKeyCreatedResponse": createdKey{},
		"CreateApiKeyRequest": createRequest{}, "UpdateApiKeyRequest": updateRequest{}, "Error": errorBody{},
	} {
		b, _ := json.Marshal(v)
		if got, want := keys(doc.Components.Schemas[schema].Properties), fields(t, b); !cmp.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", schema, got, want)
		}
	}
}
