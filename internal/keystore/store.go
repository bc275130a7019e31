package keystore

import (
	"context"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

// Store is what the dialects call. Every method authorises the caller in
// ctx (access.WithCaller) for the namespace with the dialect's scopes,
// and returns access errors (access.ErrUnauthenticated, ErrForbidden,
// ErrOtherNamespace, ErrEscalation) or the errors of this package.
type Store interface {
	// NamespaceExists tells whether a tenant (namespace) exists. A dialect
	// may ask before the operation authorises the caller, so to a caller
	// without rights in the namespace it answers true whatever the truth:
	// the operation is then forbidden, and unknown and forbidden look
	// alike.
	NamespaceExists(ctx context.Context, namespace string) (bool, error)

	Create(ctx context.Context, s access.Scopes, namespace string, k NewKey) (*Issued, error)
	Get(ctx context.Context, s access.Scopes, namespace string, ref Ref) (*Key, error)
	// List returns one page of keys and the number of keys that matched.
	List(ctx context.Context, s access.Scopes, namespace string, o ListOptions) ([]*Key, int, error)
	Update(ctx context.Context, s access.Scopes, namespace string, ref Ref, u KeyUpdate) (*Key, error)
	// Delete removes a key; it stops verifying as soon as the watch
	// event reaches the verify index. It returns the key as it was.
	Delete(ctx context.Context, s access.Scopes, namespace string, ref Ref) (*Key, error)

	// GetRole finds a role by name or ID (Ref.Name / Ref.ID).
	GetRole(ctx context.Context, s access.Scopes, namespace string, ref Ref) (*Role, error)
	// ListRoles returns every role of the namespace, ordered by name. It
	// authorises as a list of keys: whoever may list the keys may see the
	// roles they can be given.
	ListRoles(ctx context.Context, s access.Scopes, namespace string) ([]*Role, error)
}
