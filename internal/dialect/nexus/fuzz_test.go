package nexus

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

// FuzzCreateBody: any body gets 201 or a 400 problem, never a panic or a
// 5xx, and a refused body changes nothing.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"id":"a","roleId":"invoice-reader","secret":null,"expiresAt":"2099-01-01T00:00:00Z","description":"d","permissions":"a:b, c:d"}`,
		`{"id":"a","id":"b"}`, `{"permissions":[1]}`, `{"expiresAt":"2099-13-01T00:00:00Z"}`, `{"secret":"` + "\u00e9" + `"}`,
		`{"roleId":"nope"}`, `[`, `{}x`, `{"id":"\u0000"}`, `{"permissions":",,, \t\n"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		store := newStore()
		w := serve(New(store), req{method: "POST", path: "/v1/api-keys", caller: star, body: string(body), contentType: "application/json"})
		switch w.Code {
		case http.StatusCreated:
			decodeKey(t, w.Body)
		case http.StatusBadRequest:
			checkProblem(t, w, "/v1/api-keys")
			assertNoKeys(t, store)
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}

// FuzzRequest: any method, path, query and namespace header gets the
// dialect's answer, never a panic or a 5xx.
func FuzzRequest(f *testing.F) {
	f.Add("GET", "/v1/api-keys", "", "")
	f.Add("GET", "/v1/api-keys/Some_Key", "x=1", "tenant-a")
	f.Add("DELETE", "/v1/api-keys/a%2Fb", "", "tenant-b")
	f.Add("PATCH", "/v1/api-keys/", "", "Bad")
	f.Add("GET", "/v1/api-keys/%zz", "%", "")
	f.Add("HEAD", "/v1//api-keys", "", "tenant-zzz")
	f.Fuzz(func(t *testing.T, method, path, query, namespace string) {
		if !validMethod(method) {
			return
		}
		u := &url.URL{Scheme: "http", Host: "localhost", Path: path, RawPath: path, RawQuery: query}
		if p, err := url.PathUnescape(path); err == nil {
			u.Path = p
		}
		r := httptest.NewRequest("GET", "http://localhost/", nil)
		r.Method, r.URL, r.RequestURI = method, u, u.RequestURI()
		r.Header.Set(NamespaceHeader, namespace)
		w := httptest.NewRecorder()
		New(newStore()).ServeHTTP(w, r.WithContext(access.WithCaller(r.Context(), star)))
		if w.Code >= 500 {
			t.Fatalf("%s %q ? %q (ns %q): status %d: %s", method, path, query, namespace, w.Code, w.Body)
		}
		if w.Code >= 400 {
			checkProblem(t, w, "")
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
