package access

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Why a presented credential was refused. The server's authentication
// records the failure in the request's context instead of answering, so
// each dialect answers in its own error shape.
var (
	ErrInvalidCredentials = errors.New("the credentials are invalid: the API key is unknown, malformed, expired or disabled, or the Kubernetes token was rejected")
	ErrIPNotAllowed       = errors.New("the API key may not be used from this address")
	ErrRateLimited        = errors.New("too many requests for this API key; slow down")
)

// Failure is a refused credential.
type Failure struct {
	Err error
	// RetryAfter is set with ErrRateLimited.
	RetryAfter time.Duration
}

type failureKey struct{}

// WithFailure records that the request's credentials were refused.
func WithFailure(ctx context.Context, f *Failure) context.Context {
	return context.WithValue(ctx, failureKey{}, f)
}

// Authenticated returns nil when the request carries an authenticated
// caller, or the reason it does not: ErrUnauthenticated (no credentials),
// ErrInvalidCredentials, ErrIPNotAllowed or ErrRateLimited. Dialects call
// it first, before they look at the tenant.
func Authenticated(ctx context.Context) error {
	if f, ok := ctx.Value(failureKey{}).(*Failure); ok && f != nil {
		return f.Err
	}
	if c := CallerFrom(ctx); c == nil || c.User == nil {
		return ErrUnauthenticated
	}
	return nil
}

// RetryAfter is how long a rate-limited caller should wait.
func RetryAfter(ctx context.Context) time.Duration {
	if f, ok := ctx.Value(failureKey{}).(*Failure); ok && f != nil {
		return f.RetryAfter
	}
	return 0
}

// CallerNamespace is the namespace a caller belongs to: an API key's own,
// or a service account's. ok is false for other Kubernetes users.
func CallerNamespace(ctx context.Context) (ns string, ok bool) {
	c := CallerFrom(ctx)
	switch {
	case c == nil:
		return "", false
	case c.Key != nil:
		return c.Key.Namespace, true
	case c.User != nil && strings.HasPrefix(c.User.GetName(), "system:serviceaccount:"):
		parts := strings.Split(c.User.GetName(), ":")
		if len(parts) == 4 && parts[2] != "" {
			return parts[2], true
		}
	}
	return "", false
}
