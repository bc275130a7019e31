// Package keystoretest is an in-memory keystore.Store for testing dialect
// adapters as pure logic: shapes, status codes and error mapping. It
// authorises like the real store (internal/access) and keeps its rules
// (unique names, bounded fields, no escalation); the real store is tested
// against a real kube-apiserver.
package keystoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Store is an in-memory keystore.Store.
type Store struct {
	mu         sync.Mutex
	Authorizer *access.Authorizer
	Now        func() time.Time
	namespaces map[string]bool
	keys       map[string][]*keystore.Key // by namespace
	roles      map[string][]*keystore.Role
}

var _ keystore.Store = (*Store)(nil)

// New returns a store with the given namespaces.
func New(authz *access.Authorizer, namespaces ...string) *Store {
	s := &Store{Authorizer: authz, Now: time.Now, namespaces: map[string]bool{}, keys: map[string][]*keystore.Key{}, roles: map[string][]*keystore.Role{}}
	for _, ns := range namespaces {
		s.namespaces[ns] = true
	}
	return s
}

// AddRole adds a role and returns it.
func (s *Store) AddRole(namespace, name string, permissions ...string) *keystore.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &keystore.Role{Namespace: namespace, Name: name, ID: newID(), Permissions: permissions, CreatedAt: s.Now().UTC().Truncate(time.Second)}
	s.roles[namespace] = append(s.roles[namespace], r)
	return r
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NamespaceExists answers true to a caller without rights in the
// namespace, as the real store does: unknown and forbidden look alike.
func (s *Store) NamespaceExists(ctx context.Context, ns string) (bool, error) {
	if s.Authorizer != nil && access.CallerFrom(ctx) != nil && !s.Authorizer.MayKnowNamespace(ctx, ns) {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namespaces[ns], nil
}

func (s *Store) authorize(ctx context.Context, sc access.Scopes, ns string, v access.Verb) error {
	if err := s.Authorizer.Authorize(ctx, sc, ns, v); err != nil {
		return err
	}
	if !s.namespaces[ns] {
		return keystore.ErrNamespaceNotFound
	}
	return nil
}

func (s *Store) Create(ctx context.Context, sc access.Scopes, ns string, n keystore.NewKey) (*keystore.Issued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.Create); err != nil {
		return nil, err
	}
	if err := keystore.ValidateNew(&n, s.Now()); err != nil {
		return nil, err
	}
	role, err := s.roleOf(ns, n.Role, n.RoleID)
	if err != nil {
		return nil, err
	}
	if err := access.CanGrant(ctx, grantsOf(n.Permissions, role)); err != nil {
		return nil, err
	}
	if n.Name == "" {
		n.Name = "key-" + newID()[:10]
	}
	if s.find(ns, keystore.ByName(n.Name)) != nil {
		return nil, fmt.Errorf("%w: %q", keystore.ErrConflict, n.Name)
	}
	tok := n.Token
	if tok == "" {
		tok, _ = token.Mint("ak")
	}
	now := s.Now().UTC().Truncate(time.Second)
	k := &keystore.Key{
		Namespace: ns, ObjectName: n.Name, ID: newID(), Name: n.Name, Description: n.Description,
		Permissions: slices.Clone(n.Permissions), AllowedIPs: slices.Clone(n.AllowedIPs), Enabled: n.Enabled == nil || *n.Enabled,
		ExpiresAt: now.AddDate(1, 0, 0), CreatedAt: now, UpdatedAt: now, CreatedBy: access.CallerFrom(ctx).Name(),
		UpdatedBy: access.CallerFrom(ctx).Name(), KeyPrefix: token.DisplayPrefix(tok), State: keystore.StatePending,
		StateChangedAt: now, Attributes: n.Attributes,
	}
	if role != nil {
		k.Role, k.RoleID = role.Name, role.ID
	}
	if n.ExpiresAt != nil {
		k.ExpiresAt = n.ExpiresAt.UTC().Truncate(time.Second) // as the object keeps it
	}
	s.keys[ns] = append(s.keys[ns], k)
	out := *k
	return &keystore.Issued{Key: out, Token: tok}, nil
}

// roleOf finds a role by ID, else by name; nil when neither is given.
func (s *Store) roleOf(ns, name, id string) (*keystore.Role, error) {
	ref := keystore.ByName(name)
	if id != "" {
		ref = keystore.ByID(id)
	}
	if ref.Name == "" && ref.ID == "" {
		return nil, nil
	}
	if r := s.findRole(ns, ref); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w: %s", keystore.ErrRoleNotFound, ref)
}

func grantsOf(perms []string, role *keystore.Role) []string {
	if role == nil {
		return perms
	}
	return append(slices.Clone(perms), role.Permissions...)
}

func (s *Store) find(ns string, ref keystore.Ref) *keystore.Key {
	for _, k := range s.keys[ns] {
		if (ref.ID != "" && k.ID == ref.ID) || (ref.ID == "" && k.Name == ref.Name) {
			return k
		}
	}
	return nil
}

func (s *Store) findRole(ns string, ref keystore.Ref) *keystore.Role {
	for _, r := range s.roles[ns] {
		if (ref.ID != "" && r.ID == ref.ID) || (ref.ID == "" && r.Name == ref.Name) {
			return r
		}
	}
	return nil
}

