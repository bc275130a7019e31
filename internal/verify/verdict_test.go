package verify

import (
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// TestVerdicts walks every verdict through the forward-auth endpoint, so
// it covers key and IP extraction as well as the core.
func TestVerdicts(t *testing.T) {
	const ns = "tenant-a"
	type call struct {
		peer    string
		target  string
		headers map[string]string
	}
	cases := []struct {
		name       string
		key        func(tok string) *keysv1.ApiKey // nil: the token is not in the index
		present    func(tok string) string         // the key as sent; default the token
		call       call
		scope      string // query naming whose keys are accepted; default namespace=tenant-a, "-" none
		warmup     int    // identical calls made before the one checked
		wantStatus int
		wantCode   Code
	}{
		{name: "valid", key: plain, wantStatus: 200, wantCode: Valid},
		{name: "valid via X-API-Key", key: plain, call: call{headers: map[string]string{"X-API-Key": "%s"}}, wantStatus: 200, wantCode: Valid},
		{name: "malformed: bad checksum", key: plain, present: flipLast, wantStatus: 401, wantCode: Malformed},
		{name: "malformed: too short", key: plain, present: func(string) string { return "ak_short" }, wantStatus: 401, wantCode: Malformed},
		{name: "malformed: no key", key: plain, call: call{headers: map[string]string{}}, wantStatus: 401, wantCode: Malformed},
		{name: "unknown", key: nil, wantStatus: 401, wantCode: NotFound},
		{name: "expired", key: with(func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: t0} }), wantStatus: 401, wantCode: Expired},
		{name: "expires a nanosecond from now", key: with(func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: t0.Add(time.Nanosecond)} }), wantStatus: 200, wantCode: Valid},
		{name: "disabled", key: with(func(k *keysv1.ApiKey) { k.Spec.Enabled = ptr.To(false) }), wantStatus: 401, wantCode: Disabled},
		{name: "role missing", key: with(func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "nope"} }), wantStatus: 401, wantCode: Disabled},
		{name: "wrong IP", key: allowTen, call: call{peer: "192.0.2.9:5000"}, wantStatus: 403, wantCode: IPNotAllowed},
		{name: "allowed IP", key: allowTen, call: call{peer: "10.1.2.3:5000"}, wantStatus: 200, wantCode: Valid},
		{name: "allowed IP as v4-mapped v6 peer", key: allowTen, call: call{peer: "[::ffff:10.1.2.3]:5000"}, wantStatus: 200, wantCode: Valid},
		{name: "allowed IPv6 block", key: allowV6, call: call{peer: "[2001:db8::7]:5000"}, wantStatus: 200, wantCode: Valid},
		{name: "IPv6 outside the block", key: allowV6, call: call{peer: "[2001:db9::7]:5000"}, wantStatus: 403, wantCode: IPNotAllowed},
		{name: "spoofed X-Forwarded-For from an untrusted peer", key: allowTen,
			call:       call{peer: "192.0.2.9:5000", headers: map[string]string{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}},
			wantStatus: 403, wantCode: IPNotAllowed},
		{name: "X-Forwarded-For from a trusted proxy", key: allowTen,
			call:       call{peer: "127.0.0.1:5000", headers: map[string]string{"X-Forwarded-For": "10.1.2.3"}},
			wantStatus: 200, wantCode: Valid},
		{name: "client-written hop left of the real client is ignored", key: allowTen,
			call:       call{peer: "127.0.0.1:5000", headers: map[string]string{"X-Forwarded-For": "10.9.9.9, 192.0.2.9"}},
			wantStatus: 403, wantCode: IPNotAllowed},
		{name: "X-Real-IP from a trusted proxy", key: allowTen,
			call:       call{peer: "127.0.0.1:5000", headers: map[string]string{"X-Real-IP": "10.1.2.3"}},
			wantStatus: 200, wantCode: Valid},
		{name: "permission granted by the key", key: withPerms("invoices:read"), call: call{target: "/v1/auth?permission=invoices:read"}, wantStatus: 200, wantCode: Valid},
		{name: "permission granted by the role", key: withRole, call: call{target: "/v1/auth?permission=reports:export"}, wantStatus: 200, wantCode: Valid},
		{name: "permission by header and wildcard", key: withPerms("tenant.apiKey:*"), call: call{headers: map[string]string{PermissionHeader: "tenant.apiKey:write"}}, wantStatus: 200, wantCode: Valid},
		{name: "missing permission", key: withPerms("invoices:read"), call: call{target: "/v1/auth?permission=invoices:write"}, wantStatus: 403, wantCode: MissingPermission},
		{name: "one of two permissions missing", key: withPerms("invoices:read"), call: call{target: "/v1/auth?permission=invoices:read,invoices:write"}, wantStatus: 403, wantCode: MissingPermission},
		{name: "rate-limited", key: limited, warmup: 2, wantStatus: 429, wantCode: RateLimited},
		{name: "within the rate limit", key: limited, warmup: 1, wantStatus: 200, wantCode: Valid},
		{name: "rotated out, after its grace period", key: rotated(-time.Second), present: previous, wantStatus: 401, wantCode: NotFound},
		{name: "rotated out, at the end of its grace period", key: rotated(0), present: previous, wantStatus: 401, wantCode: NotFound},
		{name: "rotated out, inside its grace period", key: rotated(time.Hour), present: previous, wantStatus: 200, wantCode: Valid},
		{name: "no usable token in the Secret (empty hash)", key: with(func(k *keysv1.ApiKey) { k.Status.Hash = "" }), wantStatus: 401, wantCode: NotFound},

		// Whose keys the gateway accepts (issue 11).
		{name: "naming no namespace and no audience", key: plain, scope: "-", wantStatus: 400, wantCode: Unscoped},
		{name: "another namespace's key", key: plain, scope: "namespace=tenant-b", wantStatus: 401, wantCode: WrongNamespace},
		{name: "one of several namespaces", key: plain, scope: "namespace=tenant-b&namespace=tenant-a", wantStatus: 200, wantCode: Valid},
		{name: "namespaces as a list", key: plain, scope: "namespace=tenant-b,tenant-a", wantStatus: 200, wantCode: Valid},
		{name: "another namespace's disabled key tells only its namespace", key: with(func(k *keysv1.ApiKey) { k.Spec.Enabled = ptr.To(false) }),
			scope: "namespace=tenant-b", wantStatus: 401, wantCode: WrongNamespace},
		{name: "another namespace's wildcard key", key: withPerms("*"), call: call{target: "/v1/auth?permission=invoices:read"},
			scope: "namespace=tenant-b", wantStatus: 401, wantCode: WrongNamespace},
		{name: "the key's audience", key: forBilling, scope: "audience=billing", wantStatus: 200, wantCode: Valid},
		{name: "the key's audience and namespace", key: forBilling, scope: "audience=reports&audience=billing&namespace=tenant-a", wantStatus: 200, wantCode: Valid},
		{name: "the key's audience, another namespace", key: forBilling, scope: "audience=billing&namespace=tenant-b", wantStatus: 401, wantCode: WrongNamespace},
		{name: "a key for another audience", key: forBilling, scope: "audience=reports", wantStatus: 401, wantCode: WrongAudience},
		{name: "a key with audiences where the gateway names none", key: forBilling, wantStatus: 401, wantCode: WrongAudience},
		{name: "a key without audiences where the gateway names one", key: plain, scope: "audience=billing", wantStatus: 401, wantCode: WrongAudience},
		{name: "a client's query below /v1/auth does not scope", key: plain, call: call{target: "/v1/auth/invoices?namespace=tenant-a"}, scope: "-", wantStatus: 400, wantCode: Unscoped},
		{name: "the gateway's Accept header below /v1/auth scopes", key: plain,
			call: call{target: "/v1/auth/invoices", headers: map[string]string{AcceptNamespaceHeader: "tenant-a"}}, scope: "-", wantStatus: 200, wantCode: Valid},
		{name: "an Accept header on /v1/auth (the client's) does not scope", key: plain,
			call: call{headers: map[string]string{AcceptNamespaceHeader: "tenant-a"}}, scope: "-", wantStatus: 400, wantCode: Unscoped},
		{name: "a client's Accept header does not widen the gateway's namespace", key: plain,
			call: call{headers: map[string]string{AcceptNamespaceHeader: "tenant-a"}}, scope: "namespace=tenant-b", wantStatus: 401, wantCode: WrongNamespace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "127.0.0.1/32", "::1/128")
			f.ix.SetRole(&keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reporter"},
				Spec: keysv1.ApiKeyRoleSpec{Permissions: perms("reports:export")}})
			tok := mint(t)
			if tc.key != nil {
				k := tc.key(tok)
				k.Namespace, k.Name = ns, "billing"
				f.ix.SetKey(k)
			}
			sent := tok
			if tc.present != nil {
				sent = tc.present(tok)
			}
			c := tc.call
			if c.peer == "" {
				c.peer = "198.51.100.7:40000"
			}
			if c.target == "" {
				c.target = "/v1/auth"
			}
			switch {
			case tc.scope == "":
				c.target = withQuery(c.target, "namespace="+ns)
			case tc.scope != "-":
				c.target = withQuery(c.target, tc.scope)
			}
			headers := map[string]string{"Authorization": "Bearer " + sent}
			if c.headers != nil {
				headers = map[string]string{}
				for k, v := range c.headers {
					if v == "%s" {
						v = sent
					}
					headers[k] = v
				}
				if _, ok := c.headers["X-API-Key"]; !ok && len(c.headers) > 0 {
					headers["Authorization"] = "Bearer " + sent
				}
			}
			for range tc.warmup {
				f.auth(c.peer, c.target, headers)
			}
			w := f.auth(c.peer, c.target, headers)
			if w.Code != tc.wantStatus || w.Header().Get(CodeHeader) != tc.wantCode.String() {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Header().Get(CodeHeader), tc.wantStatus, tc.wantCode)
			}
			checkAnswerHeaders(t, w.Code, w.Header(), ns)
		})
	}
}

