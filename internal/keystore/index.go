package keystore

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// keyOrder is the default order of a list: display name, then object name
// (unique in a namespace), so that pages are stable.
func keyOrder(a, b *keysv1.ApiKey) int {
	if c := cmp.Compare(a.DisplayName(), b.DisplayName()); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// order is one order the index keeps a namespace's keys in: the default
// (keyOrder) when field is "", else one of the Sort fields, then ID
// ascending, as ListOptions.Sort says.
type order struct {
	field string
	desc  bool
}

// indexedOrder tells which kept order serves o, if any: the default when
// o has no Less, the Sort field when it names one the index keeps.
func indexedOrder(o ListOptions) (order, bool) {
	if o.Less == nil {
		return order{}, true
	}
	if o.Sort == nil {
		return order{}, false
	}
	switch o.Sort.Field {
	case SortByName, SortByCreated, SortByID:
		return order{field: o.Sort.Field, desc: o.Sort.Desc}, true
	}
	return order{}, false
}

func (o order) compare(a, b *keysv1.ApiKey) int {
	var c int
	switch o.field {
	case "":
		return keyOrder(a, b)
	case SortByName:
		c = cmp.Compare(a.DisplayName(), b.DisplayName())
	case SortByCreated:
		c = a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	}
	if o.desc {
		c = -c
	}
	if c != 0 {
		return c
	}
	c = compareIDs(a.UID, b.UID)
	if o.field == SortByID && o.desc {
		return -c
	}
	return c
}

// compareIDs compares IDOf(a) with IDOf(b) without building either.
func compareIDs(a, b types.UID) int {
	i, j, n := 0, 0, 0
	for ; n < 24; n++ {
		for i < len(a) && a[i] == '-' {
			i++
		}
		for j < len(b) && b[j] == '-' {
			j++
		}
		switch {
		case i == len(a) && j == len(b):
			return 0
		case i == len(a):
			return -1
		case j == len(b):
			return 1
		case a[i] != b[j]:
			return cmp.Compare(a[i], b[j])
		}
		i++
		j++
	}
	return 0
}

// keyIndex keeps each namespace's ApiKeys in the orders lists ask for,
// maintained from the informer's events, so that a list pages from it
// without copying, building views of or sorting every key of the
// namespace per request. It holds the cache's own objects: never modify
// them.
type keyIndex struct {
	mu   sync.Mutex
	byNS map[string]*nsKeys
	// synced tells whether the index has seen the informer's initial list.
	synced func() bool
}

type nsKeys struct {
	objs map[string]*keysv1.ApiKey // by object name
	// sorted holds objs in each order a list has asked for (at most the
	// default and two per Sort field: 7), built on first use and kept in
	// order by every event: 8 bytes per key and order.
	sorted map[order][]*keysv1.ApiKey
}

func newKeyIndex() *keyIndex { return &keyIndex{byNS: map[string]*nsKeys{}} }

func (x *keyIndex) set(key *keysv1.ApiKey) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[key.Namespace]
	if n == nil {
		n = &nsKeys{objs: map[string]*keysv1.ApiKey{}, sorted: map[order][]*keysv1.ApiKey{}}
		x.byNS[key.Namespace] = n
	}
	old := n.objs[key.Name]
	n.objs[key.Name] = key
	for o, keys := range n.sorted {
		n.sorted[o] = place(keys, o, old, key)
	}
}

// place puts key into keys (in order o) in the place of old, which may be
// nil.
func place(keys []*keysv1.ApiKey, o order, old, key *keysv1.ApiKey) []*keysv1.ApiKey {
	if old != nil {
		if i, ok := slices.BinarySearchFunc(keys, old, o.compare); ok {
			if o.compare(old, key) == 0 {
				keys[i] = key // same place: most updates (status)
				return keys
			}
			keys = slices.Delete(keys, i, i+1)
		}
	}
	i, _ := slices.BinarySearchFunc(keys, key, o.compare)
	return slices.Insert(keys, i, key)
}

func (x *keyIndex) delete(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return
	}
	old := n.objs[name]
	if old == nil {
		return
	}
	delete(n.objs, name)
	if len(n.objs) == 0 {
		delete(x.byNS, namespace)
		return
	}
	for o, keys := range n.sorted {
		if i, ok := slices.BinarySearchFunc(keys, old, o.compare); ok {
			n.sorted[o] = slices.Delete(keys, i, i+1)
		}
	}
}

