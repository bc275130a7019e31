package keystore

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
)

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
	if u.Name != nil && *u.Name != key.DisplayName() {
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
// from its permissions (Widens).
func widens(key *keysv1.ApiKey, u *KeyUpdate) bool {
	expires, _ := key.Expiry()
	return Widens(key.IsEnabled(), fromIPs(key.Spec.AllowedIPs), expires, u)
}

// Widens tells whether an update lets a key that is enabled or not, with
// this IP allowlist and expiry (zero: unknown), do more than before apart
// from its permissions: enable it, lift or widen its IP allowlist, or push
// its expiry later. Such an update must pass the no-escalation check of a
// create; every store applies the rule through this one function.
func Widens(enabled bool, allowedIPs []string, expires time.Time, u *KeyUpdate) bool {
	if u.Enabled != nil && *u.Enabled && !enabled {
		return true
	}
	if u.AllowedIPs != nil && !withinAllowlist(*u.AllowedIPs, allowedIPs) {
		return true
	}
	return u.ExpiresAt != nil && (expires.IsZero() || u.ExpiresAt.After(expires))
}

func fromIPs(ips []keysv1.IPOrCIDR) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = string(ip)
	}
	return out
}

// withinAllowlist tells whether every entry of next lies inside an entry
// of current; an empty list allows any address, so it is within only an
// empty current list.
func withinAllowlist(next, current []string) bool {
	if len(current) == 0 {
		return true
	}
	if len(next) == 0 {
		return false
	}
	cur := make([]netip.Prefix, 0, len(current))
	for _, c := range current {
		if p, err := parsePrefix(c); err == nil {
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
