package nexus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

func TestCreateEveryField(t *testing.T) {
	store := newStore()
	h := New(store)
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	secret := "my-own-secret-of-more-than-32-characters"
	w := do(t, h, req{method: "POST", path: "/v1/api-keys", caller: writer, body: `{
		"id": "Billing_Service.v2", "roleId": "invoice-reader", "secret": "` + secret + `",
		"expiresAt": "` + expires + `", "description": "billing", "permissions": "invoices:read,  invoices:write"}`}, 201)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if loc := w.Header().Get("Location"); loc != "/v1/api-keys/Billing_Service.v2" {
		t.Errorf("Location %q", loc)
	}
	k := decodeKey(t, w.Body)
	creator := "apikey:tenant-a/writer"
	want := apiKey{
		ID: &[]string{"Billing_Service.v2"}[0], RoleID: &[]string{"invoice-reader"}[0], Secret: &secret,
		UserID: &creator, CreatedBy: &creator, ModifiedBy: &creator, ExpiresAt: expires,
		Description: &[]string{"billing"}[0], Permissions: &[]string{"invoices:read,  invoices:write"}[0],
	}
	if diff := cmp.Diff(want, k, cmpIgnoreTimes); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	checkTimestamps(t, k)

	// The store got the permissions as a set, the string as sent, and the role by name.
	stored, err := store.Get(access.WithCaller(context.Background(), star), Scopes, "tenant-a", keystore.ByName("Billing_Service.v2"))
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(stored.Permissions, []string{"invoices:read", "invoices:write"}) || stored.Role != "invoice-reader" ||
		stored.Attributes[PermissionsAttribute] != "invoices:read,  invoices:write" {
		t.Errorf("stored %+v", stored)
	}
}

var cmpIgnoreTimes = cmp.FilterPath(func(p cmp.Path) bool {
	f := p.Last().String()
	return f == ".Created" || f == ".Modified"
}, cmp.Ignore())

func checkTimestamps(t *testing.T, k apiKey) {
	t.Helper()
	for _, ts := range []string{k.Created, k.Modified, k.ExpiresAt} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("timestamp %q is not RFC 3339 UTC", ts)
		}
	}
}

func TestCreateDefaults(t *testing.T) {
	for _, body := range []string{`{}`, `{"id":null,"roleId":null,"secret":null,"expiresAt":null,"description":null,"permissions":null}`} {
		h := New(newStore())
		k := decodeKey(t, do(t, h, req{method: "POST", path: "/v1/api-keys", caller: star, body: body}, 201).Body)
		if k.ID == nil || *k.ID == "" || k.Secret == nil || !strings.HasPrefix(*k.Secret, "ak_") {
			t.Errorf("%s: id %q secret %q: want generated ones", body, str(k.ID), str(k.Secret))
		}
		if k.RoleID != nil || k.Description != nil || k.Permissions != nil {
			t.Errorf("%s: roleId %q description %q permissions %q, want null", body, str(k.RoleID), str(k.Description), str(k.Permissions))
		}
		exp, _ := time.Parse(time.RFC3339, k.ExpiresAt)
		if d := time.Until(exp) - 365*24*time.Hour; d < -48*time.Hour || d > 48*time.Hour {
			t.Errorf("expiresAt %s, want one year from now", k.ExpiresAt)
		}
		checkTimestamps(t, k)
	}
}

