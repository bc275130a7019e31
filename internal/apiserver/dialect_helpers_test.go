package apiserver_test

// Helpers for the authorisation matrix (authz_matrix_test.go) and the
// dialects' status-code and field tests (dialect_status_test.go).

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// request is one HTTP request with a raw body, for the inputs caller.do
// cannot send (malformed JSON, other content types, huge bodies).
type request struct {
	method, path string
	body         []byte // nil: no body
	contentType  string // sent as is when body != nil; "" sends none
	headers      []string
	// fresh sends the request from a loopback address no other request
	// used. The verifier's brute-force guard limits failed verifications
	// per source address (burst 20); requests with bad credentials use a
	// fresh address so they neither hit that limit nor use up the budget
	// the rest of the suite shares on 127.0.0.1.
	fresh bool
}

var sourceCounter atomic.Uint32

// freshSource is a loopback address (127.0.0.0/8 is all loopback on
// Linux) used by no other request of the suite.
func freshSource() net.IP {
	n := sourceCounter.Add(1)
	return net.IPv4(127, 77, byte(n>>8), byte(n))
}

func (c caller) send(r request) response {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, base+"/", rd)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	u, err := url.Parse(base + r.path)
	if err != nil {
		// A path net/url refuses (a malformed %-escape): send it as is.
		u, _ = url.Parse(base)
		u.Opaque, u.RawQuery, _ = strings.Cut(r.path, "?")
	}
	req.URL = u
	if r.body != nil && r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(r.headers); i += 2 {
		req.Header.Add(r.headers[i], r.headers[i+1])
	}
	cfg := tlsBase.Clone()
	if c.cert != nil {
		cfg.Certificates = []tls.Certificate{*c.cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	src := c.source
	if r.fresh {
		src = freshSource()
	}
	if src != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
		tr.DialContext = d.DialContext
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	checkHubAnswer(r.method, r.path, out)
	return out
}

// jsonBody is the JSON encoding of v.
func jsonBody(v any) []byte {
	raw, err := json.Marshal(v)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return raw
}

// post, put, patch: a JSON body with Content-Type application/json.
func jsonReq(method, path string, v any, headers ...string) request {
	return request{method: method, path: path, body: jsonBody(v), contentType: "application/json", headers: headers}
}

func rawReq(method, path, body string, headers ...string) request {
	return request{method: method, path: path, body: []byte(body), contentType: "application/json", headers: headers}
}

func getReq(path string, headers ...string) request {
	return request{method: http.MethodGet, path: path, headers: headers}
}

// unknownToken is a well-formed token (right shape and checksum) that no
// key has.
func unknownToken() string {
	tok, err := token.Mint("")
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return tok
}

// topLevelKeys are the member names of a JSON object in the order sent.
func topLevelKeys(raw string) []string {
	dec := json.NewDecoder(strings.NewReader(raw))
	tok, err := dec.Token()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), raw)
	ExpectWithOffset(1, tok).To(Equal(json.Delim('{')), raw)
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), raw)
		names = append(names, tok.(string))
		var skip json.RawMessage
		ExpectWithOffset(1, dec.Decode(&skip)).To(Succeed(), raw)
	}
	return names
}

func decodeJSON(raw string) any {
	var v any
	ExpectWithOffset(1, json.Unmarshal([]byte(raw), &v)).To(Succeed(), raw)
	return v
}

func (r response) array() []any {
	v, ok := decodeJSON(r.body).([]any)
	ExpectWithOffset(1, ok).To(BeTrue(), "want a JSON array: "+r.body)
	return v
}

// sortedKeys of a decoded JSON object.
func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	hex24      = regexp.MustCompile(`^[0-9a-f]{24}$`)
	utcSeconds = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

// rfc3339UTC asserts a JSON value is an RFC 3339 timestamp in UTC and
// returns it.
func rfc3339UTC(v any) time.Time {
	s, ok := v.(string)
	ExpectWithOffset(1, ok).To(BeTrue(), fmt.Sprintf("want a timestamp string, got %#v", v))
	ExpectWithOffset(1, s).To(HaveSuffix("Z"), "timestamps are UTC")
	t, err := time.Parse(time.RFC3339, s)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return t
}