func checkAnswerHeaders(t *testing.T, status int, h http.Header, ns string) {
	t.Helper()
	switch status {
	case http.StatusOK:
		if h.Get(NamespaceHeader) != ns || h.Get(NameHeader) != "billing" {
			t.Errorf("identity headers: %q/%q", h.Get(NamespaceHeader), h.Get(NameHeader))
		}
	case http.StatusTooManyRequests:
		if h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if status != http.StatusOK && h.Get(NameHeader) != "" {
		t.Error("identity headers on a refusal")
	}
}

func withQuery(target, q string) string {
	if strings.Contains(target, "?") {
		return target + "&" + q
	}
	return target + "?" + q
}

func plain(tok string) *keysv1.ApiKey { return apiKey("", "", tok) }

func with(m func(*keysv1.ApiKey)) func(string) *keysv1.ApiKey {
	return func(tok string) *keysv1.ApiKey { return apiKey("", "", tok, m) }
}

var (
	allowTen   = with(func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("10.0.0.0/8", "192.0.2.200") })
	allowV6    = with(func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("2001:db8::/32") })
	forBilling = with(func(k *keysv1.ApiKey) { k.Spec.Audiences = []keysv1.Audience{"billing"} })
	withRole   = with(func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "reporter"} })
	limited    = with(func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 2}
	})
)

func withPerms(ps ...string) func(string) *keysv1.ApiKey {
	return with(func(k *keysv1.ApiKey) { k.Spec.Permissions = perms(ps...) })
}

// rotated is a key whose current token is another one and whose presented
// token was rotated out, verifying until now+grace.
func rotated(grace time.Duration) func(string) *keysv1.ApiKey {
	return func(tok string) *keysv1.ApiKey {
		current, err := token.Mint("")
		if err != nil {
			panic(err)
		}
		k := apiKey("", "", current)
		k.Status.PreviousHashes = []keysv1.PreviousHash{{Hash: token.Hash(tok), ValidUntil: metav1.Time{Time: t0.Add(grace)}}}
		return k
	}
}

func previous(tok string) string { return tok }

// flipLast changes the last checksum digit: a mistyped key.
func flipLast(tok string) string {
	b := []byte(tok)
	if b[len(b)-1] == 'a' {
		b[len(b)-1] = 'b'
	} else {
		b[len(b)-1] = 'a'
	}
	return string(b)
}
