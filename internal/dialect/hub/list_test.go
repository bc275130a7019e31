package hub

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// listFixture has keys b, a, d, c, e in hub-a (created in that order)
// with roles manage, manage, admin, manage, admin.
func listFixture(t *testing.T) (*fixture, map[string]string) {
	f := newFixture(t)
	ids := map[string]string{}
	for i, name := range []string{"beta", "alpha", "delta", "Charlie", "echo"} {
		role := f.manage.ID
		if i%2 == 0 && i > 0 {
			role = f.all.ID
		}
		f.store.Now = func() time.Time { return fixedNow.Add(time.Duration(i) * time.Minute) }
		ids[name] = f.createKey(t, adminK8s, hubA, name, role, "")["id"].(string)
	}
	return f, ids
}

func names(t *testing.T, res result) []string {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	var out []string
	for _, k := range res.list(t) {
		out = append(out, k["name"].(string))
	}
	return out
}

func TestListSortFilterPage(t *testing.T) {
	f, ids := listFixture(t)
	byID := slices.Sorted(func(yield func(string) bool) {
		for _, id := range ids {
			if !yield(id) {
				return
			}
		}
	})
	nameOf := map[string]string{}
	for n, id := range ids {
		nameOf[id] = n
	}
	var wantByID []string
	for _, id := range byID {
		wantByID = append(wantByID, nameOf[id])
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
		{"sort=name", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
		{"sort=-name", []string{"echo", "delta", "beta", "alpha", "Charlie"}},
		{"sort=created", []string{"beta", "alpha", "delta", "Charlie", "echo"}},
		{"sort=-created", []string{"echo", "Charlie", "delta", "alpha", "beta"}},
		{"sort=updated", []string{"beta", "alpha", "delta", "Charlie", "echo"}},
		{"sort=id", wantByID},
		{"sort=-id", reversed(wantByID)},
		{"sort=role_id,name", sortedByRole(f, []string{"Charlie", "alpha", "beta", "delta", "echo"}, ids)},
		{"sort=state,-name", []string{"echo", "delta", "beta", "alpha", "Charlie"}},
		{"sort=state&sort=-created", []string{"echo", "Charlie", "delta", "alpha", "beta"}},
		{"sort=", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
		{"filter[search]=HA", []string{"Charlie", "alpha"}},
		{"filter[search]=", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
		{"filter[search]=zzz", nil},
		{"filter[name]=alpha", []string{"alpha"}},
		{"filter[name]=ALPHA", nil},
		{"filter[role_id]=" + f.all.ID, []string{"delta", "echo"}},
		{"filter[role_id]=" + strings.ToUpper(f.all.ID), []string{"delta", "echo"}},
		{"filter[role_id]=" + f.all.ID + "&filter[search]=e", []string{"delta", "echo"}},
		{"filter[role_id]=" + f.all.ID + "&filter[search]=ch", []string{"echo"}},
		{"filter[state]=new", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
		{"filter[state]=live,inactive", nil},
		{"page[size]=2", []string{"Charlie", "alpha"}},
		{"page[size]=2&page[number]=2", []string{"beta", "delta"}},
		{"page[size]=2&page[number]=3", []string{"echo"}},
		{"page[size]=2&page[number]=4", nil},
		{"page[number]=1000000", nil},
		{"page[size]=100&sort=-name", []string{"echo", "delta", "beta", "alpha", "Charlie"}},
		{"page[size]=1&page[number]=2&sort=-created&filter[search]=a", []string{"delta"}},
		{"unrelated=1&meta=x", []string{"Charlie", "alpha", "beta", "delta", "echo"}},
	}
	for _, c := range cases {
		res := f.do(t, call{method: "GET", path: BasePath + "?" + c.query, as: managerA})
		if got := names(t, res); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.query, got, c.want)
		}
		if !strings.HasPrefix(res.raw, `{"data":[`) {
			t.Errorf("%s: data must be an array, never null: %s", c.query, res.raw)
		}
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func sortedByRole(f *fixture, byName []string, ids map[string]string) []string {
	roleOf := func(n string) string {
		if n == "delta" || n == "echo" {
			return f.all.ID
		}
		return f.manage.ID
	}
	out := slices.Clone(byName)
	slices.SortStableFunc(out, func(a, b string) int { return strings.Compare(roleOf(a), roleOf(b)) })
	return out
}

func TestListDefaultPageSize(t *testing.T) {
	f := newFixture(t)
	for i := range 25 {
		f.createKey(t, adminK8s, hubA, fmt.Sprintf("k%02d", i), f.manage.ID, "")
	}
	if got := names(t, f.do(t, call{method: "GET", path: BasePath, as: managerA})); len(got) != DefaultPageSize || got[0] != "k00" {
		t.Errorf("first page: %v", got)
	}
	if got := names(t, f.do(t, call{method: "GET", path: BasePath + "?page[number]=2", as: managerA})); len(got) != 5 || got[0] != "k20" {
		t.Errorf("second page: %v", got)
	}
}

func TestListIncludeRoles(t *testing.T) {
	f, _ := listFixture(t)
	res := f.do(t, call{method: "GET", path: BasePath + "?include=roles", as: managerA})
	roles := obj(obj(res.body, "includes"), "roles")
	if len(roles) != 2 || obj(roles, f.manage.ID)["name"] != "manager" || obj(roles, f.all.ID)["name"] != "admin" {
		t.Errorf("includes: %s", res.raw)
	}
	if got := strs(obj(obj(roles, f.manage.ID), "capabilities")["specific"]); !slices.Equal(got, []string{"api-keys-manage"}) {
		t.Errorf("specific: %v", got)
	}
	empty := f.do(t, call{method: "GET", path: BasePath + "?include=roles", hub: hubB, as: adminK8s})
	if !strings.Contains(empty.raw, `"includes":{"roles":{}}`) {
		t.Errorf("no keys: want empty roles map: %s", empty.raw)
	}
}

func TestListBadQuery(t *testing.T) {
	f, _ := listFixture(t)
	cases := []struct {
		query string
		code  string
	}{
		{"sort=bogus", codeInvalid},
		{"sort=-", codeInvalid},
		{"sort=--name", codeInvalid},
		{"sort=name,", codeInvalid},
		{"sort=name,-name", codeInvalid},
		{"sort=name&sort=name", codeInvalid},
		{"sort=secret", codeInvalid},
		{"sort[]=name", codeInvalid},
		{"filter[bogus]=x", codeInvalid},
		{"filter=x", codeInvalid},
		{"filter[]=x", codeInvalid},
		{"filter[name][x]=y", codeInvalid},
		{"filter[name]=", codeInvalid},
		{"filter[name]=a&filter[name]=b", codeInvalid},
		{"filter[search]=" + strings.Repeat("a", 129), codeInvalid},
		{"filter[role_id]=xyz", codeInvalid},
		{"filter[state]=", codeInvalid},
		{"filter[state]=alive", codeInvalid},
		{"filter[state]=live,", codeInvalid},
		{"page[size]=0", codeInvalid},
		{"page[size]=101", codeInvalid},
		{"page[size]=-1", codeInvalid},
		{"page[size]=1.5", codeInvalid},
		{"page[size]=+5", codeInvalid},
		{"page[size]=%205", codeInvalid},
		{"page[size]=", codeInvalid},
		{"page[size]=99999999999999999999", codeInvalid},
		{"page[size]=1&page[size]=2", codeInvalid},
		{"page[number]=0", codeInvalid},
		{"page[number]=1000001", codeInvalid},
		{"page[number]=abc", codeInvalid},
		{"page[offset]=1", codeInvalid},
		{"page=1", codeInvalid},
		{"include=keys", codeInvalid},
		{"include[]=roles", codeInvalid},
		{"a=%zz", codeSyntax},
		{"a=1;b=2", codeSyntax},
		{strings.Repeat("x=1&", maxQueryValues) + "x=1", codeSyntax},
	}
	for _, c := range cases {
		res := f.do(t, call{method: "GET", path: BasePath + "?" + c.query, as: managerA})
		want := http.StatusUnprocessableEntity
		if c.code == codeSyntax {
			want = http.StatusBadRequest
		}
		if res.status != want || res.code(t) != c.code {
			t.Errorf("%.60s: %d %s", c.query, res.status, res.raw)
		}
	}
}

// The filter on state uses the mapped ApiKeyState.current.
func TestStateFilterAndSort(t *testing.T) {
	q, e := parseListQuery("filter[state]=live,inactive&sort=-state")
	if e != nil {
		t.Fatal(e)
	}
	keys := []*keystore.Key{
		{ID: "1", State: keysv1.ReasonIssued}, {ID: "2", State: keystore.StatePending},
		{ID: "3", State: keysv1.ReasonDisabled}, {ID: "4", State: keysv1.ReasonRoleNotFound},
	}
	var got []string
	for _, k := range keys {
		if q.opts.Match(k) {
			got = append(got, k.ID)
		}
	}
	if !slices.Equal(got, []string{"1", "3", "4"}) {
		t.Errorf("matched %v", got)
	}
	if !q.opts.Less(keys[0], keys[2]) || q.opts.Less(keys[2], keys[0]) || !q.opts.Less(keys[2], keys[3]) {
		t.Error("sort=-state: live before inactive, then by id")
	}
}

// Without sort or filter the store gets nil Match and Less, so it can
// answer from its own order without scanning.
func TestListOptionsDefaults(t *testing.T) {
	q, e := parseListQuery(url.Values{"page[number]": {"3"}, "page[size]": {"7"}}.Encode())
	if e != nil || q.opts.Match != nil || q.opts.Less != nil || q.opts.Offset != 14 || q.opts.Limit != 7 || q.includeRoles {
		t.Errorf("%+v %v", q, e)
	}
}

// A one-field sort and the name filters reach the store as hints it can
// serve from kept indexes; Less and Match still carry the meaning.
func TestListOptionsIndexHints(t *testing.T) {
	for query, want := range map[string]keystore.ListOptions{
		"sort=-created":                       {Sort: &keystore.SortField{Field: keystore.SortByCreated, Desc: true}},
		"sort=name":                           {Sort: &keystore.SortField{Field: keystore.SortByName}},
		"sort=-created,name":                  {},
		"sort=-created&sort=id":               {},
		"filter[search]=Key-09":               {NameContains: "Key-09"},
		"filter[search]=":                     {},
		"filter[name]=ci&sort=id":             {Name: "ci", Sort: &keystore.SortField{Field: keystore.SortByID}},
		"filter[state]=live&filter[search]=x": {NameContains: "x"},
	} {
		q, e := parseListQuery(query)
		if e != nil {
			t.Fatalf("%s: %v", query, e)
		}
		got := q.opts
		if (got.Sort == nil) != (want.Sort == nil) || got.Sort != nil && *got.Sort != *want.Sort ||
			got.NameContains != want.NameContains || got.Name != want.Name {
			t.Errorf("%s: Sort %+v, NameContains %q, Name %q; want %+v, %q, %q", query, got.Sort, got.NameContains, got.Name, want.Sort, want.NameContains, want.Name)
		}
		if got.Sort != nil && got.Less == nil {
			t.Errorf("%s: Sort without Less", query)
		}
	}
}
