package keystore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
)

// fakeInformers hands List an ApiKey informer that replays objs to each
// handler and reports it synced; nothing else of cache.Informers is used.
type fakeInformers struct {
	cache.Informers
	objs []client.Object
}

func (f *fakeInformers) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return &fakeInformer{objs: f.objs}, nil
}

type fakeInformer struct {
	cache.Informer
	objs []client.Object
}

type syncedRegistration struct {
	toolscache.ResourceEventHandlerRegistration
}

func (syncedRegistration) HasSynced() bool { return true }

func (f *fakeInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	for _, o := range f.objs {
		h.OnAdd(o, true)
	}
	return syncedRegistration{}, nil
}

// listStores are two stores over the same keys in a fake cache, one
// without the list index, one with it, and a caller with every
// permission in namespace ns.
func listStores(ns string, keys []client.Object) (plain, indexed *Kube, ctx context.Context, sc access.Scopes) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = keysv1.AddToScheme(s)
	objs := append([]client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}}, keys...)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	plain = &Kube{Cache: c, Client: c, Authorizer: &access.Authorizer{}}
	indexed = &Kube{Cache: c, Client: c, Authorizer: &access.Authorizer{}, Informers: &fakeInformers{objs: keys}}
	ctx = access.WithCaller(context.Background(), &access.Caller{
		User: &user.DefaultInfo{Name: "test"},
		Key:  &access.KeyCaller{Namespace: ns, Permissions: []string{"*"}},
	})
	return plain, indexed, ctx, access.Scopes{Read: "keys:read", Write: "keys:write"}
}

// newest orders keys as the hub's sort=-created does: newest first, then
// by ID.
func newest(a, b *Key) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID < b.ID
}

// TestListFromIndexMatchesCacheList lists the same keys through the
// ordered index and through a plain cache read, with and without filters,
// orders and pages: both must give the same keys, in the same order, and
// the same count.
func TestListFromIndexMatchesCacheList(t *testing.T) {
	const ns = "tenant"
	var keys []client.Object
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 57 {
		k := apiKey(ns, fmt.Sprintf("obj-%02d", i), fmt.Sprintf("key-%02d", (i*17)%40)) // some display names twice
		k.UID = types.UID("uid-" + k.Name)
		k.CreationTimestamp = metav1.NewTime(base.Add(time.Duration((i*31)%57) * time.Minute))
		keys = append(keys, k)
	}
	keys = append(keys, apiKey("other", "obj-x", "key-00"))
	plain, indexed, ctx, sc := listStores(ns, keys)
	oldest := func(a, b *Key) bool {
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	}
	byName := func(desc bool) func(a, b *Key) bool {
		return func(a, b *Key) bool {
			if a.Name != b.Name {
				return (a.Name < b.Name) != desc
			}
			return a.ID < b.ID
		}
	}
	byID := func(desc bool) func(a, b *Key) bool {
		return func(a, b *Key) bool { return (a.ID < b.ID) != desc }
	}
	search := func(sub string) func(*Key) bool { return func(k *Key) bool { return ContainsFold(k.Name, sub) } }
	created := func(desc bool) *SortField { return &SortField{Field: SortByCreated, Desc: desc} }
	for name, o := range map[string]ListOptions{
		"newest first, kept order":       {Less: newest, Sort: created(true), Limit: 10},
		"newest first, kept, page 3":     {Less: newest, Sort: created(true), Offset: 20, Limit: 10},
		"oldest first, kept order":       {Less: oldest, Sort: created(false), Offset: 5, Limit: 10},
		"name, kept order":               {Less: byName(false), Sort: &SortField{Field: SortByName}},
		"-name, kept order":              {Less: byName(true), Sort: &SortField{Field: SortByName, Desc: true}, Limit: 15},
		"id, kept order":                 {Less: byID(false), Sort: &SortField{Field: SortByID}},
		"-id, kept order":                {Less: byID(true), Sort: &SortField{Field: SortByID, Desc: true}, Offset: 3, Limit: 7},
		"search, narrowed":               {Match: search("KEY-1"), NameContains: "KEY-1", Limit: 5},
		"search, narrowed, page 2":       {Match: search("ey-2"), NameContains: "ey-2", Offset: 2, Limit: 3},
		"search, narrowed, newest, kept": {Match: search("key-3"), NameContains: "key-3", Less: newest, Sort: created(true)},
		"search, narrowed, unknown sort": {Match: search("key-3"), NameContains: "key-3", Less: newest},
		"name, narrowed":                 {Match: func(k *Key) bool { return k.Name == "key-17" }, Name: "key-17"},
		"name, narrowed, no match":       {Match: func(k *Key) bool { return k.Name == "nope" }, Name: "nope"},
		"all":                            {},
		"first page":                     {Limit: 20},
		"third page":                     {Offset: 40, Limit: 20},
		"past the end":                   {Offset: 60, Limit: 20},
		"filter":                         {Match: func(k *Key) bool { return strings.HasSuffix(k.Name, "7") }},
		"filter, page 2":                 {Match: func(k *Key) bool { return strings.Contains(k.Name, "1") }, Offset: 5, Limit: 5},
		"newest first":                   {Less: newest, Limit: 10},
		"newest, filtered":               {Less: newest, Match: func(k *Key) bool { return k.Name > "key-20" }, Offset: 3, Limit: 4},
		"negative offset":                {Offset: -1, Limit: 5},
		"filter past end":                {Match: func(*Key) bool { return true }, Offset: 100},
		"filter, all pages":              {Match: func(*Key) bool { return true }},
	} {
		t.Run(name, func(t *testing.T) {
			// The reference ignores the hints: Less and Match alone decide.
			ref := o
			ref.Sort, ref.NameContains, ref.Name = nil, "", ""
			want, wantN, err := plain.List(ctx, sc, ns, ref)
			if err != nil {
				t.Fatal(err)
			}
			got, gotN, err := indexed.List(ctx, sc, ns, o)
			if err != nil {
				t.Fatal(err)
			}
			if indexed.index == nil {
				t.Fatal("the indexed store did not use its index")
			}
			ids := func(ks []*Key) []string {
				out := []string{}
				for _, k := range ks {
					out = append(out, k.Name+"/"+k.ObjectName)
				}
				return out
			}
			if !slices.Equal(ids(got), ids(want)) || gotN != wantN {
				t.Errorf("index: %v (%d)\ncache: %v (%d)", ids(got), gotN, ids(want), wantN)
			}
			if o.Less == nil && !slices.IsSortedFunc(ids(got), strings.Compare) {
				t.Errorf("not in name order: %v", ids(got))
			}
		})
	}
}