func TestCreateBadInput(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, body string
		detail     string // a part of the problem's detail
	}{
		{"short secret", `{"secret":"too-short"}`, "secret"},
		{"empty secret", `{"secret":""}`, "secret"},
		{"secret with a space", `{"secret":"` + strings.Repeat("a", 20) + " " + strings.Repeat("b", 20) + `"}`, "secret"},
		{"secret too long", `{"secret":"` + strings.Repeat("a", 1025) + `"}`, "secret"},
		{"empty id", `{"id":""}`, "id"},
		{"id with a line break", `{"id":"bad\nname"}`, "id"},
		{"id with a tab", `{"id":"a\tb"}`, "id"},
		{"id with a bidi override", `{"id":"evil\u202egnp.exe"}`, "id"},
		{"long id", `{"id":"` + strings.Repeat("a", 129) + `"}`, "id"},
		{"unknown role", `{"roleId":"nope"}`, "roleId"},
		{"empty role", `{"roleId":""}`, "roleId"},
		{"bad date", `{"expiresAt":"tomorrow"}`, "expiresAt"},
		{"8 fractional digits", `{"expiresAt":"2030-01-01T00:00:00.12345678Z"}`, "expiresAt"},
		{"February 30", `{"expiresAt":"2030-02-30"}`, "expiresAt"},
		{"hour 24", `{"expiresAt":"2030-01-01T24:00:00Z"}`, "expiresAt"},
		{"space for T", `{"expiresAt":"2030-01-01 00:00:00Z"}`, "expiresAt"},
		{"past bare date", `{"expiresAt":"2001-01-01"}`, "expiresAt"},
		{"past date", `{"expiresAt":"` + past + `"}`, "expiresAt"},
		{"long description", `{"description":"` + strings.Repeat("d", 1025) + `"}`, "description"},
		{"bad permission", `{"permissions":"invoices:read, inv#ices"}`, "permissions"},
		{"empty permission segment", `{"permissions":"payments//read"}`, "permissions"},
		{"too many permissions", `{"permissions":"` + manyPermissions(65) + `"}`, "permissions"},
		{"permissions too long", `{"permissions":"` + strings.Repeat("a", 1025) + `"}`, "permissions"},
		{"permissions as array", `{"permissions":["a"]}`, "permissions"},
		{"id as number", `{"id":5}`, "id"},
		{"duplicate field", `{"id":"a","id":"b"}`, "id"},
		// ASP.NET binds names ignoring case, so these are the same member.
		{"duplicate field in another case", `{"id":"a","Id":"b"}`, "Id"},
		{"duplicate field by Unicode folding", `{"secret":"` + strings.Repeat("a", 40) + `","ſecret":"` + strings.Repeat("b", 40) + `"}`, "ſecret"},
		{"wrong type in another case", `{"ExpiresAt":5}`, "xpiresAt"},
		{"malformed", `{"id":`, "JSON"},
		{"trailing data", `{} {}`, "after"},
		{"array", `[]`, "object"},
		{"null", `null`, "object"},
		{"empty body", ``, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore()
			h := New(store)
			q := req{method: "POST", path: "/v1/api-keys", caller: star, body: tt.body, contentType: "application/json"}
			p := checkProblem(t, do(t, h, q, http.StatusBadRequest), "/v1/api-keys")
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tt.detail)
			}
			if strings.Contains(p.Detail, "too-short") {
				t.Errorf("detail %q quotes the secret", p.Detail)
			}
			assertNoKeys(t, store)
		})
	}
}

func manyPermissions(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "p%d:read ", i)
	}
	return b.String()
}

func assertNoKeys(t *testing.T, store keystore.Store) {
	t.Helper()
	keys, _, _ := store.List(access.WithCaller(context.Background(), star), Scopes, "tenant-a", keystore.ListOptions{})
	if len(keys) != 0 {
		t.Errorf("bad input changed the store: %d keys", len(keys))
	}
}

