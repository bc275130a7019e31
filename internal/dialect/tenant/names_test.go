package tenant

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Issue 13, point 1: this dialect creates only names of letters, digits,
// '-', '_' and '.', as its product says, but a key made elsewhere (the
// hub dialect, kubectl) with any other name shows in its list and is
// fetched, updated and deleted by its URL-encoded name.
func TestNamesMadeElsewhere(t *testing.T) {
	s := newStore()
	h := New(s)
	base := "/api/tenant-a/admin/apiKeys"
	for _, name := range []string{"CI Deploy (prod)", "Déploiement", "build #42", "a/b", "ops@example.com", "50% off?"} {
		if _, err := s.Create(access.WithCaller(context.Background(), alice), Scopes, "tenant-a", keystore.NewKey{Name: name}); err != nil {
			t.Fatalf("store create %q: %v", name, err)
		}
		path := base + "/" + url.PathEscape(name)
		listed := false
		var list []definition
		decodeJSON(t, do(t, h, req{method: "GET", path: base, caller: star}, http.StatusOK).Body.Bytes(), &list)
		for _, d := range list {
			listed = listed || d.Name == name
		}
		if !listed {
			t.Errorf("%q is not in the list %+v", name, list)
		}
		if d := decodeDefinition(t, do(t, h, req{method: "GET", path: path, caller: star}, http.StatusOK).Body.Bytes()); d.Name != name {
			t.Errorf("GET %s: name %q", path, d.Name)
		}
		d := decodeDefinition(t, do(t, h, req{method: "PUT", path: path, caller: star, body: `{"enabled":false}`}, http.StatusOK).Body.Bytes())
		if d.Name != name || d.Enabled {
			t.Errorf("PUT %s: %+v", path, d)
		}
		do(t, h, req{method: "DELETE", path: path, caller: star}, http.StatusNoContent)
		do(t, h, req{method: "GET", path: path, caller: star}, http.StatusNotFound)
	}
	// ...but it does not create them.
	for _, name := range []string{"CI Deploy", "Déploiement", "a/b", "ops@example.com"} {
		do(t, h, req{method: "POST", path: base, caller: star, body: `{"name":"` + name + `"}`}, http.StatusBadRequest)
	}
	if keys := storeKeys(t, s, "tenant-a"); len(keys) != 0 {
		t.Errorf("refused creates made keys: %+v", keys)
	}
}