// Error shapes of the three dialects (docs/dialects/*.md).

// expectTenantError: {"error": <code of the status>, "message": "..."},
// Content-Type application/json, nothing else.
func expectTenantError(r response, status int) {
	codes := map[int]string{400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
		405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
		429: "too_many_requests"}
	ExpectWithOffset(1, r.status).To(Equal(status), r.body)
	ExpectWithOffset(1, r.header.Get("Content-Type")).To(HavePrefix("application/json"))
	m := map[string]any{}
	ExpectWithOffset(1, json.Unmarshal([]byte(r.body), &m)).To(Succeed(), r.body)
	ExpectWithOffset(1, keysOf(m)).To(Equal([]string{"error", "message"}), r.body)
	ExpectWithOffset(1, m["error"]).To(Equal(codes[status]), r.body)
	ExpectWithOffset(1, m["message"]).To(BeAssignableToTypeOf(""), r.body)
	ExpectWithOffset(1, m["message"]).NotTo(BeEmpty(), r.body)
	if status == 401 {
		ExpectWithOffset(1, r.header.Get("WWW-Authenticate")).NotTo(BeEmpty())
	}
}

// expectProblem: RFC 7807 with exactly the vendor's five fields, as
// application/problem+json.
func expectProblem(r response, status int, path string) map[string]any {
	types := map[int]string{400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6",
		409: "15.5.10", 413: "15.5.14", 415: "15.5.16"}
	ExpectWithOffset(1, r.status).To(Equal(status), r.body)
	ExpectWithOffset(1, r.header.Get("Content-Type")).To(HavePrefix("application/problem+json"))
	ExpectWithOffset(1, topLevelKeys(r.body)).To(Equal([]string{"type", "title", "detail", "status", "instance"}), r.body)
	m := map[string]any{}
	ExpectWithOffset(1, json.Unmarshal([]byte(r.body), &m)).To(Succeed())
	if sec, ok := types[status]; ok {
		ExpectWithOffset(1, m["type"]).To(Equal("https://tools.ietf.org/html/rfc9110#section-"+sec), r.body)
	}
	ExpectWithOffset(1, m["title"]).To(Equal(http.StatusText(status)), r.body)
	ExpectWithOffset(1, m["status"]).To(BeEquivalentTo(status), r.body)
	ExpectWithOffset(1, m["detail"]).To(BeAssignableToTypeOf(""), r.body)
	ExpectWithOffset(1, m["detail"]).NotTo(BeEmpty(), r.body)
	if path != "" {
		ExpectWithOffset(1, m["instance"]).To(Equal(path), r.body)
	}
	if status == 401 {
		ExpectWithOffset(1, r.header.Get("WWW-Authenticate")).NotTo(BeEmpty())
	}
	return m
}

