package verify

import "net/http"

// Code is the verdict of one verification.
type Code uint8

// The verdicts, in the order the checks run. Their names are part of the
// HTTP API.
const (
	Valid Code = iota
	// Unscoped: the request named no namespace and no audience, and the
	// server does not accept any namespace (--verify-any-namespace).
	Unscoped
	Malformed
	NotFound
	// WrongNamespace and WrongAudience: the key exists but belongs to a
	// namespace, or is made for audiences, the request does not accept.
	WrongNamespace
	WrongAudience
	Disabled
	Expired
	IPNotAllowed
	MissingPermission
	RateLimited
	// QuotaExceeded: the key's quota (spec.quota), or its consumer's, is
	// spent until its next refill, or for good without one.
	QuotaExceeded
	// QuotaUnavailable: the key or its consumer has a quota this server
	// cannot count
	// exactly (no Redis and several verify replicas), so it refuses
	// rather than let the quota be spent once per replica.
	QuotaUnavailable
	numCodes
)

var codeNames = [numCodes]string{
	Valid:             "Valid",
	Unscoped:          "Unscoped",
	Malformed:         "Malformed",
	NotFound:          "NotFound",
	WrongNamespace:    "WrongNamespace",
	WrongAudience:     "WrongAudience",
	Disabled:          "Disabled",
	Expired:           "Expired",
	IPNotAllowed:      "IPNotAllowed",
	MissingPermission: "MissingPermission",
	RateLimited:       "RateLimited",
	QuotaExceeded:     "QuotaExceeded",
	QuotaUnavailable:  "QuotaUnavailable",
}

func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "Unknown"
}

// HTTPStatus is the forward-auth answer for a verdict: 401 when the
// caller is not authenticated (no usable key, or a key that is not for
// this gateway, as a token for another audience is in OAuth), 403 when
// the key is known but may not do this, 429 when it must slow down, and
// 400 when the gateway's own request names no scope (its configuration
// must be fixed). A spent quota is 429 too (with Retry-After until its
// refill, if it has one), and one the server cannot count is 503: the
// operator's configuration, not the client, must change.
func (c Code) HTTPStatus() int {
	switch c {
	case Valid:
		return http.StatusOK
	case Unscoped:
		return http.StatusBadRequest
	case Malformed, NotFound, WrongNamespace, WrongAudience, Disabled, Expired:
		return http.StatusUnauthorized
	case IPNotAllowed, MissingPermission:
		return http.StatusForbidden
	case RateLimited, QuotaExceeded:
		return http.StatusTooManyRequests
	case QuotaUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// failure tells whether a verdict counts against the caller's address in
// the brute-force guard: only answers that reveal nothing about a key
// being guessed do.
func (c Code) failure() bool {
	return c == Malformed || c == NotFound
}
