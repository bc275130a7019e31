package verify

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits on what a request may carry.
const (
	maxBodyBytes       = 64 << 10
	maxPermissions     = 32
	maxPermissionBytes = 128
)

// Names of the forward-auth request's inputs and answer headers.
const (
	// PermissionQuery and PermissionHeader name the permissions a
	// forward-auth request needs; each may be repeated or hold a
	// comma-separated list, and all given must be granted.
	PermissionQuery  = "permission"
	PermissionHeader = "X-Required-Permission"
	// APIKeyHeader carries the key when Authorization does not.
	APIKeyHeader = "X-API-Key"

	NamespaceHeader   = "X-ApiKey-Namespace"
	NameHeader        = "X-ApiKey-Name"
	PermissionsHeader = "X-ApiKey-Permissions"
	// CodeHeader tells a gateway (and its logs) why a request was refused.
	CodeHeader = "X-ApiKey-Code"
)

// Handler serves the verify endpoints:
//
//	POST /v1/keys/verify     JSON in, JSON verdict out (always 200 when the body parses)
//	ANY  /v1/auth[/...]      forward-auth: 200, 401, 403 or 429
//
// /v1/auth takes any method and any path below it because Envoy's
// ext_authz sends the original request's method and appends its path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/keys/verify", s.handleVerify)
	mux.HandleFunc("/v1/auth", s.handleAuth)
	mux.HandleFunc("/v1/auth/", s.handleAuth)
	return mux
}

type verifyRequest struct {
	Key         string   `json:"key"`
	Permissions []string `json:"permissions"`
	IP          string   `json:"ip"`
}

type verifyResponse struct {
	Valid       bool           `json:"valid"`
	Code        string         `json:"code"`
	Namespace   string         `json:"namespace,omitempty"`
	Name        string         `json:"name,omitempty"`
	KeyPrefix   string         `json:"keyPrefix,omitempty"`
	Permissions []string       `json:"permissions,omitempty"`
	ExpiresAt   *time.Time     `json:"expiresAt,omitempty"`
	RateLimit   *rateLimitJSON `json:"ratelimit,omitempty"`
}

// rateLimitJSON: limit is the bucket size, remaining the requests allowed
// now, reset the whole seconds until the bucket is full again.
type rateLimitJSON struct {
	Limit     int `json:"limit"`
	Remaining int `json:"remaining"`
	Reset     int `json:"reset"`
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var in verifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&in); err != nil {
		// The decoder's message could quote the body, and with it the key.
		status, msg := http.StatusBadRequest, `body must be JSON: {"key": "...", "permissions": ["..."], "ip": "..."}`
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status, msg = http.StatusRequestEntityTooLarge, "body is larger than 64 KiB"
		}
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	if msg := checkPermissions(in.Permissions); msg != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	req := Request{Token: in.Key, Permissions: in.Permissions}
	peer := peerAddr(r)
	req.IP, req.Source = s.proxies.clientAddr(r), peer
	if in.IP != "" {
		a, err := netip.ParseAddr(strings.TrimSpace(in.IP))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ip must be an IPv4 or IPv6 address"})
			return
		}
		req.IP = normalizeAddr(a)
	}
	if s.proxies.trusted(peer) {
		req.Source = req.IP
	}
	writeJSON(w, http.StatusOK, responseOf(s.verifier.Verify(&req)))
}

func responseOf(res Result) verifyResponse {
	out := verifyResponse{Valid: res.Code == Valid, Code: res.Code.String()}
	if res.RateLimit.Limit > 0 {
		out.RateLimit = &rateLimitJSON{Limit: res.RateLimit.Limit, Remaining: res.RateLimit.Remaining, Reset: ceilSeconds(res.RateLimit.Reset)}
	}
	if !out.Valid {
		// Only a valid key's holder learns whose key it is.
		return out
	}
	k := res.Key
	out.Namespace, out.Name, out.KeyPrefix, out.Permissions = k.Namespace, k.Name, k.KeyPrefix, k.Permissions
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	return out
}

func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	perms, msg := requiredPermissions(r)
	if msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	req := Request{Token: presentedKey(r.Header), Permissions: perms, IP: s.proxies.clientAddr(r)}
	if peer := peerAddr(r); !s.proxies.trusted(peer) {
		req.Source = peer
	}
	res := s.verifier.Verify(&req)
	h := w.Header()
	h.Set(CodeHeader, res.Code.String())
	setRateLimitHeaders(h, res)
	if res.Code == Valid {
		h.Set(NamespaceHeader, res.Key.Namespace)
		h.Set(NameHeader, res.Key.Name)
		h.Set(PermissionsHeader, res.Key.PermissionsHeader)
		w.WriteHeader(http.StatusOK)
		return
	}
	if res.Code.HTTPStatus() == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="apikey"`)
	}
	http.Error(w, res.Code.String(), res.Code.HTTPStatus())
}

func setRateLimitHeaders(h http.Header, res Result) {
	if res.Code == RateLimited {
		h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(res.RetryAfter))))
	}
	if rl := res.RateLimit; rl.Limit > 0 {
		h.Set("RateLimit-Limit", strconv.Itoa(rl.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(rl.Remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(rl.Reset)))
	}
}

// presentedKey takes the key from "Authorization: Bearer <key>", else from
// X-API-Key. A missing key is "", which verifies as Malformed.
func presentedKey(h http.Header) string {
	if auth := h.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return strings.TrimSpace(h.Get(APIKeyHeader))
}

// requiredPermissions reads the permission query parameter and header.
func requiredPermissions(r *http.Request) ([]string, string) {
	var out []string
	lists := append(r.URL.Query()[PermissionQuery], r.Header.Values(PermissionHeader)...)
	for _, l := range lists {
		for p := range strings.SplitSeq(l, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out, checkPermissions(out)
}

func checkPermissions(perms []string) string {
	if len(perms) > maxPermissions {
		return "at most " + strconv.Itoa(maxPermissions) + " permissions per request"
	}
	for _, p := range perms {
		if p == "" || len(p) > maxPermissionBytes {
			return "each permission has 1 to " + strconv.Itoa(maxPermissionBytes) + " characters"
		}
	}
	return ""
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
