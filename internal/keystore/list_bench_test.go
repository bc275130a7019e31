package keystore

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
