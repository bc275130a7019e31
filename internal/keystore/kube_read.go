package keystore

import (
	"context"
	"fmt"
	"slices"
	"sort"

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
	list := &keysv1.ApiKeyRoleList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{idIndex: id}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrRoleNotFound, ByID(id))
	}
	return &list.Items[0], nil
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

// find looks a key up in the cache by display name or ID; nil when absent.
func (s *Kube) find(ctx context.Context, ns string, ref Ref) (*keysv1.ApiKey, error) {
	field, value := displayNameIndex, ref.Name
	if ref.ID != "" {
		field, value = idIndex, ref.ID
	}
	list := &keysv1.ApiKeyList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.MatchingFields{field: value}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
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

// List pages the namespace's keys. In the default order (display name)
// without a filter it takes only the page from the store's ordered index
// and builds views for those keys alone: a page of 20 out of 10,000 costs
// 20 views, not 10,000. A filter builds a view per key to test it but
// keeps only the page's; another order builds and sorts them all.
func (s *Kube) List(ctx context.Context, sc access.Scopes, ns string, o ListOptions) ([]*Key, int, error) {
	if err := s.authorize(ctx, sc, ns, access.List); err != nil {
		return nil, 0, err
	}
	roles := s.roleIDs(ctx, ns)
	x := s.listIndex(ctx)
	if x != nil && o.Match == nil && o.Less == nil {
		keys, n := x.page(ns, o.Offset, o.Limit)
		var views []*Key
		for _, k := range keys {
			views = append(views, viewOf(k, roles))
		}
		return views, n, nil
	}
	var keys []*keysv1.ApiKey
	if x != nil {
		keys, _ = x.page(ns, 0, 0)
	} else {
		list := &keysv1.ApiKeyList{}
		if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		keys = make([]*keysv1.ApiKey, len(list.Items))
		for i := range list.Items {
			keys[i] = &list.Items[i]
		}
		slices.SortFunc(keys, keyOrder)
	}
	if o.Less == nil {
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
