package verify

import "net/http"

// Code is the verdict of one verification.
type Code uint8

// The verdicts, in the order the checks run. Their names are part of the
// HTTP API.
const (
	Valid Code = iota
	Malformed
	NotFound
	Disabled
	Expired
	IPNotAllowed
	MissingPermission
	RateLimited
	numCodes
)

var codeNames = [numCodes]string{
	Valid:             "Valid",
	Malformed:         "Malformed",
	NotFound:          "NotFound",
	Disabled:          "Disabled",
	Expired:           "Expired",
	IPNotAllowed:      "IPNotAllowed",
	MissingPermission: "MissingPermission",
	RateLimited:       "RateLimited",
}

func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "Unknown"
}

// HTTPStatus is the forward-auth answer for a verdict: 401 when the
// caller is not authenticated (no usable key), 403 when the key is known
// but may not do this, 429 when it must slow down.
func (c Code) HTTPStatus() int {
	switch c {
	case Valid:
		return http.StatusOK
	case Malformed, NotFound, Disabled, Expired:
		return http.StatusUnauthorized
	case IPNotAllowed, MissingPermission:
		return http.StatusForbidden
	case RateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// failure tells whether a verdict counts against the caller's address in
// the brute-force guard: only answers that reveal nothing about a key
// being guessed do.
func (c Code) failure() bool {
	return c == Malformed || c == NotFound
}
