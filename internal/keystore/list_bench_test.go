package keystore

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// BenchmarkListSortedFiltered lists a page of 20 out of 10,000 keys in one
// namespace, sorted newest first and filtered by a name search, through
// the store's kept order and name narrowing ("kept"), and through Less and
// Match alone, as before them ("per request").
func BenchmarkListSortedFiltered(b *testing.B) {
	const ns, n = "tenant", 10000
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var keys []client.Object
	for i := range n {
		k := apiKey(ns, fmt.Sprintf("key-%05d", i), "")
		k.UID = types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i*7919%n, i))
		k.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(i/50) * time.Second)) // 50 a second
		keys = append(keys, k)
	}
	_, store, ctx, sc := listStores(ns, keys)
	search := func(k *Key) bool { return ContainsFold(k.Name, "key-0999") }
	for _, bc := range []struct {
		name string
		o    ListOptions
	}{
		{"sort=-created/kept", ListOptions{Less: newest, Sort: &SortField{Field: SortByCreated, Desc: true}, Limit: 20}},
		{"sort=-created/per-request", ListOptions{Less: newest, Limit: 20}},
		{"filter-search/kept", ListOptions{Match: search, NameContains: "key-0999", Limit: 20}},
		{"filter-search/per-request", ListOptions{Match: search, Limit: 20}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if page, _, err := store.List(ctx, sc, ns, bc.o); err != nil || len(page) == 0 {
					b.Fatal(err, len(page))
				}
			}
		})
	}
}

// BenchmarkLookupIndexMemory reports the heap the lookups by display name
// and ID cost per key, at 10,000 keys in one namespace: the two cache
// field indexes they were (client-go's indexer, with controller-runtime's
// two values per object: per namespace and cluster-wide), against the
// list index's default and ID orders that serve them now. It reports
// bytes per key (B/key); it times nothing worth reading.
func BenchmarkLookupIndexMemory(b *testing.B) {
	const ns, n = "tenant", 10000
	keys := make([]*keysv1.ApiKey, n)
	for i := range keys {
		k := apiKey(ns, fmt.Sprintf("key-%05d", i), fmt.Sprintf("Key %05d", i))
		k.UID = types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i*7919%n, i))
		keys[i] = k
	}
	// Both hold the objects already (the informer's store): only what
	// the lookups add is measured.
	heap := func(build func() any) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		kept := build()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(kept)
		return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	}
	twice := func(ns, v string) []string { return []string{ns + "/" + v, "__all_namespaces/" + v} }
	b.Run("field-indexes", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = heap(func() any {
				x := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{
					"field:keystore.displayName": func(o any) ([]string, error) {
						k := o.(*keysv1.ApiKey)
						return twice(k.Namespace, k.DisplayName()), nil
					},
					"field:keystore.id": func(o any) ([]string, error) {
						k := o.(*keysv1.ApiKey)
						return twice(k.Namespace, IDOf(k.UID)), nil
					},
				})
				for _, k := range keys {
					_ = x.Add(k)
				}
				return x
			})
		}
		// The indexer's own store (a map of n pointers) is in both
		// setups; subtract it.
		store := heap(func() any {
			x := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
			for _, k := range keys {
				_ = x.Add(k)
			}
			return x
		})
		b.ReportMetric(per-store, "B/key")
	})
	b.Run("kept-orders", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = heap(func() any {
				x := newKeyIndex()
				for _, k := range keys {
					x.set(k)
				}
				x.byName(ns, "Key 00001")
				x.byID(ns, IDOf(keys[1].UID))
				return x
			})
		}
		// The index's objs map serves the lists and is there anyway;
		// subtract it.
		objs := heap(func() any {
			x := newKeyIndex()
			for _, k := range keys {
				x.set(k)
			}
			return x
		})
		b.ReportMetric(per-objs, "B/key")
	})
}
