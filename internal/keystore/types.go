// Package keystore is the one domain core of the REST dialects: create,
// get, list, update, rotate and delete keys. It reads ApiKeys and roles
// from the informer cache and writes through the Kubernetes API; it
// authorises every call with internal/access. Dialects translate shapes
// only and never reach Kubernetes themselves.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Key is what a dialect may show of a key. It holds neither the token nor
// its hash.
type Key struct {
	Namespace string
	// ObjectName is the ApiKey's metadata.name.
	ObjectName string
	// ID is a stable 24-hex-digit identifier derived from the object's UID.
	ID string
	// Name is the display name (spec.name): free text without control
	// characters (ValidateName); unique in the namespace, exactly.
	Name        string
	Description string
	// Role is the ApiKeyRole's name and RoleID its ID; empty when none.
	Role        string
	RoleID      string
	Permissions []string
	AllowedIPs  []string
	Enabled     bool
	ExpiresAt   time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CreatedBy   string
	UpdatedBy   string
	// KeyPrefix is the token's non-secret start ("ak_3xAmPl"); empty until
	// the controller has recorded the token.
	KeyPrefix string
	// State is the Ready condition's reason (KeyIssued, Expired,
	// Disabled, RoleNotFound, ...), or StatePending before the controller
	// saw the key; StateChangedAt is when it last changed.
	State          string
	StateMessage   string
	StateChangedAt time.Time
	// Attributes are dialect-specific values kept with the key (for
	// example the Nexus permissions string exactly as sent).
	Attributes map[string]string
}

// StatePending is the State of a key the controller has not reconciled yet.
const StatePending = "Pending"

// Issued is a key together with its plaintext token: the answer to a
// create, and the only place the token ever leaves the Secret.
type Issued struct {
	Key
	Token string

	delivered func()
}

// Delivered tells the store that the create's answer, with the token, has
// been sent, when the create's context came from WithDelivery. Until then
// a retry of the same create may still replace the token
// (kube_retry.go); a dialect calls it right after writing its 201.
func (i *Issued) Delivered() {
	if i != nil && i.delivered != nil {
		i.delivered()
	}
}

type deliveryKey struct{}

// WithDelivery says the caller of Create will call Issued.Delivered once
// its answer is sent, so that a crash before the answer leaves the create
// retryable. Without it, Create takes its answer as delivered when it
// returns.
func WithDelivery(ctx context.Context) context.Context {
	return context.WithValue(ctx, deliveryKey{}, true)
}

func reportsDelivery(ctx context.Context) bool {
	v, _ := ctx.Value(deliveryKey{}).(bool)
	return v
}

// Role is what a dialect may show of an ApiKeyRole.
type Role struct {
	Namespace   string
	Name        string
	ID          string
	Description string
	Permissions []string
	CreatedAt   time.Time
}

// NewKey is a create request. Zero values take the defaults.
type NewKey struct {
	// Name is the display name; empty: generated ("key-" and random digits).
	Name        string
	Description string
	// Role names an ApiKeyRole in the namespace, or RoleID gives its ID;
	// both empty: none. Resolving the ID here, not through GetRole, keeps
	// a create one authorisation: the caller needs create, not also get.
	Role        string
	RoleID      string
	Permissions []string
	AllowedIPs  []string
	// ExpiresAt nil: the default lifetime.
	ExpiresAt *time.Time
	// Enabled nil: true.
	Enabled *bool
	// Token is a caller-supplied token (at least 32 printable characters);
	// empty: the store mints one.
	Token      string
	Attributes map[string]string
}

// KeyUpdate changes only the fields that are set.
type KeyUpdate struct {
	Name        *string
	Description *string
	Role        *string // "" removes the role
	RoleID      *string // a role by ID instead of Role
	Permissions *[]string
	AllowedIPs  *[]string
	Enabled     *bool
	ExpiresAt   *time.Time
	// Attributes are merged; an empty value removes an attribute.
	Attributes map[string]string
}

// Ref names a key by its display name or by its ID.
type Ref struct {
	Name string
	ID   string
}

func (r Ref) String() string {
	if r.ID != "" {
		return "id " + r.ID
	}
	return fmt.Sprintf("%q", r.Name)
}

// ByName refers to a key by display name; ByID by ID.
func ByName(name string) Ref { return Ref{Name: name} }
func ByID(id string) Ref     { return Ref{ID: id} }

// ListOptions select, order and page a list.
type ListOptions struct {
	// Match keeps the keys it returns true for; nil keeps all.
	Match func(*Key) bool
	// Less orders the keys; nil orders by name.
	Less func(a, b *Key) bool
	// Sort names Less's order when it is one the store can keep an index
	// for: the field (SortByName, SortByCreated, SortByID), descending with
	// Desc, then ID ascending. The Kubernetes-backed store then pages from
	// that kept order instead of sorting per request; Less must still be
	// set and give the same order (stores without the index use it).
	Sort *SortField
	// NameContains and Name narrow what Match can keep: Match never keeps
	// a key whose display name does not contain NameContains (ContainsFold)
	// or, when Name is set, is not Name. A store may skip such keys
	// without building their views; Match still decides for the rest.
	NameContains, Name string
	// Offset and Limit page the ordered list; Limit 0 means all.
	Offset, Limit int
}

// SortField is one field a list is ordered by (ListOptions.Sort).
type SortField struct {
	Field string
	Desc  bool
}

// The fields the Kubernetes-backed store keeps orders for: a key's
// display name (Key.Name), creation time (Key.CreatedAt) and ID (Key.ID).
const (
	SortByName    = "name"
	SortByCreated = "created"
	SortByID      = "id"
)

// ContainsFold tells whether sub is in s, ignoring case (Unicode simple
// folding, as strings.EqualFold): the one test of a name search, so that
// a dialect's filter and the store's narrowing (ListOptions.NameContains)
// agree.
func ContainsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// narrows returns the test NameContains and Name make, or nil when they
// narrow nothing.
func (o ListOptions) narrows() func(displayName string) bool {
	if o.NameContains == "" && o.Name == "" {
		return nil
	}
	return func(name string) bool {
		return (o.Name == "" || name == o.Name) && ContainsFold(name, o.NameContains)
	}
}

// Limits on what one request may carry, in characters. Those of the
// ApiKey's fields are the CRD schema's own (api/v1alpha1/apikey_bounds.go);
// checking here gives a dialect's own error before any write.
const (
	MaxNameLen        = keysv1.KeyNameMaxLength
	MaxDescriptionLen = keysv1.DescriptionMaxLength
	MaxPermissions    = keysv1.PermissionsMaxItems
	MaxPermissionLen  = keysv1.PermissionMaxLength
	MaxAllowedIPs     = keysv1.AllowedIPsMaxItems
	// Attributes are annotations, not schema fields: the store's own.
	MaxAttributes   = 8
	MaxAttributeLen = 1024
)

// Errors of the store. Dialects map them to status codes with errors.Is
// and errors.As; messages say what to fix and never carry a token.
var (
	ErrNotFound          = errors.New("key not found")
	ErrRoleNotFound      = errors.New("role not found")
	ErrNamespaceNotFound = errors.New("tenant not found")
	ErrConflict          = errors.New("a key with this name already exists")
	// ErrUnavailable: the Kubernetes API could not be reached; try again.
	ErrUnavailable = errors.New("the key store is unavailable; try again")
)

// InvalidError is a request that breaks a rule: which field and why.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
