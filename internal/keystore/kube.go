package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Annotations the store keeps on the ApiKeys it writes. None holds a secret.
const (
	CreatedByAnnotation  = "keys.apikey-operator.io/created-by"
	ModifiedByAnnotation = "keys.apikey-operator.io/modified-by"
	ModifiedAtAnnotation = "keys.apikey-operator.io/modified-at"
	// AttributePrefix starts the annotations that hold Key.Attributes.
	AttributePrefix = "attributes.keys.apikey-operator.io/"
)

// Kube is the Store backed by Kubernetes: reads from the informer cache
// (ApiKeys, ApiKeyRoles, Namespaces; never Secrets), writes through the
// API. It creates a key's Secret itself, because only the create response
// may show the token, and the API server has no read access to Secrets.
type Kube struct {
	Cache      client.Reader // indexed with IndexFields
	Client     client.Client // uncached writes
	Authorizer *access.Authorizer
	// DefaultLifetime is a new key's life when the request gives none.
	DefaultLifetime time.Duration
	TokenPrefix     string
	Clock           clock.PassiveClock
	// Informers give List the ApiKey informer it keeps its ordered index
	// from; nil: Cache, when it is an informer cache too. Without one,
	// List reads, builds and sorts every key of the namespace per call.
	Informers cache.Informers
	// Recorder puts an Event on each ApiKey written, naming who wrote it;
	// nil: no Events (the audit annotations are written regardless).
	Recorder EventRecorder

	indexMu sync.Mutex
	index   *keyIndex
}

var _ Store = (*Kube)(nil)

func (s *Kube) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

// NamespaceExists answers true, whatever the truth, to a caller without
// rights in the namespace: the operation that follows is then refused as
// forbidden, as it is for a namespace that exists, so unknown and
// forbidden look alike (issue 11).
func (s *Kube) NamespaceExists(ctx context.Context, namespace string) (bool, error) {
	if s.Authorizer != nil && access.CallerFrom(ctx) != nil && !s.Authorizer.MayKnowNamespace(ctx, namespace) {
		return true, nil
	}
	return s.namespaceExists(ctx, namespace)
}

func (s *Kube) namespaceExists(ctx context.Context, namespace string) (bool, error) {
	err := s.Cache.Get(ctx, client.ObjectKey{Name: namespace}, &corev1.Namespace{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, nil
}

// authorize checks the caller, then that the namespace exists.
func (s *Kube) authorize(ctx context.Context, sc access.Scopes, ns string, v access.Verb) error {
	if err := s.Authorizer.Authorize(ctx, sc, ns, v); err != nil {
		return err
	}
	ok, err := s.namespaceExists(ctx, ns)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrNamespaceNotFound, ns)
	}
	return nil
}

func (s *Kube) Create(ctx context.Context, sc access.Scopes, ns string, n NewKey) (_ *Issued, err error) {
	w := &write{op: "create", ns: ns, name: n.Name}
	defer func() { s.record(ctx, w, err) }()
	if err := s.authorize(ctx, sc, ns, access.Create); err != nil {
		return nil, err
	}
	now := s.now()
	if err := ValidateNew(&n, now); err != nil {
		return nil, err
	}
	role, err := s.roleOf(ctx, ns, n.Role, n.RoleID)
	if err != nil {
		return nil, err
	}
	if err := access.CanGrant(ctx, withRole(n.Permissions, role)); err != nil {
		return nil, err
	}
	if n.Name == "" {
		n.Name = "key-" + randomHex(5)
	}
	if existing, err := s.find(ctx, ns, ByName(n.Name)); err == nil && existing != nil {
		return nil, fmt.Errorf("%w: %q", ErrConflict, n.Name)
	}
	tok := n.Token
	if tok == "" {
		if tok, err = token.Mint(s.TokenPrefix); err != nil {
			return nil, err
		}
	} else if err := s.tokenFree(ctx, tok); err != nil {
		return nil, err
	}
	key := s.newObject(ctx, ns, &n, role, now)
	w.key, w.changes = key, specChanges(&keysv1.ApiKeySpec{}, &key.Spec)
	if err := s.createSecret(ctx, key, tok); err != nil {
		return nil, err
	}
	if err := s.Client.Create(ctx, key); err != nil {
		s.dropSecret(ctx, key)
		return nil, writeError(err, n.Name)
	}
	s.ownSecret(ctx, key)
	w.done = true
	view := s.view(ctx, key)
	view.KeyPrefix = token.DisplayPrefix(tok)
	return &Issued{Key: *view, Token: tok}, nil
}