// TestFindByNameAndIDFromIndex looks every key up by display name and by
// ID through the list index and through a plain pass over the cache (the
// fallback until the index syncs): both find the same key, and neither
// finds a name or ID no key has, nor an ID that only starts like one.
func TestFindByNameAndIDFromIndex(t *testing.T) {
	const ns = "tenant"
	var keys []client.Object
	for i := range 40 {
		k := apiKey(ns, fmt.Sprintf("obj-%02d", i), fmt.Sprintf("key-%02d", (i*7)%40))
		k.UID = types.UID(fmt.Sprintf("1234abcd-%04d-4000-8000-%012d", i, i*i))
		keys = append(keys, k)
	}
	dup := apiKey(ns, "obj-dup", "key-05") // a display name twice: either answers
	dup.UID = "ffffffff-0000-4000-8000-000000000000"
	other := apiKey("other", "obj-x", "key-00")
	other.UID = "eeeeeeee-0000-4000-8000-000000000000"
	keys = append(keys, dup, other)
	plain, indexed, ctx, _ := listStores(ns, keys)
	for _, s := range []*Kube{plain, indexed} {
		for _, o := range keys {
			k := o.(*keysv1.ApiKey)
			if k.Namespace != ns {
				continue
			}
			got, err := s.find(ctx, ns, ByID(IDOf(k.UID)))
			if err != nil || got == nil || got.Name != k.Name {
				t.Errorf("indexed=%v find(id of %s) = %v, %v", s.Informers != nil, k.Name, got, err)
			}
			got, err = s.find(ctx, ns, ByName(k.DisplayName()))
			if err != nil || got == nil || got.DisplayName() != k.DisplayName() {
				t.Errorf("indexed=%v find(name %q) = %v, %v", s.Informers != nil, k.DisplayName(), got, err)
			}
		}
		for _, ref := range []Ref{
			ByName("key-40"), ByName(""), ByName("key-0"), ByName("Key-01"),
			ByID(IDOf(other.UID)), // another namespace's key
			ByID(IDOf(keys[3].GetUID()) + "0"), ByID(IDOf(keys[3].GetUID())[:23]), ByID(string(keys[3].GetUID())), ByID(""),
		} {
			if got, err := s.find(ctx, ns, ref); err != nil || got != nil {
				t.Errorf("indexed=%v find(%s) = %v, %v; want nothing", s.Informers != nil, ref, got, err)
			}
		}
		// The answer is a copy: changing it changes nothing the next
		// lookup sees.
		got, _ := s.find(ctx, ns, ByName("key-07"))
		got.Spec.Name = "changed"
		if again, _ := s.find(ctx, ns, ByName("key-07")); again == nil || again.DisplayName() != "key-07" {
			t.Errorf("indexed=%v: the lookup handed out the cached object", s.Informers != nil)
		}
	}
}