func (s *Store) Get(ctx context.Context, sc access.Scopes, ns string, ref keystore.Ref) (*keystore.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.Get); err != nil {
		return nil, err
	}
	k := s.find(ns, ref)
	if k == nil {
		return nil, fmt.Errorf("%w: %s", keystore.ErrNotFound, ref)
	}
	out := *k
	return &out, nil
}

func (s *Store) List(ctx context.Context, sc access.Scopes, ns string, o keystore.ListOptions) ([]*keystore.Key, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.List); err != nil {
		return nil, 0, err
	}
	var all []*keystore.Key
	for _, k := range s.keys[ns] {
		if o.Match == nil || o.Match(k) {
			c := *k
			all = append(all, &c)
		}
	}
	less := o.Less
	if less == nil {
		less = func(a, b *keystore.Key) bool { return a.Name < b.Name }
	}
	sort.SliceStable(all, func(i, j int) bool { return less(all[i], all[j]) })
	return keystore.Page(all, o.Offset, o.Limit), len(all), nil
}

func (s *Store) Update(ctx context.Context, sc access.Scopes, ns string, ref keystore.Ref, u keystore.KeyUpdate) (*keystore.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.Update); err != nil {
		return nil, err
	}
	if err := keystore.ValidateUpdate(&u); err != nil {
		return nil, err
	}
	k := s.find(ns, ref)
	if k == nil {
		return nil, fmt.Errorf("%w: %s", keystore.ErrNotFound, ref)
	}
	if u.Name != nil && *u.Name != k.Name && s.find(ns, keystore.ByName(*u.Name)) != nil {
		return nil, fmt.Errorf("%w: %q", keystore.ErrConflict, *u.Name)
	}
	var role *keystore.Role
	if u.RoleID != nil {
		r, err := s.roleOf(ns, "", *u.RoleID)
		if err != nil {
			return nil, err
		}
		u.Role = &r.Name
	}
	if u.Role != nil && *u.Role != "" {
		if role = s.findRole(ns, keystore.ByName(*u.Role)); role == nil {
			return nil, fmt.Errorf("%w: %q", keystore.ErrRoleNotFound, *u.Role)
		}
	}
	if u.Permissions != nil || u.Role != nil || keystore.Widens(k.Enabled, k.AllowedIPs, k.ExpiresAt, &u) {
		// Like the real store: only an update that makes the key more
		// powerful is checked for escalation.
		perms := k.Permissions
		if u.Permissions != nil {
			perms = *u.Permissions
		}
		if u.Role == nil && k.Role != "" {
			role = s.findRole(ns, keystore.ByName(k.Role))
		}
		if err := access.CanGrant(ctx, grantsOf(perms, role)); err != nil {
			return nil, err
		}
	}
	apply(k, u, role)
	k.UpdatedAt, k.UpdatedBy = s.Now().UTC().Truncate(time.Second), access.CallerFrom(ctx).Name()
	out := *k
	return &out, nil
}

func apply(k *keystore.Key, u keystore.KeyUpdate, role *keystore.Role) {
	if u.Name != nil {
		k.Name = *u.Name
	}
	if u.Description != nil {
		k.Description = *u.Description
	}
	if u.Role != nil {
		k.Role, k.RoleID = "", ""
		if role != nil {
			k.Role, k.RoleID = role.Name, role.ID
		}
	}
	if u.Permissions != nil {
		k.Permissions = slices.Clone(*u.Permissions)
	}
	if u.AllowedIPs != nil {
		k.AllowedIPs = slices.Clone(*u.AllowedIPs)
	}
	if u.Enabled != nil {
		k.Enabled = *u.Enabled
	}
	if u.ExpiresAt != nil {
		k.ExpiresAt = u.ExpiresAt.UTC().Truncate(time.Second)
	}
	for name, v := range u.Attributes {
		if k.Attributes == nil {
			k.Attributes = map[string]string{}
		}
		if v == "" {
			delete(k.Attributes, name)
		} else {
			k.Attributes[name] = v
		}
	}
}

func (s *Store) Delete(ctx context.Context, sc access.Scopes, ns string, ref keystore.Ref) (*keystore.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.Delete); err != nil {
		return nil, err
	}
	k := s.find(ns, ref)
	if k == nil {
		return nil, fmt.Errorf("%w: %s", keystore.ErrNotFound, ref)
	}
	s.keys[ns] = slices.DeleteFunc(s.keys[ns], func(x *keystore.Key) bool { return x == k })
	out := *k
	return &out, nil
}

func (s *Store) GetRole(ctx context.Context, sc access.Scopes, ns string, ref keystore.Ref) (*keystore.Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.Get); err != nil {
		return nil, err
	}
	r := s.findRole(ns, ref)
	if r == nil {
		return nil, fmt.Errorf("%w: %s", keystore.ErrRoleNotFound, ref)
	}
	out := *r
	return &out, nil
}

func (s *Store) ListRoles(ctx context.Context, sc access.Scopes, ns string) ([]*keystore.Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.authorize(ctx, sc, ns, access.List); err != nil {
		return nil, err
	}
	out := make([]*keystore.Role, 0, len(s.roles[ns]))
	for _, r := range s.roles[ns] {
		c := *r
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