func withRole(perms []string, role *keysv1.ApiKeyRole) []string {
	if role == nil {
		return perms
	}
	all := slices.Clone(perms)
	for _, p := range role.Spec.Permissions {
		all = append(all, string(p))
	}
	return all
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newObject builds the ApiKey for a create request. The expiry is written
// into the spec, so the object itself shows when the key dies.
func (s *Kube) newObject(ctx context.Context, ns string, n *NewKey, role *keysv1.ApiKeyRole, now time.Time) *keysv1.ApiKey {
	expires := now.Add(s.DefaultLifetime)
	if n.ExpiresAt != nil {
		expires = *n.ExpiresAt
	}
	caller := access.CallerFrom(ctx).Name()
	key := &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      ObjectName(n.Name),
			Annotations: map[string]string{
				CreatedByAnnotation:  caller,
				ModifiedByAnnotation: caller,
				ModifiedAtAnnotation: now.UTC().Format(time.RFC3339),
			},
		},
		Spec: keysv1.ApiKeySpec{
			Name:        keysv1.KeyName(n.Name),
			Description: n.Description,
			Permissions: toPermissions(n.Permissions),
			AllowedIPs:  toIPs(n.AllowedIPs),
			ExpiresAt:   &metav1.Time{Time: expires.UTC().Truncate(time.Second)},
			Enabled:     n.Enabled,
		},
	}
	if role != nil {
		key.Spec.RoleRef = &keysv1.RoleReference{Name: role.Name}
	}
	setAttributes(key, n.Attributes)
	return key
}

func toPermissions(ps []string) []keysv1.Permission {
	if ps == nil {
		return nil
	}
	out := make([]keysv1.Permission, len(ps))
	for i, p := range ps {
		out[i] = keysv1.Permission(p)
	}
	return out
}

func toIPs(ips []string) []keysv1.IPOrCIDR {
	if ips == nil {
		return nil
	}
	out := make([]keysv1.IPOrCIDR, len(ips))
	for i, p := range ips {
		out[i] = keysv1.IPOrCIDR(p)
	}
	return out
}

func setAttributes(key *keysv1.ApiKey, attrs map[string]string) {
	for name, v := range attrs {
		if v == "" {
			delete(key.Annotations, AttributePrefix+name)
			continue
		}
		key.Annotations[AttributePrefix+name] = v
	}
}

// tokenFree refuses a caller-chosen token that another key, in any
// namespace this server serves, verifies with: one token belongs to one
// key. The answer does not say which key or where.
func (s *Kube) tokenFree(ctx context.Context, tok string) error {
	keys := &keysv1.ApiKeyList{}
	if err := s.Cache.List(ctx, keys, client.MatchingFields{tokenHashIndex: token.Hash(tok)}); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(keys.Items) > 0 {
		return invalid("secret", "cannot be used: choose another secret, or leave it out to have one generated")
	}
	return nil
}

// createSecret writes the token into the key's Secret before the ApiKey
// exists, labelled so the controller finds it and takes its token as
// issued instead of minting another.
func (s *Kube) createSecret(ctx context.Context, key *keysv1.ApiKey, tok string) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels: map[string]string{
				keysv1.ManagedByLabel: keysv1.ManagedByValue,
				keysv1.ApiKeyLabel:    key.Name,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{keysv1.SecretKeyField: []byte(tok)},
	}
	err := s.Client.Create(ctx, secret)
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: a Secret named %q already exists in the namespace", ErrConflict, key.Name)
	case err != nil:
		return writeError(err, string(key.Spec.Name))
	}
	return nil
}

