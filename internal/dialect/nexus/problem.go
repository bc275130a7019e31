package nexus

import (
	"errors"
	"net/http"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/dialect/status"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// problem is an RFC 7807 problem details object, the vendor's error body.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Status   int    `json:"status"`
	Instance string `json:"instance"`
}

// problemTypes follow ASP.NET Core's defaults, which the vendor's
// ProblemDetails schema (nullable int32 status) comes from: a link to the
// status code's section of the HTTP specification.
var problemTypes = map[int]string{
	400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
	401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
	403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
	404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
	405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
	409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
	413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
	415: "https://tools.ietf.org/html/rfc9110#section-15.5.16",
	429: "https://tools.ietf.org/html/rfc6585#section-4",
	500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
	503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
}

var errorf = status.Errorf

// writeError answers err as a problem, with the headers its status needs.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, detail := classify(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer, Basic realm="apikey-operator"`)
	case http.StatusTooManyRequests:
		httpjson.SetRetryAfter(w, access.RetryAfter(r.Context()))
	case http.StatusInternalServerError:
		logr.FromContextOrDiscard(r.Context()).Error(err, "Nexus dialect request failed", "method", r.Method, "path", r.URL.Path)
	}
	httpjson.Write(w, status, "application/problem+json", problem{
		Type:     problemTypes[status],
		Title:    http.StatusText(status),
		Detail:   detail,
		Status:   status,
		Instance: r.URL.EscapedPath(), // a URI reference: escaped as sent
	})
}

// classify maps an error to a status and a detail a client may see. The
// messages of access and keystore errors are written for clients; any
// other error is internal and is not shown.
func classify(err error) (int, string) {
	var ie *keystore.InvalidError
	switch {
	case errors.As(err, &ie):
		return http.StatusBadRequest, fieldName(ie.Field) + " " + ie.Reason
	case errors.Is(err, keystore.ErrRoleNotFound):
		// roleId is a body field: the request is wrong, not the URL.
		return http.StatusBadRequest, "roleId names no role in this namespace: " + err.Error()
	case errors.Is(err, keystore.ErrConflict):
		return http.StatusConflict, "id: " + err.Error()
	}
	return status.Of(err)
}

// fieldName is the vendor's name for a field the store names.
func fieldName(storeField string) string {
	switch storeField {
	case "name":
		return "id"
	case "attributes":
		return "permissions"
	}
	return storeField
}
