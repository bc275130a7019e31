package hub

import (
	"net/http"
	"slices"
	"testing"
)

// Issue 13, point 2: the roles can be discovered through the API, in the
// product's Role shape, with the keys' list conventions.
func TestRoles(t *testing.T) {
	f := newFixture(t)
	names := func(res result) []string {
		var out []string
		for _, r := range res.list(t) {
			out = append(out, r["name"].(string))
		}
		return out
	}
	res := f.do(t, call{method: "GET", path: RolesPath, as: managerA})
	if res.status != http.StatusOK || !slices.Equal(names(res), []string{"admin", "manager", "reader"}) {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	for _, r := range res.list(t) {
		withExtra := slices.Sorted(slices.Values(append(slices.Clone(roleFields), "extra")))
		if got := keysOf(r); !slices.Equal(got, roleFields) && !slices.Equal(got, withExtra) {
			t.Errorf("role fields %v", got)
		}
	}
	byName := map[string]map[string]any{}
	for _, r := range res.list(t) {
		byName[r["name"].(string)] = r
	}
	if c := obj(byName["admin"], "capabilities"); c["all"] != true {
		t.Errorf("* is all: %v", c)
	}
	if c := obj(byName["manager"], "capabilities"); c["all"] != false || len(c["specific"].([]any)) != 1 || c["specific"].([]any)[0] != "api-keys-manage" {
		t.Errorf("api-keys-manage is a capability: %v", c)
	}
	if r := byName["reader"]; len(obj(r, "capabilities")["specific"].([]any)) != 0 || obj(r, "extra")["permissions"] != "invoices:read" {
		t.Errorf("invoices:read is no capability: %v", r)
	}
	if byName["manager"]["id"] != f.manage.ID || byName["manager"]["hub_id"] != hubA {
		t.Errorf("manager: %v", byName["manager"])
	}

	for q, want := range map[string][]string{
		"sort=-name":                          {"reader", "manager", "admin"},
		"filter%5Bsearch%5D=AN":               {"manager"},
		"filter%5Bname%5D=admin":              {"admin"},
		"filter%5Bidentifier%5D=reader":       {"reader"},
		"page%5Bsize%5D=2&page%5Bnumber%5D=2": {"reader"},
		"page%5Bsize%5D=2&page%5Bnumber%5D=3": nil,
		"sort=created,-id&other=1":            nil, // checked below: all three
	} {
		res := f.do(t, call{method: "GET", path: RolesPath + "?" + q, as: managerA})
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, res.status, res.raw)
		}
		if got := names(res); want != nil && !slices.Equal(got, want) || want == nil && q != "sort=created,-id&other=1" && len(got) != 0 {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}

	one := f.do(t, call{method: "GET", path: RolesPath + "/" + f.reader.ID, as: kubeUser("viewer")})
	if one.status != http.StatusOK || one.data(t)["id"] != f.reader.ID || one.data(t)["name"] != "reader" {
		t.Errorf("get: %d %s", one.status, one.raw)
	}
	// A role of another hub is not found in this one.
	if res := f.do(t, call{method: "GET", path: RolesPath + "/" + f.roleB.ID, as: managerA}); res.status != http.StatusNotFound || res.code(t) != codeRole {
		t.Errorf("role of hub-b in hub-a: %d %s", res.status, res.raw)
	}
}

// Issue 13, point 1: hub names are free text, accepted on create and on
// PATCH, byte for byte.
func TestFreeTextNames(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"CI Deploy (prod)", "Déploiement", "build #42", "  spaced  ", "🧑\u200d💻"} {
		d := f.createKey(t, managerA, hubA, jsonEscape(name), f.manage.ID, "")
		if d["name"] != name {
			t.Errorf("created %q, answered %q", name, d["name"])
		}
		renamed := name + " (renamed)"
		res := f.do(t, call{method: "PATCH", path: BasePath + "/" + d["id"].(string), as: managerA, body: `{"name":"` + jsonEscape(renamed) + `"}`})
		if res.status != http.StatusOK || res.data(t)["name"] != renamed {
			t.Errorf("rename: %d %s", res.status, res.raw)
		}
		list := f.do(t, call{method: "GET", path: BasePath + "?filter%5Bname%5D=" + urlQuery(renamed), as: managerA}).list(t)
		if len(list) != 1 || list[0]["name"] != renamed {
			t.Errorf("filter[name]=%q: %v", renamed, list)
		}
	}
}