// dropSecret removes the Secret of a key whose creation failed.
func (s *Kube) dropSecret(ctx context.Context, key *keysv1.ApiKey) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	_ = client.IgnoreNotFound(s.Client.Delete(ctx, secret))
}

// ownSecret gives the Secret its owner reference at once, so it goes with
// the key even before the controller has seen it. The controller claims it
// anyway; a failure here is repaired there.
func (s *Kube) ownSecret(ctx context.Context, key *keysv1.ApiKey) {
	ref := metav1.NewControllerRef(key, keysv1.GroupVersion.WithKind("ApiKey"))
	patch := fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":"ApiKey","name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}]}}`,
		ref.APIVersion, ref.Name, ref.UID)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	_ = s.Client.Patch(ctx, secret, client.RawPatch("application/merge-patch+json", patch))
}

// writeError maps an API error of a write to the store's errors.
func writeError(err error, name string) error {
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %q", ErrConflict, name)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return &InvalidError{Field: "request", Reason: apiMessage(err)}
	case apierrors.IsForbidden(err):
		// Admission (the webhook's rules) refused the change.
		return &InvalidError{Field: "request", Reason: apiMessage(err)}
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: the key changed meanwhile; try again", ErrUnavailable)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Message
	}
	return err.Error()
}

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

func (s *Kube) Update(ctx context.Context, sc access.Scopes, ns string, ref Ref, u KeyUpdate) (_ *Key, err error) {
	w := &write{op: "update", ns: ns, name: ref.String()}
	defer func() { s.record(ctx, w, err) }()
	if err := s.authorize(ctx, sc, ns, access.Update); err != nil {
		return nil, err
	}
	if err := ValidateUpdate(&u); err != nil {
		return nil, err
	}
	if u.ExpiresAt != nil && !u.ExpiresAt.After(s.now()) {
		return nil, &InvalidError{Field: "expiresAt", Reason: "must be in the future"}
	}
	cached, err := s.get(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	key := cached.DeepCopy()
	w.key = key
	if err := s.checkUpdate(ctx, key, &u); err != nil {
		return nil, err
	}
	if !applyUpdate(key, &u, access.CallerFrom(ctx).Name(), s.now()) {
		// Nothing changes: no write, and no new modified-by.
		return s.view(ctx, cached), nil
	}
	// A merge patch of what changed, not an Update of the cached object:
	// the cache may not have seen the last write yet (the controller's
	// status, or this store's previous update), and an Update would be
	// refused as a conflict.
	w.changes = specChanges(&cached.Spec, &key.Spec)
	if err := s.Client.Patch(ctx, key, client.MergeFrom(cached)); err != nil {
		return nil, writeError(err, string(key.Spec.Name))
	}
	w.done = true
	return s.view(ctx, key), nil
}

// checkUpdate enforces the rules that need other objects: a new name must
// be free, a new role must exist, and an update that makes the key more
// powerful — new permissions or role, enabling it, removing or widening
// its IP allowlist, extending its expiry — must not give the key more than
// the caller holds (the no-escalation rule of create). An update that
// only narrows (say, disabling a key) needs no grant check, and works even
// when the key's role has been deleted meanwhile.
func (s *Kube) checkUpdate(ctx context.Context, key *keysv1.ApiKey, u *KeyUpdate) error {
	if u.Name != nil && *u.Name != displayName(key) {
		if other, err := s.find(ctx, key.Namespace, ByName(*u.Name)); err != nil || other != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: %q", ErrConflict, *u.Name)
		}
	}
	if u.RoleID != nil {
		role, err := s.roleByID(ctx, key.Namespace, *u.RoleID)
		if err != nil {
			return err
		}
		u.Role = &role.Name
	}
	if u.Permissions == nil && u.Role == nil && !widens(key, u) {
		return nil
	}
	roleName := ""
	if key.Spec.RoleRef != nil {
		roleName = key.Spec.RoleRef.Name
	}
	if u.Role != nil {
		roleName = *u.Role
	}
	role, err := s.roleFor(ctx, key.Namespace, roleName)
	if err != nil {
		return err
	}
	perms := fromPermissions(key.Spec.Permissions)
	if u.Permissions != nil {
		perms = *u.Permissions
	}
	return access.CanGrant(ctx, withRole(perms, role))
}

// widens tells whether an update lets the key do more than before apart
// from its permissions: enable it, lift or widen its IP allowlist, or push
// its expiry later.
func widens(key *keysv1.ApiKey, u *KeyUpdate) bool {
	if u.Enabled != nil && *u.Enabled && key.Spec.Enabled != nil && !*key.Spec.Enabled {
		return true
	}
	if u.AllowedIPs != nil && !withinAllowlist(*u.AllowedIPs, key.Spec.AllowedIPs) {
		return true
	}
	if u.ExpiresAt != nil {
		current := key.Spec.ExpiresAt
		if current == nil {
			current = key.Status.ExpiresAt
		}
		if current == nil || u.ExpiresAt.After(current.Time) {
			return true
		}
	}
	return false
}

// withinAllowlist tells whether every entry of next lies inside an entry
// of current; an empty list allows any address, so it is within only an
// empty current list.
func withinAllowlist(next []string, current []keysv1.IPOrCIDR) bool {
	if len(current) == 0 {
		return true
	}
	if len(next) == 0 {
		return false
	}
	cur := make([]netip.Prefix, 0, len(current))
	for _, c := range current {
		if p, err := parsePrefix(string(c)); err == nil {
			cur = append(cur, p)
		}
	}
	for _, n := range next {
		p, err := parsePrefix(n)
		if err != nil || !slices.ContainsFunc(cur, func(c netip.Prefix) bool {
			return c.Addr().Is4() == p.Addr().Is4() && c.Bits() <= p.Bits() && c.Contains(p.Addr())
		}) {
			return false
		}
	}
	return true
}

// parsePrefix reads an address (a one-address block) or a CIDR block.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// applyUpdate changes the key as asked and tells whether anything changed.
func applyUpdate(key *keysv1.ApiKey, u *KeyUpdate, caller string, now time.Time) bool {
	before := key.DeepCopy()
	if u.Name != nil {
		key.Spec.Name = keysv1.KeyName(*u.Name)
	}
	if u.Description != nil {
		key.Spec.Description = *u.Description
	}
	if u.Role != nil {
		key.Spec.RoleRef = nil
		if *u.Role != "" {
			key.Spec.RoleRef = &keysv1.RoleReference{Name: *u.Role}
		}
	}
	if u.Permissions != nil {
		key.Spec.Permissions = toPermissions(*u.Permissions)
	}
	if u.AllowedIPs != nil {
		key.Spec.AllowedIPs = toIPs(*u.AllowedIPs)
	}
	if u.Enabled != nil {
		key.Spec.Enabled = u.Enabled
	}
	if u.ExpiresAt != nil {
		key.Spec.ExpiresAt = &metav1.Time{Time: u.ExpiresAt.UTC().Truncate(time.Second)}
	}
	if key.Annotations == nil {
		key.Annotations = map[string]string{}
	}
	setAttributes(key, u.Attributes)
	if equality.Semantic.DeepEqual(before.Spec, key.Spec) && equality.Semantic.DeepEqual(before.Annotations, key.Annotations) {
		return false
	}
	key.Annotations[ModifiedByAnnotation] = caller
	key.Annotations[ModifiedAtAnnotation] = now.UTC().Format(time.RFC3339)
	return true
}

func (s *Kube) Delete(ctx context.Context, sc access.Scopes, ns string, ref Ref) (_ *Key, err error) {
	w := &write{op: "delete", ns: ns, name: ref.String()}
	defer func() { s.record(ctx, w, err) }()
	if err := s.authorize(ctx, sc, ns, access.Delete); err != nil {
		return nil, err
	}
	key, err := s.get(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	w.key = key
	view := s.view(ctx, key)
	// The UID precondition makes sure a key re-created under the same
	// name meanwhile is not the one deleted.
	uid := key.UID
	if err := s.Client.Delete(ctx, key.DeepCopy(), client.Preconditions{UID: &uid}); err != nil {
		return nil, writeError(err, view.Name)
	}
	s.dropSecrets(ctx, key)
	w.done = true
	return view, nil
}

// dropSecrets deletes the key's Secret now rather than leave it to the
// garbage collector, so the name can be used again at once. The label
// selector reaches only the Secrets the operator labelled for this key:
// never one it does not own, and without reading any. The owner reference
// still removes it if this fails.
func (s *Kube) dropSecrets(ctx context.Context, key *keysv1.ApiKey) {
	_ = s.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(key.Namespace),
		client.MatchingLabels{keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: key.Name})
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

func roleView(r *keysv1.ApiKeyRole) *Role {
	return &Role{
		Namespace: r.Namespace, Name: r.Name, ID: IDOf(r.UID), Description: r.Spec.Description,
		Permissions: fromPermissions(r.Spec.Permissions), CreatedAt: r.CreationTimestamp.UTC(),
	}
}

func fromPermissions(ps []keysv1.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// roleIDs maps the namespace's role names to their IDs.
func (s *Kube) roleIDs(ctx context.Context, ns string) map[string]string {
	list := &keysv1.ApiKeyRoleList{}
	ids := map[string]string{}
	if err := s.Cache.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err == nil {
		for i := range list.Items {
			ids[list.Items[i].Name] = IDOf(list.Items[i].UID)
		}
	}
	return ids
}

func (s *Kube) view(ctx context.Context, key *keysv1.ApiKey) *Key {
	return viewOf(key, s.roleIDs(ctx, key.Namespace))
}

func displayName(key *keysv1.ApiKey) string {
	if key.Spec.Name != "" {
		return string(key.Spec.Name)
	}
	return key.Name
}

// viewOf turns an ApiKey into what dialects may show: no hash, no token.
func viewOf(key *keysv1.ApiKey, roleIDs map[string]string) *Key {
	v := &Key{
		Namespace: key.Namespace, ObjectName: key.Name, ID: IDOf(key.UID), Name: displayName(key),
		Description: key.Spec.Description, Permissions: fromPermissions(key.Spec.Permissions),
		Enabled: key.Spec.Enabled == nil || *key.Spec.Enabled, CreatedAt: key.CreationTimestamp.UTC(),
		CreatedBy: key.Annotations[CreatedByAnnotation], UpdatedBy: key.Annotations[ModifiedByAnnotation],
		KeyPrefix: key.Status.KeyPrefix, State: StatePending, StateChangedAt: key.CreationTimestamp.UTC(),
	}
	for _, ip := range key.Spec.AllowedIPs {
		v.AllowedIPs = append(v.AllowedIPs, string(ip))
	}
	if key.Spec.RoleRef != nil {
		v.Role, v.RoleID = key.Spec.RoleRef.Name, roleIDs[key.Spec.RoleRef.Name]
	}
	switch {
	case key.Spec.ExpiresAt != nil:
		v.ExpiresAt = key.Spec.ExpiresAt.UTC()
	case key.Status.ExpiresAt != nil:
		v.ExpiresAt = key.Status.ExpiresAt.UTC()
	}
	v.UpdatedAt = v.CreatedAt
	if t, err := time.Parse(time.RFC3339, key.Annotations[ModifiedAtAnnotation]); err == nil {
		v.UpdatedAt = t.UTC()
	}
	for _, c := range key.Status.Conditions {
		if c.Type == keysv1.ConditionReady {
			v.State, v.StateMessage, v.StateChangedAt = c.Reason, c.Message, c.LastTransitionTime.UTC()
		}
	}
	for k, val := range key.Annotations {
		if name, ok := strings.CutPrefix(k, AttributePrefix); ok {
			if v.Attributes == nil {
				v.Attributes = map[string]string{}
			}
			v.Attributes[name] = val
		}
	}
	return v
}
