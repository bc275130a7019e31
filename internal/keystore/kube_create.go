package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

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
	// A create that names its key can be retried after a crash or a
	// timeout (kube_retry.go); one that lets the store pick a name cannot
	// be told from a second create, so it gets no record to match.
	fp := ""
	if n.Name == "" {
		n.Name = "key-" + randomHex(5)
	} else {
		fp = fingerprint(ctx, ns, &n)
	}
	release, err := s.enter(ctx, ns, n.Name)
	if err != nil {
		return nil, err
	}
	handedOver := false
	defer func() {
		if !handedOver {
			release()
		}
	}()
	if existing, err := s.find(ctx, ns, ByName(n.Name)); err != nil || existing != nil {
		if err != nil {
			return nil, err
		}
		if err := s.retryable(existing, fp); err != nil {
			return nil, err
		}
		w.key = existing
		issued, err := s.complete(ctx, existing, &n)
		w.done = err == nil
		return issued, err
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
	if fp != "" {
		key.Annotations[keysv1.CreateRequestAnnotation] = fp
		key.Annotations[keysv1.CreateWriterAnnotation] = s.instanceID()
	}
	w.key, w.changes = key, specChanges(&keysv1.ApiKeySpec{}, &key.Spec)
	// The key first, then its Secret owned by it from the start: a crash
	// between the two leaves a key that the controller gives a token of
	// its own after keysv1.TokenWriterGrace, never a Secret holding a
	// token without its key, and never a name that a retry cannot see.
	if err := s.Client.Create(ctx, key); err != nil {
		return nil, writeError(err, n.Name)
	}
	if err := s.createSecret(ctx, key, tok, fp != ""); err != nil {
		s.dropKey(key)
		return nil, err
	}
	w.done = true
	view := s.view(ctx, key)
	view.KeyPrefix = token.DisplayPrefix(tok)
	issued := &Issued{Key: *view, Token: tok}
	switch {
	case fp == "":
	case reportsDelivery(ctx) && ctx.Done() != nil:
		// The Secret stays marked undelivered until the dialect has sent
		// the answer (Issued.Delivered); a retry here waits until then,
		// and the request's end releases it if the dialect never says.
		handedOver = true
		stop := context.AfterFunc(ctx, release)
		issued.delivered = func() {
			stop()
			s.markDelivered(key)
			release()
		}
	default:
		s.markDelivered(key)
	}
	return issued, nil
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
				keysv1.TokenWriterAnnotation: keysv1.TokenWriterAPIServer,
				CreatedByAnnotation:          caller,
				ModifiedByAnnotation:         caller,
				ModifiedAtAnnotation:         now.UTC().Format(time.RFC3339),
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
	taken, err := s.hashClaimed(ctx, token.Hash(tok), client.ObjectKey{})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if taken {
		return invalid("secret", "cannot be used: choose another secret, or leave it out to have one generated")
	}
	return nil
}

// hashClaimed tells whether any key but except verifies with hash: from
// the hash index, or by reading every cached key when there is none.
func (s *Kube) hashClaimed(ctx context.Context, hash string, except client.ObjectKey) (bool, error) {
	if s.Hashes != nil {
		claimants, err := s.Hashes.Claimants(hash)
		return slices.ContainsFunc(claimants, func(c types.NamespacedName) bool { return c != except }), err
	}
	keys := &keysv1.ApiKeyList{}
	if err := s.Cache.List(ctx, keys, client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	return slices.ContainsFunc(keys.Items, func(k keysv1.ApiKey) bool {
		return client.ObjectKeyFromObject(&k) != except && slices.Contains(k.TokenHashes(), hash)
	}), nil
}
