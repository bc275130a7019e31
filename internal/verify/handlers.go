package verify

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits on what a request may carry.
const (
	maxBodyBytes       = 64 << 10
	maxPermissions     = 32
	maxPermissionBytes = 128
	// maxScope bounds the namespaces, and the audiences, one request
	// names; maxScopeBytes each name (a namespace is at most 63, an
	// audience at most 253).
	maxScope      = 32
	maxScopeBytes = 253
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

	// NamespaceQuery and AudienceQuery say whose keys a forward-auth
	// request accepts (see Request.Namespaces): the gateway writes them
	// into the /v1/auth URL of its configuration; each may be repeated or
	// hold a comma-separated list. They are read only on the exact path
	// /v1/auth, whose query is the gateway's own.
	NamespaceQuery = "namespace"
	AudienceQuery  = "audience"
	// AcceptNamespaceHeader and AcceptAudienceHeader carry the same on
	// /v1/auth/<path>, where a gateway (Envoy's HTTP ext_authz) appends
	// the client's path and query: there the query is the client's and
	// is not read, and the gateway sets these headers (Envoy's
	// headers_to_add replaces a client's header of the same name).
	AcceptNamespaceHeader = "X-ApiKey-Accept-Namespace"
	AcceptAudienceHeader  = "X-ApiKey-Accept-Audience"

	NamespaceHeader   = "X-ApiKey-Namespace"
	NameHeader        = "X-ApiKey-Name"
	PermissionsHeader = "X-ApiKey-Permissions"
	// ConsumerHeader names the key's ApiConsumer: empty for a key
	// without one in forward-auth answers (so a gateway copying it
	// overwrites a client's), removed from the request by ext_authz.
	ConsumerHeader = "X-ApiKey-Consumer"
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
//
// Routing is two string comparisons rather than a ServeMux: forward-auth
// runs on every request a gateway sees.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/v1/auth" || strings.HasPrefix(p, "/v1/auth/"):
			s.handleAuth(w, r)
		case p == "/v1/keys/verify" && r.Method == http.MethodPost:
			s.handleVerify(w, r)
		case p == "/v1/keys/verify":
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
		default:
			http.NotFound(w, r)
		}
	})
}

// The response header keys in canonical form, for writing the header map
// directly (Header.Set would canonicalise them on every request).
var (
	codeKey        = http.CanonicalHeaderKey(CodeHeader)
	cacheKey       = http.CanonicalHeaderKey("Cache-Control")
	namespaceKey   = http.CanonicalHeaderKey(NamespaceHeader)
	nameKey        = http.CanonicalHeaderKey(NameHeader)
	permissionsKey = http.CanonicalHeaderKey(PermissionsHeader)
	consumerKey    = http.CanonicalHeaderKey(ConsumerHeader)
)

// noStore is the Cache-Control value of every refusal.
var noStore = []string{"no-store"}

// codeValues are the X-ApiKey-Code header values, one per verdict, made
// once (see Key.identity).
var codeValues = func() (v [numCodes][]string) {
	for c := range numCodes {
		v[c] = []string{Code(c).String()}
	}
	return v
}()

type verifyRequest struct {
	Key         string   `json:"key"`
	Permissions []string `json:"permissions"`
	IP          string   `json:"ip"`
	Namespaces  []string `json:"namespaces"`
	Audiences   []string `json:"audiences"`
}

type verifyResponse struct {
	Valid       bool           `json:"valid"`
	Code        string         `json:"code"`
	Namespace   string         `json:"namespace,omitempty"`
	Name        string         `json:"name,omitempty"`
	Consumer    string         `json:"consumer,omitempty"`
	KeyPrefix   string         `json:"keyPrefix,omitempty"`
	Permissions []string       `json:"permissions,omitempty"`
	ExpiresAt   *time.Time     `json:"expiresAt,omitempty"`
	RateLimit   *rateLimitJSON `json:"ratelimit,omitempty"`
	Quota       *quotaJSON     `json:"quota,omitempty"`
	// ConsumerQuota is the quota of the key's ApiConsumer, shared by all
	// its keys.
	ConsumerQuota *quotaJSON `json:"consumerQuota,omitempty"`
	// RetryAfter is set with RateLimited: the whole seconds (at least 1)
	// forward-auth would put in Retry-After.
	RetryAfter int `json:"retryAfter,omitempty"`
}

