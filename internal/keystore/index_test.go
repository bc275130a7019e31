package keystore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func apiKey(ns, name, display string) *keysv1.ApiKey {
	return &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       keysv1.ApiKeySpec{Name: keysv1.KeyName(display)},
	}
}

// names lists "<display>/<object>" of keys, the order they compare in.
func names(keys []*keysv1.ApiKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.DisplayName() + "/" + k.Name
	}
	return out
}

// want is the namespace's keys sorted from scratch: what page must match.
func want(all map[string]*keysv1.ApiKey, ns string) []string {
	var keys []*keysv1.ApiKey
	for _, k := range all {
		if k.Namespace == ns {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, keyOrder)
	return names(keys)
}

func TestKeyIndexPagesInOrder(t *testing.T) {
	x := newKeyIndex()
	h := x.eventHandler()
	h.OnAdd(apiKey("a", "k1", "zeta"), true)
	h.OnAdd(apiKey("a", "k2", "alpha"), true)
	h.OnAdd(apiKey("a", "k3", ""), true) // display name defaults to the object name
	h.OnAdd(apiKey("a", "k0", "alpha"), true)
	h.OnAdd(apiKey("b", "k9", "beta"), true)

	got, n := x.page("a", order{}, 0, 0)
	if exp := []string{"alpha/k0", "alpha/k2", "k3/k3", "zeta/k1"}; !slices.Equal(names(got), exp) || n != 4 {
		t.Fatalf("page(a, 0, 0) = %v, %d; want %v, 4", names(got), n, exp)
	}
	if got, n := x.page("a", order{}, 1, 2); !slices.Equal(names(got), []string{"alpha/k2", "k3/k3"}) || n != 4 {
		t.Errorf("page(a, 1, 2) = %v, %d", names(got), n)
	}
	if got, n := x.page("a", order{}, 4, 2); len(got) != 0 || n != 4 {
		t.Errorf("page past the end = %v, %d; want none, 4", names(got), n)
	}
	if got, n := x.page("missing", order{}, 0, 20); len(got) != 0 || n != 0 {
		t.Errorf("page of an empty namespace = %v, %d", names(got), n)
	}

	// A rename moves the key; an update in place keeps it; a delete
	// (also as a tombstone) removes it; other namespaces are untouched.
	h.OnUpdate(nil, apiKey("a", "k1", "aaa"))
	upd := apiKey("a", "k2", "alpha")
	upd.Spec.Description = "changed"
	h.OnUpdate(nil, upd)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "a/k3", Obj: apiKey("a", "k3", "")})
	got, n = x.page("a", order{}, 0, 0)
	if exp := []string{"aaa/k1", "alpha/k0", "alpha/k2"}; !slices.Equal(names(got), exp) || n != 3 {
		t.Fatalf("after changes: %v, %d; want %v, 3", names(got), n, exp)
	}
	if got[2].Spec.Description != "changed" {
		t.Errorf("the index holds the old object after an update")
	}
	if got, _ := x.page("b", order{}, 0, 0); !slices.Equal(names(got), []string{"beta/k9"}) {
		t.Errorf("namespace b = %v", names(got))
	}
	h.OnDelete(apiKey("b", "k9", "beta"))
	if got, n := x.page("b", order{}, 0, 0); len(got) != 0 || n != 0 {
		t.Errorf("namespace b after its last delete = %v, %d", names(got), n)
	}
}

// TestKeyIndexRandomEvents checks the incrementally kept order against a
// sort from scratch after each of many random adds, renames and deletes.
func TestKeyIndexRandomEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newKeyIndex()
	h := x.eventHandler()
	all := map[string]*keysv1.ApiKey{}
	for step := range 3000 {
		ns := fmt.Sprintf("ns%d", rng.IntN(3))
		name := fmt.Sprintf("k%03d", rng.IntN(200))
		id := ns + "/" + name
		switch old := all[id]; {
		case old != nil && rng.IntN(3) == 0:
			delete(all, id)
			h.OnDelete(old)
		default:
			k := apiKey(ns, name, fmt.Sprintf("d%02d", rng.IntN(50)))
			all[id] = k
			if old == nil {
				h.OnAdd(k, false)
			} else {
				h.OnUpdate(old, k)
			}
		}
		if step%7 == 0 { // lists between events keep the order built
			got, n := x.page(ns, order{}, 0, 0)
			exp := want(all, ns)
			if !slices.Equal(names(got), exp) || n != len(exp) {
				t.Fatalf("step %d, %s: index has %v (%d), a sort gives %v", step, ns, names(got), n, exp)
			}
			if len(exp) > 10 {
				if got, _ := x.page(ns, order{}, 5, 5); !slices.Equal(names(got), exp[5:10]) {
					t.Fatalf("step %d: page(5, 5) = %v, want %v", step, names(got), exp[5:10])
				}
			}
		}
	}
}

