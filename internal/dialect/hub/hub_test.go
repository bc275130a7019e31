package hub

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{24}$`)

const zeroTime = "0001-01-01T00:00:00Z"

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// apiKeyFields are ApiKey.yml's properties, all of them required.
var apiKeyFields = []string{"creator", "events", "hub_id", "id", "ips", "name", "role_id", "secret", "state"}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	res := f.do(t, call{method: "POST", path: BasePath, as: managerA,
		body: `{"name":"ci-deploy","role_id":"` + f.manage.ID + `","ips":["10.0.0.0/8","2001:db8::1"]}`})
	if res.status != http.StatusCreated {
		t.Fatalf("status %d: %s", res.status, res.raw)
	}
	if len(res.body) != 1 {
		t.Errorf("create answer must be exactly {data}: %s", res.raw)
	}
	d := res.data(t)
	if got := keysOf(d); !slices.Equal(got, apiKeyFields) {
		t.Errorf("fields %v, want %v", got, apiKeyFields)
	}
	id := d["id"].(string)
	secret := d["secret"].(string)
	checks := []struct {
		what string
		ok   bool
	}{
		{"id is 24 hex", hexID.MatchString(id)},
		{"hub_id is the namespace", d["hub_id"] == hubA},
		{"name", d["name"] == "ci-deploy"},
		{"role_id", d["role_id"] == f.manage.ID},
		{"ips", slices.Equal(strs(d["ips"]), []string{"10.0.0.0/8", "2001:db8::1"})},
		{"secret is the plaintext token", token.Check(secret) == nil},
		{"creator is the API key", obj(d, "creator")["type"] == "api-key" && hexID.MatchString(obj(d, "creator")["id"].(string))},
		{"state new", obj(d, "state")["current"] == "new" && obj(d, "state")["changed"] != zeroTime},
		{"no state error", obj(d, "state")["error"] == nil},
		{"events", obj(d, "events")["created"] != zeroTime && obj(d, "events")["updated"] != zeroTime && obj(d, "events")["deleted"] == zeroTime},
		{"Location", res.header.Get("Location") == BasePath+"/"+id},
		{"no-store", res.header.Get("Cache-Control") == "no-store"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: %s", c.what, res.raw)
		}
	}
}

func obj(m map[string]any, name string) map[string]any {
	o, _ := m[name].(map[string]any)
	return o
}

func strs(v any) []string {
	items, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.(string)
	}
	return out
}

// ips left out or null answers null; [] answers [] (issue 13), on
// create and on every later read.
func TestCreateIPsShapes(t *testing.T) {
	for ips, want := range map[string]string{"": "null", "null": "null", "[]": "[]", "[ ]": "[]", `["10.0.0.1"]`: `["10.0.0.1"]`} {
		f := newFixture(t)
		d := f.createKey(t, managerA, hubA, "k", f.manage.ID, ips)
		got, _ := json.Marshal(d["ips"])
		read := f.do(t, call{method: "GET", path: BasePath + "/" + d["id"].(string), as: managerA}).data(t)
		again, _ := json.Marshal(read["ips"])
		if string(got) != want || string(again) != want {
			t.Errorf("ips %q: answered %s, read back %s, want %s", ips, got, again, want)
		}
	}
}

func TestCreateByKubernetesUser(t *testing.T) {
	f := newFixture(t)
	d := f.createKey(t, adminK8s, hubA, "by-admin", f.all.ID, "")
	if c := obj(d, "creator"); c["type"] != "account" || !hexID.MatchString(c["id"].(string)) {
		t.Errorf("creator %v", c)
	}
}

// The plaintext is in the create answer and nowhere else.
func TestSecretOnlyOnCreate(t *testing.T) {
	f := newFixture(t)
	d := f.createKey(t, managerA, hubA, "k1", f.manage.ID, "")
	secret, id := d["secret"].(string), d["id"].(string)
	masked := token.DisplayPrefix(secret) + "********"
	answers := []result{
		f.do(t, call{method: "GET", path: BasePath + "/" + id, as: managerA}),
		f.do(t, call{method: "GET", path: BasePath + "/" + id + "?include=roles", as: managerA}),
		f.do(t, call{method: "GET", path: BasePath, as: managerA}),
		f.do(t, call{method: "PATCH", path: BasePath + "/" + id, body: `{"name":"k2"}`, as: managerA}),
		f.do(t, call{method: "DELETE", path: BasePath + "/" + id, as: managerA}),
	}
	for i, res := range answers {
		if res.status != http.StatusOK {
			t.Fatalf("answer %d: %d %s", i, res.status, res.raw)
		}
		if strings.Contains(res.raw, secret) || strings.Contains(res.raw, "sha256") {
			t.Errorf("answer %d leaks the token or a hash: %s", i, res.raw)
		}
		if !strings.Contains(res.raw, `"secret":"`+masked+`"`) {
			t.Errorf("answer %d: want masked secret %q: %s", i, masked, res.raw)
		}
	}
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, managerA, hubA, "k1", f.manage.ID, `["192.0.2.1"]`)["id"].(string)
	for _, path := range []string{BasePath + "/" + id, BasePath + "/" + strings.ToUpper(id)} {
		res := f.do(t, call{method: "GET", path: path, as: managerA})
		if res.status != http.StatusOK || res.data(t)["id"] != id || len(res.body) != 1 {
			t.Errorf("GET %s: %d %s", path, res.status, res.raw)
		}
		if !slices.Equal(strs(res.data(t)["ips"]), []string{"192.0.2.1"}) {
			t.Errorf("ips: %s", res.raw)
		}
	}
}

var roleFields = []string{"capabilities", "creator", "default", "events", "hub_id", "id", "identifier", "name", "rank", "root", "state"}

func TestGetIncludeRoles(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, adminK8s, hubA, "k1", f.all.ID, "")["id"].(string)
	for _, q := range []string{"include=roles", "include=roles,roles", "include=roles&include=roles", "include=&include=roles"} {
		res := f.do(t, call{method: "GET", path: BasePath + "/" + id + "?" + q, as: adminK8s})
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, res.status, res.raw)
		}
		roles := obj(obj(res.body, "includes"), "roles")
		if len(roles) != 1 {
			t.Fatalf("%s: want one role: %s", q, res.raw)
		}
		r := obj(roles, f.all.ID)
		if got := keysOf(r); !slices.Equal(got, roleFields) {
			t.Errorf("role fields %v, want %v", got, roleFields)
		}
		caps := obj(r, "capabilities")
		if r["id"] != f.all.ID || r["name"] != "admin" || r["identifier"] != "admin" || r["hub_id"] != hubA ||
			caps["all"] != true || len(caps["specific"].([]any)) != 0 || obj(r, "state")["current"] != "live" ||
			r["root"] != false || r["default"] != nil || obj(r, "creator")["type"] != "platform" {
			t.Errorf("role: %s", res.raw)
		}
	}
	res := f.do(t, call{method: "GET", path: BasePath + "/" + id, as: adminK8s})
	if _, ok := res.body["includes"]; ok {
		t.Errorf("includes without include=roles: %s", res.raw)
	}
}

func TestPatch(t *testing.T) {
	cases := []struct {
		name, body string
		wantName   string
		wantIPs    []string // nil: null
		wantRole   string   // "" : unchanged (manage)
	}{
		{"empty body changes nothing", `{}`, "k1", []string{"10.0.0.1"}, ""},
		{"name only keeps ips", `{"name":"renamed"}`, "renamed", []string{"10.0.0.1"}, ""},
		{"same name", `{"name":"k1"}`, "k1", []string{"10.0.0.1"}, ""},
		{"ips replaced", `{"ips":["10.0.0.2","10.1.0.0/16"]}`, "k1", []string{"10.0.0.2", "10.1.0.0/16"}, ""},
		{"ips null clears", `{"ips":null}`, "k1", nil, ""},
		{"ips [] clears and stays []", `{"ips":[]}`, "k1", []string{}, ""},
		{"role changed", `{"role_id":"READER"}`, "k1", []string{"10.0.0.1"}, "reader"},
		{"all fields", `{"name":"n2","role_id":"READER","ips":["::1"]}`, "n2", []string{"::1"}, "reader"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			// An admin can give the reader role (invoices:read) away.
			as := keyCaller(hubA, "api-keys-manage", "invoices:read")
			id := f.createKey(t, as, hubA, "k1", f.manage.ID, `["10.0.0.1"]`)["id"].(string)
			body := strings.ReplaceAll(c.body, "READER", f.reader.ID)
			res := f.do(t, call{method: "PATCH", path: BasePath + "/" + id, body: body, as: as})
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.raw)
			}
			d := res.data(t)
			wantRole := f.manage.ID
			if c.wantRole == "reader" {
				wantRole = f.reader.ID
			}
			if d["name"] != c.wantName || !slices.Equal(strs(d["ips"]), c.wantIPs) || (c.wantIPs == nil) != (d["ips"] == nil) || d["role_id"] != wantRole {
				t.Errorf("got %s", res.raw)
			}
			// The store holds what the answer says.
			got := f.do(t, call{method: "GET", path: BasePath + "/" + id, as: as}).data(t)
			if got["name"] != d["name"] || !slices.Equal(strs(got["ips"]), strs(d["ips"])) || (got["ips"] == nil) != (d["ips"] == nil) || got["role_id"] != d["role_id"] {
				t.Errorf("stored %v, answered %v", got, d)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, managerA, hubA, "k1", f.manage.ID, "")["id"].(string)
	res := f.do(t, call{method: "DELETE", path: BasePath + "/" + id, as: managerA})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	d := res.data(t)
	if d["id"] != id || d["name"] != "k1" || obj(d, "state")["current"] != "deleted" ||
		obj(d, "events")["deleted"] != "2025-06-01T12:00:00Z" || obj(d, "state")["changed"] != "2025-06-01T12:00:00Z" {
		t.Errorf("delete answer: %s", res.raw)
	}
	if got := f.do(t, call{method: "GET", path: BasePath + "/" + id, as: managerA}); got.status != http.StatusNotFound || got.code(t) != codeKey {
		t.Errorf("after delete: %d %s", got.status, got.raw)
	}
	if again := f.do(t, call{method: "DELETE", path: BasePath + "/" + id, as: managerA}); again.status != http.StatusNotFound {
		t.Errorf("second delete: %d", again.status)
	}
}

// Keys of one hub are invisible from another, whoever asks.
func TestHubIsolation(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, managerA, hubA, "k1", f.manage.ID, "")["id"].(string)
	f.createKey(t, keyCaller(hubB, "api-keys-manage"), hubB, "k1", f.roleB.ID, "") // same name, other hub
	for _, c := range []call{
		{method: "GET", path: BasePath, hub: hubB, as: adminK8s},
		{method: "GET", path: BasePath + "/" + id, hub: hubB, as: adminK8s},
		{method: "PATCH", path: BasePath + "/" + id, hub: hubB, as: adminK8s, body: `{"name":"x"}`},
		{method: "DELETE", path: BasePath + "/" + id, hub: hubB, as: adminK8s},
	} {
		res := f.do(t, c)
		if c.method == "GET" && c.path == BasePath {
			if l := res.list(t); len(l) != 1 || l[0]["id"] == id || l[0]["hub_id"] != hubB {
				t.Errorf("hub-b list: %s", res.raw)
			}
			continue
		}
		if res.status != http.StatusNotFound || res.code(t) != codeKey {
			t.Errorf("%s in hub-b: %d %s", c.method, res.status, res.raw)
		}
	}
	// A role of hub-b cannot be given to a key in hub-a.
	res := f.do(t, call{method: "POST", path: BasePath, as: adminK8s, body: `{"name":"k2","role_id":"` + f.roleB.ID + `"}`})
	if res.status != http.StatusNotFound || res.code(t) != codeRole {
		t.Errorf("role of another hub: %d %s", res.status, res.raw)
	}
}

// An API key can give a new key only what it holds itself.
func TestNoEscalation(t *testing.T) {
	f := newFixture(t)
	for _, role := range []string{f.all.ID, f.reader.ID} {
		res := f.do(t, call{method: "POST", path: BasePath, as: managerA, body: `{"name":"wider","role_id":"` + role + `"}`})
		if res.status != http.StatusForbidden || res.code(t) != codePermissions || res.errorObject(t)["source"] != "/role_id" {
			t.Errorf("create with a wider role: %d %s", res.status, res.raw)
		}
	}
	id := f.createKey(t, managerA, hubA, "k1", f.manage.ID, "")["id"].(string)
	res := f.do(t, call{method: "PATCH", path: BasePath + "/" + id, as: managerA, body: `{"role_id":"` + f.all.ID + `"}`})
	if res.status != http.StatusForbidden || res.code(t) != codePermissions {
		t.Errorf("patch to a wider role: %d %s", res.status, res.raw)
	}
	if n := f.keyCount(t, hubA); n != 1 {
		t.Errorf("%d keys, want 1", n)
	}
	// "*" holds everything.
	f.createKey(t, keyCaller(hubA, "*"), hubA, "wide", f.all.ID, "")
}

// A Kubernetes identity is authorised per verb by RBAC (SAR).
func TestKubernetesViewer(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, adminK8s, hubB, "k1", f.roleB.ID, "")["id"].(string)
	viewer := kubeUser("viewer")
	for _, c := range []call{
		{method: "GET", path: BasePath, hub: hubB, as: viewer},
		{method: "GET", path: BasePath + "/" + id + "?include=roles", hub: hubB, as: viewer},
	} {
		if res := f.do(t, c); res.status != http.StatusOK {
			t.Errorf("%s %s: %d %s", c.method, c.path, res.status, res.raw)
		}
	}
	res := f.do(t, call{method: "PATCH", path: BasePath + "/" + id, hub: hubB, as: viewer, body: `{"ips":null}`})
	if res.status != http.StatusForbidden || res.code(t) != codePermissions {
		t.Errorf("viewer PATCH: %d %s", res.status, res.raw)
	}
}