// quotaJSON: limit and remaining verifications of the key's quota, and
// reset, the whole seconds until its next refill (absent without one).
type quotaJSON struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	Reset     *int  `json:"reset,omitempty"`
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
		status, msg := http.StatusBadRequest, `body must be JSON: {"key": "...", "namespaces": ["..."], "audiences": ["..."], "permissions": ["..."], "ip": "..."}`
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status, msg = http.StatusRequestEntityTooLarge, "body is larger than 64 KiB"
		}
		s.answerVerify(w, status, map[string]string{"error": msg})
		return
	}
	msg := CheckPermissions(in.Permissions)
	if msg == "" {
		msg = CheckScope(in.Namespaces, in.Audiences, "namespaces", "audiences")
	}
	if msg == "" && len(in.Namespaces) == 0 && len(in.Audiences) == 0 && !s.opts.AnyNamespace {
		msg = UnscopedMessage("namespaces", "audiences")
	}
	if msg != "" {
		s.answerVerify(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	req := Request{Token: in.Key, Permissions: in.Permissions, Namespaces: in.Namespaces, Audiences: in.Audiences, AnyNamespace: s.opts.AnyNamespace}
	peer := peerAddr(r)
	req.IP, req.Source = s.proxies.clientAddr(r), peer
	if in.IP != "" && !s.proxies.trusted(peer) {
		// A body ip from anyone else would let a client choose the
		// address its key's allowedIPs are checked against.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ip is accepted only from the addresses in --trusted-proxies; leave it out to be judged by your own address"})
		return
	}
	if in.IP != "" {
		a, err := netip.ParseAddr(strings.TrimSpace(in.IP))
		if err != nil {
			s.answerVerify(w, http.StatusBadRequest, map[string]string{"error": "ip must be an IPv4 or IPv6 address"})
			return
		}
		req.IP = normalizeAddr(a)
	}
	if s.proxies.trusted(peer) {
		req.Source = req.IP
	}
	res := s.verifier.Verify(&req)
	PolicyHeaders(res, w.Header().Set)
	s.answerVerify(w, http.StatusOK, responseOf(res))
}

// quotaJSONOf is a quota's part of the JSON answer; nil when it was not
// counted.
func quotaJSONOf(q *Quota) *quotaJSON {
	if q.Limit <= 0 {
		return nil
	}
	out := &quotaJSON{Limit: q.Limit, Remaining: q.Remaining()}
	if !q.NextRefill.IsZero() {
		reset := max(0, ceilSeconds(time.Until(q.NextRefill)))
		out.Reset = &reset
	}
	return out
}

func responseOf(res Result) verifyResponse {
	out := verifyResponse{Valid: res.Code == Valid, Code: res.Code.String()}
	if res.RateLimit.Limit > 0 {
		out.RateLimit = &rateLimitJSON{Limit: res.RateLimit.Limit, Remaining: res.RateLimit.Remaining, Reset: ceilSeconds(res.RateLimit.Reset)}
	}
	out.Quota, out.ConsumerQuota = quotaJSONOf(&res.Quota), quotaJSONOf(&res.ConsumerQuota)
	if res.Code == RateLimited {
		out.RetryAfter = retrySeconds(res.RetryAfter)
	}
	if !out.Valid {
		// Only a valid key's holder learns whose key it is.
		return out
	}
	k := res.Key
	out.Namespace, out.Name, out.KeyPrefix, out.Permissions = k.Namespace, k.Name, k.KeyPrefix, k.Permissions
	out.Consumer = k.Consumer
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	return out
}

func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	req := Request{Token: presentedKey(r.Header), IP: s.proxies.clientAddr(r), AnyNamespace: s.opts.AnyNamespace}
	if msg := readAuthQuery(r, &req); msg != "" {
		s.verifier.metrics.respond(endpointAuth, http.StatusBadRequest)
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	if peer := peerAddr(r); !s.proxies.trusted(peer) {
		req.Source = peer
	}
	res := s.verifier.Verify(&req)
	h := w.Header()
	h[codeKey] = codeValues[res.Code]
	setRateLimitHeaders(h, res)
	if res.Code == Valid {
		h[namespaceKey], h[nameKey], h[permissionsKey] = res.Key.identity[0], res.Key.identity[1], res.Key.identity[2]
		// Always set, empty for a key without a consumer, so that a
		// gateway copying it overwrites what a client sent.
		h[consumerKey] = res.Key.identity[3]
		// A gateway that caches verdicts may reuse this one for max-age
		// seconds (0 by default), for this client only.
		h[cacheKey] = s.cacheAllowed()
		s.verifier.metrics.respond(endpointAuth, http.StatusOK)
		w.WriteHeader(http.StatusOK)
		return
	}
	// A refusal is never reused: the next request may carry a new key,
	// and a RateLimited answer ends.
	h[cacheKey] = noStore
	switch res.Code {
	case Unscoped:
		s.verifier.metrics.respond(endpointAuth, http.StatusBadRequest)
		http.Error(w, UnscopedMessage(NamespaceQuery, AudienceQuery), http.StatusBadRequest)
		return
	case Malformed, NotFound, WrongNamespace, WrongAudience, Disabled, Expired:
		h.Set("WWW-Authenticate", `Bearer realm="apikey"`)
	}
	s.verifier.metrics.respond(endpointAuth, res.Code.HTTPStatus())
	http.Error(w, res.Code.String(), res.Code.HTTPStatus())
}

func setRateLimitHeaders(h http.Header, res Result) {
	RateLimitHeaders(res, h.Set)
}

// DefaultKeyHeaders are where a gateway request carries its key, in the
// order they are read: "Authorization: Bearer <key>", then X-API-Key.
var DefaultKeyHeaders = []string{"Authorization", APIKeyHeader}

// presentedKey takes the key from the default headers. A missing key is
// "", which verifies as Malformed.
func presentedKey(h http.Header) string {
	return KeyFromHeaders(DefaultKeyHeaders, h.Get)
}

// KeyFromHeaders reads the key from the first of the named headers that
// holds one; get looks a header up by name. The Authorization header
// carries it after "Bearer " (any case); any other header holds it alone.
// Forward-auth and the gRPC ext_authz server both read keys through it.
func KeyFromHeaders(names []string, get func(name string) string) string {
	for _, n := range names {
		v := get(n)
		if v == "" {
			continue
		}
		if strings.EqualFold(n, "Authorization") {
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				return strings.TrimSpace(v[7:])
			}
			continue
		}
		return strings.TrimSpace(v)
	}
	return ""
}