// ordered returns the namespace's keys in order o, building that order on
// first use. The caller holds x.mu.
func (n *nsKeys) ordered(o order) []*keysv1.ApiKey {
	keys, ok := n.sorted[o]
	if !ok {
		keys = make([]*keysv1.ApiKey, 0, len(n.objs))
		for _, k := range n.objs {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, o.compare)
		n.sorted[o] = keys
	}
	return keys
}

// byName returns the namespace's key whose display name is name, nil
// when none: a binary search in the default order, which sorts by display
// name first. Display names are unique in a namespace (the store and the
// webhook refuse a second); should two keys hold one anyway, the first in
// the default order answers, as any one did from the cache's field index.
//
// The lookups by name and ID used to be two cache field indexes: client-go
// keeps a set per value and controller-runtime indexes each value twice
// (per namespace and cluster-wide), about 2 KB per key, 21.6 MB of the API
// server's 67 MB live heap with 20,000 keys (docs/benchmarks.md). The kept
// orders cost 8 bytes per key each.
func (x *keyIndex) byName(namespace, name string) *keysv1.ApiKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return nil
	}
	keys := n.ordered(order{})
	i, _ := slices.BinarySearchFunc(keys, name, func(k *keysv1.ApiKey, name string) int {
		return cmp.Compare(k.DisplayName(), name)
	})
	if i < len(keys) && keys[i].DisplayName() == name {
		return keys[i]
	}
	return nil
}

// byID returns the namespace's key whose ID (IDOf its UID) is id, nil when
// none: a binary search in the ID order.
func (x *keyIndex) byID(namespace, id string) *keysv1.ApiKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return nil
	}
	keys := n.ordered(order{field: SortByID})
	i, _ := slices.BinarySearchFunc(keys, id, func(k *keysv1.ApiKey, id string) int {
		return compareIDs(k.UID, types.UID(id))
	})
	// compareIDs reads at most 24 characters and skips dashes: check
	// the whole ID.
	if i < len(keys) && IDOf(keys[i].UID) == id {
		return keys[i]
	}
	return nil
}

// page returns the namespace's keys in order o from offset, at most limit
// of them (0: all), and how many keys the namespace has. Only the page's
// pointers are copied.
func (x *keyIndex) page(namespace string, o order, offset, limit int) ([]*keysv1.ApiKey, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return nil, 0
	}
	keys := n.ordered(o)
	return slices.Clone(Page(keys, offset, limit)), len(keys)
}

// matching returns the namespace's keys in order o that keep (nil: all)
// returns true for. keep runs under the index's lock: it must be cheap
// and must not call back into the index.
func (x *keyIndex) matching(namespace string, o order, keep func(*keysv1.ApiKey) bool) []*keysv1.ApiKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return nil
	}
	keys := n.ordered(o)
	if keep == nil {
		return slices.Clone(keys)
	}
	var out []*keysv1.ApiKey
	for _, k := range keys {
		if keep(k) {
			out = append(out, k)
		}
	}
	return out
}

// eventHandler keeps the index in step with an ApiKey informer.
func (x *keyIndex) eventHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.set(k)
			}
		},
		UpdateFunc: func(_, obj any) {
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.set(k)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.delete(k.Namespace, k.Name)
			}
		},
	}
}

// listIndex returns the store's index of keys in list order, registering
// it with the ApiKey informer on first use; nil (lists fall back to
// reading the cache) until the informer's initial list has reached it,
// or when no informer is at hand.
func (s *Kube) listIndex(ctx context.Context) *keyIndex {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if s.index == nil {
		informers := s.Informers
		if informers == nil {
			informers, _ = s.Cache.(cache.Informers)
		}
		if informers == nil {
			return nil
		}
		inf, err := informers.GetInformer(ctx, &keysv1.ApiKey{}, cache.BlockUntilSynced(false))
		if err != nil {
			return nil
		}
		x := newKeyIndex()
		reg, err := inf.AddEventHandler(x.eventHandler())
		if err != nil {
			return nil
		}
		x.synced = reg.HasSynced
		s.index = x
	}
	if !s.index.synced() {
		return nil
	}
	return s.index
}