// BenchmarkListPage compares a page of 20 from the index with what List
// did before: a view for each of 10,000 keys, sorted, then paged.
func BenchmarkListPage(b *testing.B) {
	x := newKeyIndex()
	var items []keysv1.ApiKey
	for i := range 10000 {
		k := apiKey("ns", fmt.Sprintf("key-%05d", (i*7919)%10000), "")
		x.set(k)
		items = append(items, *k)
	}
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			keys, _ := x.page("ns", order{}, 100, 20)
			for _, k := range keys {
				_ = viewOf(k, nil)
			}
		}
	})
	b.Run("views-then-sort", func(b *testing.B) {
		for b.Loop() {
			views := make([]*Key, 0, len(items))
			for i := range items {
				views = append(views, viewOf(&items[i], nil))
			}
			slices.SortStableFunc(views, func(a, b *Key) int {
				switch {
				case a.Name < b.Name:
					return -1
				case a.Name > b.Name:
					return 1
				}
				return 0
			})
			_ = Page(views, 100, 20)
		}
	})
}

// TestKeptOrdersFollowEvents checks every kept order against a sort from
// scratch after random adds, updates and deletes; display names and
// creation times repeat, so the ID decides ties.
func TestKeptOrdersFollowEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	x := newKeyIndex()
	h := x.eventHandler()
	all := map[string]*keysv1.ApiKey{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	orders := []order{{}}
	for _, f := range []string{SortByName, SortByCreated, SortByID} {
		orders = append(orders, order{field: f}, order{field: f, desc: true})
	}
	for step := range 2000 {
		name := fmt.Sprintf("k%03d", rng.IntN(150))
		switch old := all[name]; {
		case old != nil && rng.IntN(3) == 0:
			delete(all, name)
			h.OnDelete(old)
		default:
			k := apiKey("ns", name, fmt.Sprintf("d%02d", rng.IntN(40)))
			k.UID = types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), rng.Uint64()&0xffffffffffff))
			k.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(rng.IntN(30)) * time.Second))
			if old != nil {
				k.UID, k.CreationTimestamp = old.UID, old.CreationTimestamp // both immutable
			}
			all[name] = k
			if old == nil {
				h.OnAdd(k, false)
			} else {
				h.OnUpdate(old, k)
			}
		}
		if step%5 != 0 {
			continue
		}
		o := orders[rng.IntN(len(orders))]
		var exp []*keysv1.ApiKey
		for _, k := range all {
			exp = append(exp, k)
		}
		slices.SortFunc(exp, func(a, b *keysv1.ApiKey) int { return referenceOrder(o, a, b) })
		got, n := x.page("ns", o, 0, 0)
		if !slices.Equal(got, exp) || n != len(exp) {
			t.Fatalf("step %d, order %+v: index has %v, a sort gives %v", step, o, names(got), names(exp))
		}
	}
}

// referenceOrder is the order a kept order must give, written the long
// way (with IDOf) rather than as order.compare is.
func referenceOrder(o order, a, b *keysv1.ApiKey) int {
	var c int
	switch o.field {
	case "":
		return keyOrder(a, b)
	case SortByName:
		c = strings.Compare(a.DisplayName(), b.DisplayName())
	case SortByCreated:
		c = a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time)
	case SortByID:
		c = strings.Compare(IDOf(a.UID), IDOf(b.UID))
	}
	if o.desc {
		c = -c
	}
	if c != 0 || o.field == SortByID {
		return c
	}
	return strings.Compare(IDOf(a.UID), IDOf(b.UID))
}