// readAuthQuery reads a forward-auth request's permissions, namespaces
// and audiences into req. It scans the raw query instead of parsing it
// into a map, which would cost several allocations per gateway request.
//
// On the exact path /v1/auth the query is the gateway's configuration;
// below it (/v1/auth/<client path>) the query is the client's, so the
// scope comes from the gateway-set Accept headers instead, and permissions
// from the query and headers (a client can only add requirements).
func readAuthQuery(r *http.Request, req *Request) string {
	gatewayQuery := r.URL.Path == "/v1/auth"
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		name, v, _ := strings.Cut(pair, "=")
		var dst *[]string
		switch {
		case name == PermissionQuery:
			dst = &req.Permissions
		case name == NamespaceQuery && gatewayQuery:
			dst = &req.Namespaces
		case name == AudienceQuery && gatewayQuery:
			dst = &req.Audiences
		default:
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "the " + name + " query parameter is not valid URL encoding"
			}
			v = u
		}
		*dst = AppendList(*dst, v)
	}
	for _, l := range r.Header.Values(PermissionHeader) {
		req.Permissions = AppendList(req.Permissions, l)
	}
	if !gatewayQuery {
		for _, l := range r.Header.Values(AcceptNamespaceHeader) {
			req.Namespaces = AppendList(req.Namespaces, l)
		}
		for _, l := range r.Header.Values(AcceptAudienceHeader) {
			req.Audiences = AppendList(req.Audiences, l)
		}
	}
	if msg := CheckPermissions(req.Permissions); msg != "" {
		return msg
	}
	return CheckScope(req.Namespaces, req.Audiences, NamespaceQuery, AudienceQuery)
}

// CheckScope bounds the namespaces and audiences a request names; nsName
// and audName are what the caller's dialect calls them.
func CheckScope(namespaces, audiences []string, nsName, audName string) string {
	if len(namespaces) > maxScope || len(audiences) > maxScope {
		return "at most " + strconv.Itoa(maxScope) + " " + nsName + " and " + strconv.Itoa(maxScope) + " " + audName + " per request"
	}
	for _, l := range [2][]string{namespaces, audiences} {
		for _, v := range l {
			if v == "" || len(v) > maxScopeBytes {
				return "each of " + nsName + " and " + audName + " has 1 to " + strconv.Itoa(maxScopeBytes) + " characters"
			}
		}
	}
	return ""
}

// UnscopedMessage answers a verification that names neither namespace nor
// audience (verdict Unscoped): the gateway's configuration is incomplete,
// and accepting every namespace's keys would let any tenant through.
func UnscopedMessage(nsName, audName string) string {
	return "name whose keys this verification accepts: " + nsName + " (the tenant's namespace) or " + audName + " (the API's audience); " +
		"a verification naming neither is refused unless the server runs with --verify-any-namespace"
}

// AppendList adds the entries of a comma-separated list (permissions,
// namespaces or audiences), skipping empty ones. Check the result with
// CheckPermissions or CheckScope.
func AppendList(dst []string, list string) []string {
	for p := range strings.SplitSeq(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			dst = append(dst, p)
		}
	}
	return dst
}

// CheckPermissions bounds the permissions a request may name; it returns
// what is wrong, or "".
func CheckPermissions(perms []string) string {
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

// answerVerify counts and writes an answer of POST /v1/keys/verify.
func (s *Server) answerVerify(w http.ResponseWriter, status int, v any) {
	s.verifier.metrics.respond(endpointVerify, status)
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