func TestCreateStatusCodes(t *testing.T) {
	tests := []struct {
		name string
		q    req
		want int
	}{
		{"text/plain", req{caller: star, body: `{}`, contentType: "text/plain"}, 415},
		{"form", req{caller: star, body: `{}`, contentType: "application/x-www-form-urlencoded"}, 415},
		{"too large", req{caller: star, body: `{"description":"` + strings.Repeat("a", 1<<20) + `"}`}, 413},
		{"escalation by permission", req{caller: writer, body: `{"permissions":"payments:write"}`}, 403},
		{"escalation by role", req{caller: writer, body: `{"roleId":"everything"}`}, 403},
		{"escalation to *", req{caller: writer, body: `{"permissions":"*"}`}, 403},
		{"within own permissions", req{caller: writer, body: `{"permissions":"invoices:eu:read"}`}, 201},
		{"role within own permissions", req{caller: writer, body: `{"roleId":"invoice-reader"}`}, 201},
		{"no scope", req{caller: noscope, body: `{}`}, 403},
		{"other namespace", req{caller: writer, body: `{}`, namespace: "tenant-b"}, 403},
		{"unknown namespace", req{caller: alice, body: `{}`, namespace: "tenant-zzz"}, 404},
		{"user without namespace", req{caller: alice, body: `{}`}, 400},
		{"bad namespace header", req{caller: alice, body: `{}`, namespace: "Tenant_A"}, 400},
		{"user with namespace", req{caller: alice, body: `{}`, namespace: "tenant-b"}, 201},
		{"read-only user", req{caller: bob, body: `{}`, namespace: "tenant-a"}, 403},
		{"user without RBAC", req{caller: eve, body: `{}`, namespace: "tenant-a"}, 403},
		{"service account", req{caller: ci, body: `{}`}, 201},
		{"service account elsewhere", req{caller: ci, body: `{}`, namespace: "tenant-b"}, 403},
		{"other tenant's key in its own", req{caller: other, body: `{}`}, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.method, tt.q.path = "POST", "/v1/api-keys"
			do(t, New(newStore()), tt.q, tt.want)
		})
	}
}

func TestDuplicateID(t *testing.T) {
	h := New(newStore())
	q := req{method: "POST", path: "/v1/api-keys", caller: star, body: `{"id":"Dup_Key"}`}
	do(t, h, q, 201)
	p := checkProblem(t, do(t, h, q, 409), "")
	if !strings.Contains(p.Detail, "Dup_Key") {
		t.Errorf("detail %q", p.Detail)
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name    string
		failure *access.Failure
		caller  *access.Caller
		want    int
		header  string
	}{
		{"no credentials", nil, nil, 401, "WWW-Authenticate"},
		{"invalid credentials", &access.Failure{Err: access.ErrInvalidCredentials}, nil, 401, "WWW-Authenticate"},
		{"wrong address", &access.Failure{Err: access.ErrIPNotAllowed}, nil, 403, ""},
		{"rate limited", &access.Failure{Err: access.ErrRateLimited, RetryAfter: 2500 * time.Millisecond}, nil, 429, "Retry-After"},
		{"failure wins over caller", &access.Failure{Err: access.ErrInvalidCredentials}, star, 401, ""},
	}
	for _, tt := range tests {
		for _, q := range []req{
			{method: "POST", path: "/v1/api-keys", body: `{}`},
			{method: "GET", path: "/v1/api-keys"},
			{method: "GET", path: "/v1/api-keys/x"},
			{method: "DELETE", path: "/v1/api-keys/x"},
			{method: "PATCH", path: "/v1/nothing"},
		} {
			q.caller, q.failure = tt.caller, tt.failure
			w := do(t, New(newStore()), q, tt.want)
			if tt.header != "" && w.Header().Get(tt.header) == "" {
				t.Errorf("%s %s %s: no %s header", tt.name, q.method, q.path, tt.header)
			}
		}
	}
	w := serve(New(newStore()), req{method: "GET", path: "/v1/api-keys", failure: &access.Failure{Err: access.ErrRateLimited, RetryAfter: 2500 * time.Millisecond}})
	if got := w.Header().Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q, want 3", got)
	}
}

