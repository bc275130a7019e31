package tenant

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

// FuzzCreateBody: any body gets 201, or a 400 in the dialect's shape that
// changes nothing; never a panic or a 5xx.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"a"}`, `{"name":"A_b.c-1","enabled":false,"permissions":["x:y","*"]}`, `{"name":"a","name":"b"}`,
		`{"name":"a","permissions":[null]}`, `{"name":""}`, `{"name":"a","enabled":0}`, `[`, `{"name":"a"}x`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		store := newStore()
		w := serve(New(store), req{method: "POST", path: base, caller: star, body: string(body), contentType: "application/json"})
		switch w.Code {
		case http.StatusCreated:
			decodeCreated(t, w.Body.Bytes())
		case http.StatusBadRequest:
			checkError(t, w)
			if n := len(storeKeys(t, store, "tenant-a")); n != 0 {
				t.Fatalf("a refused body created %d keys", n)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}

// FuzzUpdateBody: any body gets 200, or a 400 in the dialect's shape that
// changes nothing.
func FuzzUpdateBody(f *testing.F) {
	for _, s := range []string{`{"enabled":false}`, `{"enabled":true,"permissions":[]}`, `{"enabled":true,"permissions":null}`, `{"permissions":["a"]}`, `{"enabled":"x"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		store := newStore()
		h := New(store)
		do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"k","permissions":["a:read"]}`}, 201)
		w := serve(h, req{method: "PUT", path: base + "/k", caller: star, body: string(body), contentType: "application/json"})
		switch w.Code {
		case http.StatusOK:
			decodeDefinition(t, w.Body.Bytes())
		case http.StatusBadRequest:
			checkError(t, w)
			if k := storeKey(t, store, "tenant-a", "k"); !k.Enabled || len(k.Permissions) != 1 {
				t.Fatalf("a refused body changed the key: %+v", k)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}

// FuzzRequest: any method, path and query gets the dialect's answer,
// never a panic or a 5xx.
func FuzzRequest(f *testing.F) {
	f.Add("GET", "/api/tenant-a/admin/apiKeys", "")
	f.Add("GET", "/api/tenant-a/admin/apiKeys/Some_Key", "x=1")
	f.Add("DELETE", "/api/tenant-b/admin/apiKeys/a%2Fb", "")
	f.Add("PUT", "/api/Tenant/admin/apiKeys/", "")
	f.Add("GET", "/api/%zz/admin/apiKeys", "%")
	f.Add("HEAD", "/api//admin//apiKeys", "")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		if !validMethod(method) {
			return
		}
		u := &url.URL{Scheme: "http", Host: "localhost", Path: path, RawPath: path, RawQuery: query}
		if p, err := url.PathUnescape(path); err == nil {
			u.Path = p
		}
		r := httptest.NewRequest("GET", "http://localhost/", nil)
		r.Method, r.URL, r.RequestURI = method, u, u.RequestURI()
		w := httptest.NewRecorder()
		New(newStore()).ServeHTTP(w, r.WithContext(access.WithCaller(r.Context(), star)))
		if w.Code >= 500 {
			t.Fatalf("%s %q ? %q: status %d: %s", method, path, query, w.Code, w.Body)
		}
		if w.Code >= 400 {
			checkError(t, w)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