// expectHubError: {"error": {status, code, title, detail, ...}, "data": null}.
// It returns the error object.
func expectHubError(r response, status int, code string) map[string]any {
	ExpectWithOffset(1, r.status).To(Equal(status), r.body)
	ExpectWithOffset(1, r.header.Get("Content-Type")).To(HavePrefix("application/json"))
	var env map[string]any
	ExpectWithOffset(1, json.Unmarshal([]byte(r.body), &env)).To(Succeed(), r.body)
	ExpectWithOffset(1, keysOf(env)).To(Equal([]string{"data", "error"}), r.body)
	ExpectWithOffset(1, env["data"]).To(BeNil(), r.body)
	e, ok := env["error"].(map[string]any)
	ExpectWithOffset(1, ok).To(BeTrue(), r.body)
	ExpectWithOffset(1, e["status"]).To(BeEquivalentTo(status), r.body)
	ExpectWithOffset(1, e["code"]).To(Equal(code), r.body)
	ExpectWithOffset(1, e["title"]).To(BeAssignableToTypeOf(""), r.body)
	ExpectWithOffset(1, e["title"]).NotTo(BeEmpty(), r.body)
	ExpectWithOffset(1, e["detail"]).To(BeAssignableToTypeOf(""), r.body)
	for k := range e {
		ExpectWithOffset(1, []string{"status", "code", "title", "detail", "source", "extra"}).To(ContainElement(k), r.body)
	}
	if status == 401 {
		ExpectWithOffset(1, r.header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
	}
	return e
}

// nsState is what a refused request must not change in a namespace: every
// ApiKey's spec, labels and annotations, and the names of the Secrets the
// operator owns. Status is left out: the controller writes it on its own.
type nsState struct {
	Keys    map[string]string
	Secrets []string
}

func snapshot(ctx context.Context, ns string) nsState {
	keys := &keysv1.ApiKeyList{}
	ExpectWithOffset(1, k8s.List(ctx, keys, client.InNamespace(ns))).To(Succeed())
	st := nsState{Keys: map[string]string{}}
	for _, k := range keys.Items {
		raw, _ := json.Marshal([]any{k.UID, k.Spec, k.Labels, k.Annotations})
		st.Keys[k.Name] = string(raw)
	}
	secrets := &corev1.SecretList{}
	ExpectWithOffset(1, k8s.List(ctx, secrets, client.InNamespace(ns), client.MatchingLabels{keysv1.ManagedByLabel: keysv1.ManagedByValue})).To(Succeed())
	for _, s := range secrets.Items {
		st.Secrets = append(st.Secrets, s.Name)
	}
	slices.Sort(st.Secrets)
	return st
}

// keyByDisplayName finds the ApiKey with this spec.name (or metadata.name).
func keyByDisplayName(ctx context.Context, ns, name string) *keysv1.ApiKey {
	keys := &keysv1.ApiKeyList{}
	ExpectWithOffset(1, k8s.List(ctx, keys, client.InNamespace(ns))).To(Succeed())
	for i := range keys.Items {
		k := &keys.Items[i]
		if string(k.Spec.Name) == name || (k.Spec.Name == "" && k.Name == name) {
			return k
		}
	}
	return nil
}

// makeKey creates an ApiKey as kubectl would, lets mutate shape it, waits
// until the controller issued its token, remembers the token and returns
// the key and the token.
func makeKey(ctx context.Context, ns, name string, mutate func(*keysv1.ApiKey)) (*keysv1.ApiKey, string) {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mutate != nil {
		mutate(key)
	}
	ExpectWithOffset(1, k8s.Create(ctx, key)).To(Succeed())
	secret := &corev1.Secret{}
	EventuallyWithOffset(1, func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(key), key)).To(Succeed())
		g.Expect(key.Status.Hash).NotTo(BeEmpty())
		g.Expect(key.Status.KeyPrefix).NotTo(BeEmpty())
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)).To(Succeed())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	tok := string(secret.Data[keysv1.SecretKeyField])
	rememberToken(tok)
	return key, tok
}

// makeRole creates an ApiKeyRole and returns its hub ID.
func makeRole(ctx context.Context, ns, name string, perms ...string) string {
	role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, p := range perms {
		role.Spec.Permissions = append(role.Spec.Permissions, keysv1.Permission(p))
	}
	ExpectWithOffset(1, k8s.Create(ctx, role)).To(Succeed())
	return keystore.IDOf(role.UID)
}

// waitVisible waits until the API server's cache shows the key, asked
// through the tenant dialect by a caller that may read the namespace.
func waitVisible(admin caller, ns, name string) {
	EventuallyWithOffset(1, func() int {
		return admin.do("GET", "/api/"+ns+"/admin/apiKeys/"+name, nil).status
	}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(200))
}

// waitRoleVisible waits until the API server's cache shows the role: the
// hub's GET /v1/hubs/current/roles/{roleId} finds it.
func waitRoleVisible(admin caller, ns, roleID string) {
	EventuallyWithOffset(1, func() int {
		return admin.do("GET", "/v1/hubs/current/roles/"+roleID, nil, "X-Hub-Id", ns).status
	}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(200))
}

func ptr[T any](v T) *T { return &v }

// describeCall is a short description of a request for failure messages.
func describeCall(r request) string {
	b := string(r.body)
	if len(b) > 80 {
		b = b[:80] + "..."
	}
	return fmt.Sprintf("%s %s %s", r.method, r.path, b)
}
