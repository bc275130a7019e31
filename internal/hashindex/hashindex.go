// Package hashindex is the one index of ApiKeys by token hash, kept from
// an ApiKey informer's events; one Index per process serves every reader:
//
//   - Claimants: the keys that verify with a hash (ApiKey.TokenHashes:
//     status.hash and the previous hashes in their grace period). The
//     controller and the store ask it who else has a token; the leak
//     endpoint asks it which keys a reported token belongs to.
//   - Holders: the claimants and the keys that declare the hash in
//     spec.tokenHash, before the controller has recorded it. The admission
//     webhook asks it, so a declared hash is taken from the moment its key
//     is stored.
//
// The controller must not ask Holders: two keys declaring one hash (a
// race past the webhook) would each see the other and both be refused,
// where Claimants lets the first recorded keep it.
//
// A cache field index would answer too, but costs about ten times the
// memory: controller-runtime indexes every value twice (per namespace and
// cluster-wide) and client-go keeps a set per value, so at 10,000 keys the
// hash index alone held about 10 MiB of the controller's 52 MiB live heap
// (docs/benchmarks.md). Here a hash maps to the one key that claims it,
// and to more only when keys conflict.
package hashindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// ErrNotSynced: the index has not yet seen the informer's initial list;
// try again (a reconcile returns it and is retried).
var ErrNotSynced = errors.New("the token hash index has not synced yet")

// Index maps token hashes to the keys that claim them. Safe for
// concurrent use.
type Index struct {
	mu     sync.RWMutex
	claims map[string][]types.NamespacedName
	// declared holds spec.tokenHash of hash-only keys, whether or not the
	// controller has recorded it yet (few keys: only hash-only ones).
	declared map[string][]types.NamespacedName
	synced   func() bool
}

// New returns an empty index that never reports itself synced until
// registered (tests may feed it through Handler and call MarkSynced).
func New() *Index {
	return &Index{claims: map[string][]types.NamespacedName{}, declared: map[string][]types.NamespacedName{},
		synced: func() bool { return false }}
}

// Register keeps a new index from the ApiKey informer of informers. Call
// it before the cache starts, or the first lookups wait for the sync.
func Register(ctx context.Context, informers cache.Informers) (*Index, error) {
	inf, err := informers.GetInformer(ctx, &keysv1.ApiKey{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("token hash index: %w", err)
	}
	x := New()
	reg, err := inf.AddEventHandler(x.Handler())
	if err != nil {
		return nil, fmt.Errorf("token hash index: %w", err)
	}
	x.synced = reg.HasSynced
	return x, nil
}

// MarkSynced makes a hand-fed index answer (tests).
func (x *Index) MarkSynced() { x.synced = func() bool { return true } }

// Claimants returns the keys that claim hash.
func (x *Index) Claimants(hash string) ([]types.NamespacedName, error) {
	if !x.synced() {
		return nil, ErrNotSynced
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.claims[hash]), nil
}

// Holders returns the keys that claim hash or declare it in
// spec.tokenHash, each once.
func (x *Index) Holders(hash string) ([]types.NamespacedName, error) {
	if !x.synced() {
		return nil, ErrNotSynced
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := slices.Clone(x.claims[hash])
	for _, n := range x.declared[hash] {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Handler keeps the index in step with an ApiKey informer.
func (x *Index) Handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.update(nil, k)
			}
		},
		UpdateFunc: func(old, obj any) {
			o, _ := old.(*keysv1.ApiKey)
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.update(o, k)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if k, ok := obj.(*keysv1.ApiKey); ok {
				x.update(k, nil)
			}
		},
	}
}

// update replaces old's claims and declaration (nil: none) with key's
// (nil: none).
func (x *Index) update(old, key *keysv1.ApiKey) {
	var before, after, declBefore, declAfter []string
	var name types.NamespacedName
	if old != nil {
		before, declBefore = old.TokenHashes(), declaredHash(old)
		name = types.NamespacedName{Namespace: old.Namespace, Name: old.Name}
	}
	if key != nil {
		after, declAfter = key.TokenHashes(), declaredHash(key)
		name = types.NamespacedName{Namespace: key.Namespace, Name: key.Name}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	replace(x.claims, name, before, after)
	replace(x.declared, name, declBefore, declAfter)
}

func declaredHash(k *keysv1.ApiKey) []string {
	if h := string(k.Spec.TokenHash); h != "" {
		return []string{h}
	}
	return nil
}

// replace moves name's entries in m from the hashes before to after.
func replace(m map[string][]types.NamespacedName, name types.NamespacedName, before, after []string) {
	for _, h := range before {
		if !slices.Contains(after, h) {
			drop(m, h, name)
		}
	}
	for _, h := range after {
		if !slices.Contains(m[h], name) {
			m[h] = append(m[h], name)
		}
	}
}

func drop(m map[string][]types.NamespacedName, hash string, name types.NamespacedName) {
	rest := slices.DeleteFunc(m[hash], func(n types.NamespacedName) bool { return n == name })
	if len(rest) == 0 {
		delete(m, hash)
		return
	}
	m[hash] = rest
}
