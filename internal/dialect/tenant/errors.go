package tenant

import (
	"net/http"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/dialect/status"
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

var errorf = status.Errorf

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
// classify: no body field of this dialect names a role, so a missing one
// is the key's state, not the request's fault: 404, as status.Of says.
func classify(err error) (int, string) { return status.Of(err) }
