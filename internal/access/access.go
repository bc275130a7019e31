// Package access decides who may manage keys: a Kubernetes identity
// through a SubjectAccessReview as if acting on apikeys in the tenant's
// namespace, or an API key through its scopes, inside its own namespace,
// never granting more than it holds.
package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/permission"
)

// Verb is what a caller wants to do with keys.
type Verb string

const (
	Get    Verb = "get"
	List   Verb = "list"
	Create Verb = "create"
	Update Verb = "update"
	Delete Verb = "delete"
)

func (v Verb) writes() bool { return v == Create || v == Update || v == Delete }

// Caller is an authenticated client of the REST dialects.
type Caller struct {
	// User is the Kubernetes identity; for an API key, a synthetic one
	// ("apikey:<namespace>/<name>").
	User user.Info
	// Key is set when the caller presented an API key.
	Key *KeyCaller
}

// KeyCaller is an API key acting as a caller.
type KeyCaller struct {
	Namespace   string
	Name        string
	Prefix      string   // the key's non-secret prefix, for audit records
	Permissions []string // effective: the role's and the key's
}

// APIKeyGroup is the group of every API-key caller's synthetic identity.
const APIKeyGroup = "apikey-operator:apikeys"

// Name is how the caller is recorded as a key's creator or modifier.
func (c *Caller) Name() string {
	if c.Key != nil {
		return "apikey:" + c.Key.Namespace + "/" + c.Key.Name
	}
	return c.User.GetName()
}

type callerKey struct{}

// WithCaller returns a context that carries the caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller the context carries, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// Scopes are the permissions a dialect asks of API-key callers.
type Scopes struct {
	Read  string
	Write string
}

// Errors the checks return; dialects map them to their own shapes.
var (
	ErrUnauthenticated = errors.New("authentication required: send an API key (Authorization: Bearer, X-API-Key, or Basic with the key as password) or a Kubernetes bearer token")
	ErrForbidden       = errors.New("forbidden")
	// ErrUnavailable: a check that needs kube-apiserver (a
	// SubjectAccessReview) could not be made; a retry may succeed.
	ErrUnavailable    = errors.New("the authorization check could not be made; try again")
	ErrOtherNamespace = errors.New("an API key manages keys only in its own namespace")
	ErrEscalation     = errors.New("cannot grant permissions the caller does not hold")
)

// Authorizer checks callers; Kubernetes identities go to SAR.
type Authorizer struct {
	// Kubernetes is the delegated authorizer (SubjectAccessReview).
	Kubernetes authorizer.Authorizer
}

// Authorize tells whether the caller in ctx may do verb on keys in
// namespace. Errors wrap ErrUnauthenticated, ErrForbidden or
// ErrOtherNamespace and say what is missing.
func (a *Authorizer) Authorize(ctx context.Context, scopes Scopes, namespace string, verb Verb) error {
	if err := Authenticated(ctx); err != nil {
		return err
	}
	c := CallerFrom(ctx)
	if c.Key != nil {
		return authorizeKey(c.Key, scopes, namespace, verb)
	}
	return a.authorizeUser(ctx, c.User, namespace, verb)
}

func authorizeKey(k *KeyCaller, scopes Scopes, namespace string, verb Verb) error {
	if k.Namespace != namespace {
		return ErrOtherNamespace
	}
	need := scopes.Read
	if verb.writes() {
		need = scopes.Write
	}
	if !permission.GrantsOne(k.Permissions, need) {
		return fmt.Errorf("%w: the API key lacks the scope %q", ErrForbidden, need)
	}
	return nil
}

func (a *Authorizer) authorizeUser(ctx context.Context, u user.Info, namespace string, verb Verb) error {
	if a.Kubernetes == nil {
		return fmt.Errorf("%w: no Kubernetes authorizer is configured", ErrForbidden)
	}
	decision, reason, err := a.Kubernetes.Authorize(ctx, authorizer.AttributesRecord{
		User:            u,
		Verb:            string(verb),
		Namespace:       namespace,
		APIGroup:        keysv1.GroupVersion.Group,
		APIVersion:      keysv1.GroupVersion.Version,
		Resource:        "apikeys",
		ResourceRequest: true,
	})
	if err != nil {
		// The cause may name internals (webhook URLs, API errors): log
		// it, and tell the caller only that the check could not be made.
		logr.FromContextOrDiscard(ctx).Error(err, "SubjectAccessReview failed", "user", u.GetName(), "namespace", namespace, "verb", verb)
		return ErrUnavailable
	}
	if decision != authorizer.DecisionAllow {
		msg := fmt.Sprintf("%s cannot %s apikeys.%s in namespace %q", u.GetName(), verb, keysv1.GroupVersion.Group, namespace)
		if reason != "" {
			msg += ": " + reason
		}
		return fmt.Errorf("%w: %s", ErrForbidden, msg)
	}
	return nil
}

// MayKnowNamespace tells whether the caller may learn that a namespace
// exists: an API key only of its own, a Kubernetes identity of one where
// it may list apikeys. Tenants without rights in a namespace must not
// tell an unknown one from a forbidden one.
func (a *Authorizer) MayKnowNamespace(ctx context.Context, namespace string) bool {
	c := CallerFrom(ctx)
	switch {
	case Authenticated(ctx) != nil:
		return false
	case c.Key != nil:
		return c.Key.Namespace == namespace
	}
	return a.authorizeUser(ctx, c.User, namespace, List) == nil
}

// CanGrant tells whether the caller may give a key these permissions: an
// API key grants only what it holds itself. Kubernetes identities that
// may write apikeys could write them with kubectl anyway.
func CanGrant(ctx context.Context, permissions []string) error {
	c := CallerFrom(ctx)
	if c == nil || c.Key == nil {
		return nil
	}
	for _, p := range permissions {
		if !permission.GrantsOne(c.Key.Permissions, p) {
			return fmt.Errorf("%w: %q", ErrEscalation, p)
		}
	}
	return nil
}
