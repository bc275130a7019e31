package keystore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
)

// roleOf finds a role by name or, when given, by ID; nil when neither.
func (s *Kube) roleOf(ctx context.Context, ns, name, id string) (*keysv1.ApiKeyRole, error) {
	if id != "" {
		return s.roleByID(ctx, ns, id)
	}
	return s.roleFor(ctx, ns, name)
}

func (s *Kube) roleByID(ctx context.Context, ns, id string) (*keysv1.ApiKeyRole, error) {
	// A namespace holds few roles: a pass over them, not an index.
	list := &keysv1.ApiKeyRoleList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for i := range list.Items {
		if IDOf(list.Items[i].UID) == id {
			return list.Items[i].DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrRoleNotFound, ByID(id))
}

func (s *Kube) roleFor(ctx context.Context, ns, name string) (*keysv1.ApiKeyRole, error) {
	if name == "" {
		return nil, nil
	}
	role := &keysv1.ApiKeyRole{}
	err := s.Cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, role)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: %q", ErrRoleNotFound, name)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return role, nil
}

// find looks a key up by display name or ID; nil when absent. It reads
// the list index (the orders it keeps, by binary search), else, until the
// index has synced, every cached key of the namespace. The answer is a
// copy the caller may change.
func (s *Kube) find(ctx context.Context, ns string, ref Ref) (*keysv1.ApiKey, error) {
	if x := s.listIndex(ctx); x != nil {
		var key *keysv1.ApiKey
		if ref.ID != "" {
			key = x.byID(ns, ref.ID)
		} else {
			key = x.byName(ns, ref.Name)
		}
		if key == nil {
			return nil, nil
		}
		return key.DeepCopy(), nil
	}
	list := &keysv1.ApiKeyList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for i := range list.Items {
		k := &list.Items[i]
		if (ref.ID != "" && IDOf(k.UID) == ref.ID) || (ref.ID == "" && k.DisplayName() == ref.Name) {
			return k.DeepCopy(), nil
		}
	}
	return nil, nil
}

func (s *Kube) get(ctx context.Context, ns string, ref Ref) (*keysv1.ApiKey, error) {
	key, err := s.find(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return key, nil
}

func (s *Kube) Get(ctx context.Context, sc access.Scopes, ns string, ref Ref) (*Key, error) {
	if err := s.authorize(ctx, sc, ns, access.Get); err != nil {
		return nil, err
	}
	key, err := s.get(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, key), nil
}

// List pages the namespace's keys. The store's index keeps each
// namespace's keys in the default order (display name) and in each Sort
// order asked for, updated from the informer's events. Unfiltered, a list
// takes only the page from the kept order and builds views for those keys
// alone: a page of 20 out of 10,000 costs 20 views, not 10,000, whatever
// the order. A filter first skips the keys NameContains and Name rule
// out, on the cached objects, then builds views of the rest to test them
// and keeps only the page's. An order the index does not keep (a Less
// without a Sort it knows) builds and sorts the views per request.
func (s *Kube) List(ctx context.Context, sc access.Scopes, ns string, o ListOptions) ([]*Key, int, error) {
	if err := s.authorize(ctx, sc, ns, access.List); err != nil {
		return nil, 0, err
	}
	roles := s.roleIDs(ctx, ns)
	x := s.listIndex(ctx)
	ord, kept := indexedOrder(o)
	narrow := o.narrows()
	if x != nil && kept && o.Match == nil && narrow == nil {
		keys, n := x.page(ns, ord, o.Offset, o.Limit)
		views := make([]*Key, 0, len(keys))
		for _, k := range keys {
			views = append(views, viewOf(k, roles))
		}
		return views, n, nil
	}
	keys, err := s.candidates(ctx, x, ns, ord, narrow)
	if err != nil {
		return nil, 0, err
	}
	if o.Less == nil || (x != nil && kept) {
		// Already in order: keep only the page's views.
		var views []*Key
		n := 0
		for _, k := range keys {
			v := viewOf(k, roles)
			if o.Match != nil && !o.Match(v) {
				continue
			}
			if o.Offset >= 0 && n >= o.Offset && (o.Limit == 0 || n < o.Offset+o.Limit) {
				views = append(views, v)
			}
			n++
		}
		return views, n, nil
	}
	views := make([]*Key, 0, len(keys))
	for _, k := range keys {
		if v := viewOf(k, roles); o.Match == nil || o.Match(v) {
			views = append(views, v)
		}
	}
	sort.SliceStable(views, func(i, j int) bool { return o.Less(views[i], views[j]) })
	return Page(views, o.Offset, o.Limit), len(views), nil
}

// candidates are the namespace's keys that narrow (nil: any) keeps: from
// the index in order ord when there is one, else from a cache read in the
// default order.
func (s *Kube) candidates(ctx context.Context, x *keyIndex, ns string, ord order, narrow func(string) bool) ([]*keysv1.ApiKey, error) {
	var keep func(*keysv1.ApiKey) bool
	if narrow != nil {
		keep = func(k *keysv1.ApiKey) bool { return narrow(k.DisplayName()) }
	}
	if x != nil {
		return x.matching(ns, ord, keep), nil
	}
	list := &keysv1.ApiKeyList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	keys := make([]*keysv1.ApiKey, 0, len(list.Items))
	for i := range list.Items {
		if keep == nil || keep(&list.Items[i]) {
			keys = append(keys, &list.Items[i])
		}
	}
	slices.SortFunc(keys, keyOrder)
	return keys, nil
}

func (s *Kube) GetRole(ctx context.Context, sc access.Scopes, ns string, ref Ref) (*Role, error) {
	if err := s.authorize(ctx, sc, ns, access.Get); err != nil {
		return nil, err
	}
	if ref.ID == "" {
		role, err := s.roleFor(ctx, ns, ref.Name)
		if err != nil {
			return nil, err
		}
		return roleView(role), nil
	}
	role, err := s.roleByID(ctx, ns, ref.ID)
	if err != nil {
		return nil, err
	}
	return roleView(role), nil
}

func (s *Kube) ListRoles(ctx context.Context, sc access.Scopes, ns string) ([]*Role, error) {
	if err := s.authorize(ctx, sc, ns, access.List); err != nil {
		return nil, err
	}
	list := &keysv1.ApiKeyRoleList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out := make([]*Role, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, roleView(&list.Items[i]))
	}
	slices.SortFunc(out, func(a, b *Role) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