func TestListGetDelete(t *testing.T) {
	store := newStore()
	h := New(store)
	created := decodeKey(t, do(t, h, req{method: "POST", path: "/v1/api-keys", caller: writer, body: `{"id":"UPPER_and.lower-1","permissions":"invoices:read"}`}, 201).Body)
	do(t, h, req{method: "POST", path: "/v1/api-keys", caller: other, body: `{"id":"theirs"}`}, 201)

	w := do(t, h, req{method: "GET", path: "/v1/api-keys", caller: writer}, 200)
	assertNoSecret(t, w.Body.String(), *created.Secret)
	var list []apiKey
	decodeJSON(t, w.Body.Bytes(), &list)
	if len(list) != 1 || str(list[0].ID) != "UPPER_and.lower-1" || list[0].Secret != nil || str(list[0].Permissions) != "invoices:read" {
		t.Fatalf("list %s: want only tenant-a's key, without secret", w.Body)
	}

	w = do(t, h, req{method: "GET", path: "/v1/api-keys/UPPER_and.lower-1", caller: writer}, 200)
	assertNoSecret(t, w.Body.String(), *created.Secret)
	got := decodeKey(t, w.Body)
	created.Secret = nil
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("get differs from create (-create +get):\n%s", diff)
	}
	do(t, h, req{method: "HEAD", path: "/v1/api-keys/UPPER_and.lower-1", caller: writer}, 200)

	do(t, h, req{method: "GET", path: "/v1/api-keys/upper_and.lower-1", caller: writer}, 404)
	do(t, h, req{method: "GET", path: "/v1/api-keys/theirs", caller: writer}, 404)
	do(t, h, req{method: "GET", path: "/v1/api-keys/theirs", caller: writer, namespace: "tenant-b"}, 403)
	do(t, h, req{method: "DELETE", path: "/v1/api-keys/UPPER_and.lower-1", caller: noscope}, 403)
	do(t, h, req{method: "DELETE", path: "/v1/api-keys/UPPER_and.lower-1", caller: bob, namespace: "tenant-a"}, 403)
	if w := do(t, h, req{method: "DELETE", path: "/v1/api-keys/UPPER_and.lower-1", caller: writer}, 204); w.Body.Len() != 0 {
		t.Errorf("204 with a body: %s", w.Body)
	}
	do(t, h, req{method: "GET", path: "/v1/api-keys/UPPER_and.lower-1", caller: writer}, 404)
	do(t, h, req{method: "DELETE", path: "/v1/api-keys/UPPER_and.lower-1", caller: writer}, 404)
	if w := do(t, h, req{method: "GET", path: "/v1/api-keys", caller: bob, namespace: "tenant-a"}, 200); w.Body.String() != "[]\n" {
		t.Errorf("empty list %q, want []", w.Body)
	}
}

func assertNoSecret(t *testing.T, body, secret string) {
	t.Helper()
	if strings.Contains(body, secret) || strings.Contains(body, "sha256:") {
		t.Errorf("body holds the secret or a hash: %s", body)
	}
}

