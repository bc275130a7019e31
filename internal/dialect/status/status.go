// Package status maps the errors of the domain core (internal/access,
// internal/keystore) and of request decoding (internal/dialect/httpjson)
// to an HTTP status and a message safe to show a client. Dialects wrap the
// result in their own error shapes and override only what their product
// does differently.
package status

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Error is a refusal a dialect decides itself (a bad path, a missing
// header).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Of is the status and message for err. Anything unknown is a 500 with a
// generic message: internals never reach a client.
func Of(err error) (int, string) {
	var se *Error
	var je *httpjson.Error
	var ie *keystore.InvalidError
	switch {
	case errors.As(err, &se):
		return se.Status, se.Message
	case errors.As(err, &je):
		return je.Status(), je.Message
	case errors.As(err, &ie):
		return http.StatusBadRequest, ie.Error()
	case errors.Is(err, access.ErrUnauthenticated), errors.Is(err, access.ErrInvalidCredentials):
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, access.ErrRateLimited):
		return http.StatusTooManyRequests, err.Error()
	case errors.Is(err, access.ErrIPNotAllowed), errors.Is(err, access.ErrForbidden),
		errors.Is(err, access.ErrOtherNamespace), errors.Is(err, access.ErrEscalation):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrNamespaceNotFound),
		errors.Is(err, keystore.ErrRoleNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, keystore.ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, keystore.ErrUnavailable):
		return http.StatusServiceUnavailable, keystore.ErrUnavailable.Error()
	case errors.Is(err, access.ErrUnavailable):
		return http.StatusServiceUnavailable, access.ErrUnavailable.Error()
	}
	return http.StatusInternalServerError, "internal error"
}
