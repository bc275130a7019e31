package tenant

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// errorBody is every error of this dialect. The product documents no
// error body; this is the smallest one that tells a program what happened
// (error, one code per status) and a person what to fix (message).
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// codes are the error codes, one per status.
var codes = map[int]string{
	400: "bad_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	413: "payload_too_large",
	415: "unsupported_media_type",
	429: "too_many_requests",
	500: "internal_error",
	503: "service_unavailable",
}

// statusError is a refusal decided in this package.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

func errorf(status int, format string, args ...any) error {
	return &statusError{status: status, message: fmt.Sprintf(format, args...)}
}

// writeError answers err in the dialect's error body, with the headers
// its status needs.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, message := classify(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="apikey-operator"`)
	case http.StatusTooManyRequests:
		httpjson.SetRetryAfter(w, access.RetryAfter(r.Context()))
	case http.StatusInternalServerError:
		logr.FromContextOrDiscard(r.Context()).Error(err, "tenant-admin dialect request failed", "method", r.Method, "path", r.URL.Path)
	}
	httpjson.Write(w, status, "application/json", errorBody{Error: codes[status], Message: message})
}

// classify maps an error to a status and a message a client may see. The
// messages of access and keystore errors are written for clients; any
// other error is internal and is not shown.
func classify(err error) (int, string) {
	var se *statusError
	var je *httpjson.Error
	var ie *keystore.InvalidError
	switch {
	case errors.As(err, &se):
		return se.status, se.message
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
		// No body field of this dialect names a role: a missing one is
		// the key's state, not the request's fault.
		return http.StatusNotFound, err.Error()
	case errors.Is(err, keystore.ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, keystore.ErrUnavailable):
		return http.StatusServiceUnavailable, keystore.ErrUnavailable.Error()
	}
	return http.StatusInternalServerError, "internal error"
}