func TestPermissionsAfterChangeElsewhere(t *testing.T) {
	store := newStore()
	h := New(store)
	do(t, h, req{method: "POST", path: "/v1/api-keys", caller: star, body: `{"id":"k","permissions":"b:read a:read"}`}, 201)
	ctx := access.WithCaller(context.Background(), star)
	perms := []string{"c:read", "d:write"}
	if _, err := store.Update(ctx, Scopes, "tenant-a", keystore.ByName("k"), keystore.KeyUpdate{Permissions: &perms}); err != nil {
		t.Fatal(err)
	}
	k := decodeKey(t, do(t, h, req{method: "GET", path: "/v1/api-keys/k", caller: star}, 200).Body)
	if str(k.Permissions) != "c:read,d:write" {
		t.Errorf("permissions %q, want the current ones", str(k.Permissions))
	}
	// A key made elsewhere, without the attribute.
	if _, err := store.Create(ctx, Scopes, "tenant-a", keystore.NewKey{Name: "plain", Permissions: []string{"x:y"}}); err != nil {
		t.Fatal(err)
	}
	k = decodeKey(t, do(t, h, req{method: "GET", path: "/v1/api-keys/plain", caller: star}, 200).Body)
	if str(k.Permissions) != "x:y" || k.RoleID != nil {
		t.Errorf("permissions %q role %q", str(k.Permissions), str(k.RoleID))
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"PUT", "/v1/api-keys", 405, "GET, HEAD, POST"},
		{"DELETE", "/v1/api-keys", 405, "GET, HEAD, POST"},
		{"POST", "/v1/api-keys/x", 405, "GET, HEAD, DELETE"},
		{"PATCH", "/v1/api-keys/x", 405, "GET, HEAD, DELETE"},
		{"OPTIONS", "/v1/api-keys/x", 405, "GET, HEAD, DELETE"},
		{"GET", "/v1/api-keys/a/b", 404, ""},
		{"GET", "/v1/api-keysx", 404, ""},
		{"GET", "/v1/other", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/v1/api-keys/", 400, ""},
		// Any id without control characters may name a key: these are
		// well-formed ids of keys that do not exist.
		{"GET", "/v1/api-keys/a%2Fb", 404, ""},
		{"GET", "/v1/api-keys/bad%20name", 404, ""},
		{"DELETE", "/v1/api-keys/bad!", 404, ""},
		{"GET", "/v1/api-keys/" + strings.Repeat("a", 129), 400, ""},
		{"GET", "/v1/api-keys/bad%0Aname", 400, ""},
		{"DELETE", "/v1/api-keys/bad%00", 400, ""},
		{"GET", "/v1/api-keys/%FF", 400, ""},
		{"GET", "/v1/api-keys?unknown=1", 200, ""},
	}
	for _, tt := range tests {
		w := serve(New(newStore()), req{method: tt.method, path: tt.path, caller: star})
		if w.Code != tt.want || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.want, tt.allow)
		}
		if tt.want >= 400 {
			checkProblem(t, w, "")
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in, id string
		item   bool
		status int
	}{
		{"/v1/api-keys", "", false, 0},
		{"/v1/api-keys/A_b.c", "A_b.c", true, 0},
		{"/v1/api-keys/a%2Fb", "a/b", true, 0},
		{"/v1/api-keys/%zz", "", false, 400},
		{"/v1/API-keys", "", false, 404},
		{"", "", false, 404},
	}
	for _, tt := range tests {
		id, item, err := parsePath(tt.in)
		status := 0
		if err != nil {
			status, _ = classify(err)
		}
		if id != tt.id || item != tt.item || status != tt.status {
			t.Errorf("parsePath(%q) = %q, %v, %v", tt.in, id, item, err)
		}
	}
}

// failingStore answers every call with err.
type failingStore struct {
	keystore.Store
	err error
}

func (f failingStore) List(context.Context, access.Scopes, string, keystore.ListOptions) ([]*keystore.Key, int, error) {
	return nil, 0, f.err
}

func (f failingStore) Create(context.Context, access.Scopes, string, keystore.NewKey) (*keystore.Issued, error) {
	return nil, f.err
}

func TestStoreFailures(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{keystore.ErrUnavailable, 503},
		{errors.New("etcd said: secret internals at 10.0.0.1"), 500},
		{keystore.ErrNamespaceNotFound, 404},
		{&keystore.InvalidError{Field: "ips", Reason: "bad"}, 400},
	}
	for _, tt := range tests {
		h := New(failingStore{Store: newStore(), err: tt.err})
		for _, q := range []req{{method: "GET", path: "/v1/api-keys"}, {method: "POST", path: "/v1/api-keys", body: `{}`}} {
			q.caller = star
			p := checkProblem(t, do(t, h, q, tt.want), "")
			if strings.Contains(p.Detail, "internals") {
				t.Errorf("detail %q shows internals", p.Detail)
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
	for path, methods := range map[string][]string{"/v1/api-keys": {"get", "post"}, "/v1/api-keys/{id}": {"get", "delete"}} {
		for _, m := range methods {
			if doc.Paths[path][m] == nil {
				t.Errorf("OpenAPI lacks %s %s", m, path)
			}
		}
	}
	for schema, v := range map[string]any{"ApiKeyRequest": createRequest{}, "ApiKeyResponse": apiKey{}, "ProblemDetails": problem{}} {
		got := keys(doc.Components.Schemas[schema].Properties)
		want := keys(decodeObject(t, mustJSON(t, v)))
		if !cmp.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", schema, got, want)
		}
	}
}
