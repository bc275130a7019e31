package keystore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Cache indexes the store looks keys and roles up by.
const (
	displayNameIndex = "keystore.displayName"
	idIndex          = "keystore.id"
	// tokenHashIndex: every hash a key verifies (ApiKey.TokenHashes), so
	// that a caller-chosen secret already in use is refused.
	tokenHashIndex = "keystore.tokenHash"
)

// IndexFields registers the store's indexes on a cache; call it before the
// cache starts.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, displayNameIndex, func(o client.Object) []string {
		return []string{o.(*keysv1.ApiKey).DisplayName()}
	}); err != nil {
		return fmt.Errorf("index keys by name: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, idIndex, func(o client.Object) []string {
		return []string{IDOf(o.GetUID())}
	}); err != nil {
		return fmt.Errorf("index keys by id: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, tokenHashIndex, func(o client.Object) []string {
		return o.(*keysv1.ApiKey).TokenHashes()
	}); err != nil {
		return fmt.Errorf("index keys by token hash: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKeyRole{}, idIndex, func(o client.Object) []string {
		return []string{IDOf(o.GetUID())}
	}); err != nil {
		return fmt.Errorf("index roles by id: %w", err)
	}
	return nil
}

// keyOrder is the default order of a list: display name, then object name
// (unique in a namespace), so that pages are stable.
func keyOrder(a, b *keysv1.ApiKey) int {
	if c := cmp.Compare(a.DisplayName(), b.DisplayName()); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// keyIndex keeps each namespace's ApiKeys in keyOrder, maintained from the
// informer's events, so that a list pages from it without copying,
// building views of or sorting every key of the namespace per request.
// It holds the cache's own objects: never modify them.
type keyIndex struct {
	mu   sync.Mutex
	byNS map[string]*nsKeys
	// synced tells whether the index has seen the informer's initial list.
	synced func() bool
}

type nsKeys struct {
	objs map[string]*keysv1.ApiKey // by object name
	// sorted holds objs in keyOrder; nil until a list asks for it, then
	// kept in order by every event.
	sorted []*keysv1.ApiKey
}

func newKeyIndex() *keyIndex { return &keyIndex{byNS: map[string]*nsKeys{}} }

// search finds key's place in n.sorted by keyOrder.
func (n *nsKeys) search(key *keysv1.ApiKey) (int, bool) {
	return slices.BinarySearchFunc(n.sorted, key, keyOrder)
}

func (x *keyIndex) set(key *keysv1.ApiKey) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[key.Namespace]
	if n == nil {
		n = &nsKeys{objs: map[string]*keysv1.ApiKey{}}
		x.byNS[key.Namespace] = n
	}
	old := n.objs[key.Name]
	n.objs[key.Name] = key
	if n.sorted == nil {
		return
	}
	if old != nil {
		if i, ok := n.search(old); ok {
			if old.DisplayName() == key.DisplayName() {
				n.sorted[i] = key // same place: most updates (status)
				return
			}
			n.sorted = slices.Delete(n.sorted, i, i+1)
		}
	}
	i, _ := n.search(key)
	n.sorted = slices.Insert(n.sorted, i, key)
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
	if n.sorted != nil {
		if i, ok := n.search(old); ok {
			n.sorted = slices.Delete(n.sorted, i, i+1)
		}
	}
}

// page returns the namespace's keys from offset, at most limit of them
// (0: all), in keyOrder, and how many keys the namespace has. Only the
// page's pointers are copied.
func (x *keyIndex) page(namespace string, offset, limit int) ([]*keysv1.ApiKey, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.byNS[namespace]
	if n == nil {
		return nil, 0
	}
	if n.sorted == nil {
		n.sorted = make([]*keysv1.ApiKey, 0, len(n.objs))
		for _, k := range n.objs {
			n.sorted = append(n.sorted, k)
		}
		slices.SortFunc(n.sorted, keyOrder)
	}
	return slices.Clone(Page(n.sorted, offset, limit)), len(n.sorted)
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
