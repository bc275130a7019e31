package hub

import (
	"errors"
	"net/http"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Error codes, every one in the product's Error.yml enum, and each
// answered with the status it starts with. The enum has no 405 and no
// 413: a method a path does not serve is 404.uri (with Allow), a body over
// the limit 422.max-exceeded. Its code enum has 429.rate-limiting while
// its status enum lacks 429; the product answers 429, and so does this
// dialect, since clients and proxies retry on that status
// (docs/dialects/hub.md).
const (
	codeSyntax      = "400.invalid-syntax"
	codeAuth        = "401.auth-invalid"
	codeInvalidIP   = "403.invalid-ip"
	codePermissions = "403.permissions"
	codeWrongHub    = "403.wrong-hub"
	codeHub         = "404.hub"
	codeKey         = "404.hub.api-key"
	codeRole        = "404.hub.role"
	codeURI         = "404.uri"
	codeDuplicate   = "409.duplicate-found"
	codeContentType = "415.invalid-content-type"
	codeInvalid     = "422.invalid-argument"
	codeMissing     = "422.missing-argument"
	codeMaxExceeded = "422.max-exceeded"
	codeRateLimit   = "429.rate-limiting"
	codeInternal    = "500.unknown"
	codeUnavailable = "503.not-ready"
)

// capability is what every operation of the dialect requires.
const capability = "api-keys-manage"

var titles = map[string]string{
	codeSyntax:      "Invalid Syntax",
	codeAuth:        "Authentication Invalid",
	codeInvalidIP:   "Invalid IP",
	codePermissions: "Insufficient Permissions",
	codeWrongHub:    "Wrong Hub",
	codeHub:         "Hub Not Found",
	codeKey:         "API Key Not Found",
	codeRole:        "Role Not Found",
	codeURI:         "URI Not Found",
	codeDuplicate:   "Duplicate Found",
	codeContentType: "Invalid Content Type",
	codeInvalid:     "Invalid Argument",
	codeMissing:     "Missing Argument",
	codeMaxExceeded: "Max Exceeded",
	codeRateLimit:   "Too Many Requests",
	codeInternal:    "Internal Error",
	codeUnavailable: "Service Unavailable",
}

// apiError is the product's Error object plus the headers some answers
// need. It is what every failing request answers, inside errorEnvelope.
type apiError struct {
	Status int         `json:"status"`
	Code   string      `json:"code"`
	Title  string      `json:"title"`
	Detail string      `json:"detail,omitempty"`
	Source string      `json:"source,omitempty"`
	Extra  *errorExtra `json:"extra,omitempty"`

	retryAfter time.Duration // 429: the Retry-After header
	allow      string        // a method not served: the Allow header
	cause      error         // 5xx: logged, never sent
}

// Error makes an answer an error, so operations return it like any other.
func (e *apiError) Error() string { return e.Code + ": " + e.Detail }

type errorExtra struct {
	Capability string `json:"capability,omitempty"`
}

type errorEnvelope struct {
	Error *apiError `json:"error"`
	Data  *struct{} `json:"data"` // always null
}

func newError(status int, code, detail string) *apiError {
	return &apiError{Status: status, Code: code, Title: titles[code], Detail: detail}
}

// at points the error at a field of the request body (a JSON pointer).
func (e *apiError) at(field string) *apiError {
	e.Source = "/" + field
	return e
}

func syntaxError(detail string) *apiError { return newError(http.StatusBadRequest, codeSyntax, detail) }

func invalidArg(detail string) *apiError {
	return newError(http.StatusUnprocessableEntity, codeInvalid, detail)
}

func missingArg(field string) *apiError {
	return newError(http.StatusUnprocessableEntity, codeMissing, field+" is required").at(field)
}

// fromError maps an error of internal/access, internal/keystore or the
// body reader to the dialect's answer. Messages are fixed or come from
// errors written for clients (InvalidError, ErrEscalation); anything
// unexpected becomes a generic 500 so internals never reach a client.
func fromError(ctx errorContext, err error) *apiError {
	var answer *apiError
	var invalid *keystore.InvalidError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &answer):
		return answer
	case errors.As(err, &tooBig):
		return newError(http.StatusUnprocessableEntity, codeMaxExceeded, "the request body is larger than 1 MiB")
	case errors.Is(err, access.ErrUnauthenticated), errors.Is(err, access.ErrInvalidCredentials):
		return newError(http.StatusUnauthorized, codeAuth, authDetail(err))
	case errors.Is(err, access.ErrIPNotAllowed):
		return newError(http.StatusForbidden, codeInvalidIP, "the API key may not be used from this IP address")
	case errors.Is(err, access.ErrRateLimited):
		e := newError(http.StatusTooManyRequests, codeRateLimit, "too many requests for this API key; retry after the time in the Retry-After header")
		e.retryAfter = ctx.retryAfter
		return e
	case errors.Is(err, access.ErrOtherNamespace):
		return newError(http.StatusForbidden, codeWrongHub, "an API key manages API keys only in its own hub")
	case errors.Is(err, access.ErrEscalation):
		// The message names the permission the caller lacks; the caller
		// asked for it through the role, so it discloses nothing new.
		return newError(http.StatusForbidden, codePermissions, "the role grants more than the caller holds: "+err.Error())
	case errors.Is(err, access.ErrForbidden):
		e := newError(http.StatusForbidden, codePermissions, "the caller may not manage API keys in this hub: an API key needs the api-keys-manage capability, a Kubernetes identity needs RBAC on apikeys.keys.apikey-operator.io in the hub's namespace")
		e.Extra = &errorExtra{Capability: capability}
		return e
	case errors.Is(err, keystore.ErrNotFound):
		return newError(http.StatusNotFound, codeKey, "no API key with this ID in the hub")
	case errors.Is(err, keystore.ErrRoleNotFound):
		return newError(http.StatusNotFound, codeRole, "no role with this ID in the hub")
	case errors.Is(err, keystore.ErrNamespaceNotFound):
		return hubNotFound()
	case errors.Is(err, keystore.ErrConflict):
		return newError(http.StatusConflict, codeDuplicate, "an API key with this name already exists in the hub").at("name")
	case errors.As(err, &invalid):
		return invalidArg(invalid.Error()).at(invalid.Field)
	case errors.Is(err, keystore.ErrUnavailable):
		e := newError(http.StatusServiceUnavailable, codeUnavailable, "the key store is unavailable; try again")
		e.cause = err
		return e
	default:
		e := newError(http.StatusInternalServerError, codeInternal, "an internal error occurred")
		e.cause = err
		return e
	}
}

// errorContext carries what some answers need from the request.
type errorContext struct {
	retryAfter time.Duration
}

func authDetail(err error) string {
	if errors.Is(err, access.ErrInvalidCredentials) {
		return "the credentials are invalid: the API key is unknown, malformed, expired or disabled, or the Kubernetes token was rejected"
	}
	return "authentication required: send Authorization: Bearer <API key>"
}

func hubNotFound() *apiError {
	return newError(http.StatusNotFound, codeHub, "no hub with the ID in the X-Hub-Id header")
}
