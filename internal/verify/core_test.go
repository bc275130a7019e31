package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

func TestIndexFollowsChanges(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	tok := mint(t)
	id := types.NamespacedName{Namespace: "ns", Name: "k"}
	verify := func(p ...string) Code { return v.Verify(&Request{AnyNamespace: true, Token: tok, Permissions: p}).Code }

	f.ix.SetKey(apiKey("ns", "k", tok, func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "r"} }))
	if got := verify(); got != Disabled {
		t.Fatalf("role missing: %s", got)
	}
	f.ix.SetRole(&keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r"}, Spec: keysv1.ApiKeyRoleSpec{Permissions: perms("a:read")}})
	if got := verify("a:read"); got != Valid {
		t.Fatalf("role arrived: %s", got)
	}
	f.ix.SetRole(&keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r"}, Spec: keysv1.ApiKeyRoleSpec{Permissions: perms("b:read")}})
	if got := verify("a:read"); got != MissingPermission {
		t.Fatalf("role changed: %s", got)
	}
	f.ix.DeleteRole(types.NamespacedName{Namespace: "ns", Name: "r"})
	if got := verify(); got != Disabled {
		t.Fatalf("role deleted: %s", got)
	}

	// Rotation without grace: the new token verifies, the old does not.
	next := mint(t)
	f.ix.SetKey(apiKey("ns", "k", next))
	if got := verify(); got != NotFound {
		t.Fatalf("rotated out: %s", got)
	}
	if got := v.Verify(&Request{AnyNamespace: true, Token: next}).Code; got != Valid {
		t.Fatalf("rotated in: %s", got)
	}
	f.ix.DeleteKey(id)
	if got := v.Verify(&Request{AnyNamespace: true, Token: next}).Code; got != NotFound {
		t.Fatalf("deleted: %s", got)
	}
	if f.ix.Len() != 0 {
		t.Fatalf("index keeps %d records after delete", f.ix.Len())
	}
}

// TestOneTokenOneKey: a token two keys claim resolves to neither (issue
// 11: a tenant must not borrow another tenant's token); once one claimant
// is left it resolves to that one.
func TestOneTokenOneKey(t *testing.T) {
	f := newFixture(t)
	tok := mint(t)
	f.ix.SetKey(apiKey("tenant-a", "owner", tok))
	f.ix.SetKey(apiKey("tenant-b", "copy", tok))
	f.ix.SetKey(apiKey("tenant-b", "copy", tok, func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("*") })) // an update keeps it contested
	for _, ns := range []string{"tenant-a", "tenant-b"} {
		if got := f.srv.Verifier().Verify(&Request{Namespaces: []string{ns}, Token: tok}); got.Code != NotFound || got.Key != nil {
			t.Fatalf("a token two keys hold verified in %s: %s", ns, got.Code)
		}
	}
	f.ix.SetKey(apiKey("tenant-b", "copy", mint(t))) // the controller took it off the copy
	if got := f.srv.Verifier().Verify(&Request{Namespaces: []string{"tenant-a"}, Token: tok}); got.Code != Valid || got.Key.Name != "owner" {
		t.Fatalf("after the copy left: %s", got.Code)
	}
}

func TestSharedTokenSurvivesOtherKeysDeletion(t *testing.T) {
	f := newFixture(t)
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "a", tok))
	f.ix.SetKey(apiKey("ns", "b", tok))
	f.ix.DeleteKey(types.NamespacedName{Namespace: "ns", Name: "a"})
	if got := f.srv.Verifier().Verify(&Request{AnyNamespace: true, Token: tok}).Code; got != Valid {
		t.Fatalf("got %s", got)
	}
}

func TestBruteForceGuard(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok))
	attacker := netip.MustParseAddr("192.0.2.66")
	var limited int
	for range 30 {
		if v.Verify(&Request{AnyNamespace: true, Token: mint(t), IP: attacker}).Code == RateLimited {
			limited++
		}
	}
	if limited != 10 { // burst 20 of 30, no time passes
		t.Fatalf("%d of 30 failures limited, want 10", limited)
	}
	if got := v.Verify(&Request{AnyNamespace: true, Token: tok, IP: attacker}); got.Code != Valid {
		t.Fatalf("a valid key from a guarded address: %s", got.Code)
	}
	if got := v.Verify(&Request{AnyNamespace: true, Token: mint(t), IP: netip.MustParseAddr("192.0.2.67")}); got.Code != NotFound {
		t.Fatalf("another address: %s", got.Code)
	}
	// The same /64 is one client.
	a6, b6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	for range 20 {
		v.Verify(&Request{AnyNamespace: true, Token: mint(t), IP: a6})
	}
	if got := v.Verify(&Request{AnyNamespace: true, Token: mint(t), IP: b6}); got.Code != RateLimited || got.RetryAfter <= 0 {
		t.Fatalf("same /64: %s after %s", got.Code, got.RetryAfter)
	}
	f.clock.SetTime(t0.Add(time.Minute))
	if got := v.Verify(&Request{AnyNamespace: true, Token: mint(t), IP: b6}); got.Code != NotFound {
		t.Fatalf("after the budget refilled: %s", got.Code)
	}
}

func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t, "127.0.0.1")
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok, func(k *keysv1.ApiKey) {
		k.Spec.Permissions = perms("invoices:read")
		k.Spec.AllowedIPs = ips("10.0.0.0/8")
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 10, Burst: 5}
	}))
	peer := "127.0.0.1:999" // a trusted proxy: its body ip is believed
	post := func(body string) (int, map[string]any) {
		r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(body))
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	status, out := post(`{"key":"` + tok + `","namespaces":["ns"],"permissions":["invoices:read"],"ip":"10.0.0.1"}`)
	if status != 200 || out["valid"] != true || out["code"] != "Valid" || out["namespace"] != "ns" || out["name"] != "k" ||
		out["keyPrefix"] != token.DisplayPrefix(tok) || out["expiresAt"] != "2030-01-03T03:04:05Z" {
		t.Fatalf("valid: %d %v", status, out)
	}
	if rl := out["ratelimit"].(map[string]any); rl["limit"] != 5.0 || rl["remaining"] != 4.0 || rl["reset"] != 1.0 {
		t.Fatalf("ratelimit: %v", rl)
	}
	status, out = post(`{"key":"` + tok + `","namespaces":["ns"],"ip":"192.0.2.1"}`)
	if status != 200 || out["valid"] != false || out["code"] != "IPNotAllowed" || out["name"] != nil {
		t.Fatalf("wrong IP: %d %v", status, out)
	}
	status, out = post(`{"key":"` + tok + `","namespaces":["other"],"permissions":["invoices:read"],"ip":"10.0.0.1"}`)
	if status != 200 || out["valid"] != false || out["code"] != "WrongNamespace" || out["name"] != nil || out["namespace"] != nil {
		t.Fatalf("another namespace: %d %v", status, out)
	}
	status, out = post(`{"key":"` + tok + `","audiences":["billing"],"ip":"10.0.0.1"}`)
	if status != 200 || out["valid"] != false || out["code"] != "WrongAudience" {
		t.Fatalf("an audience the key lacks: %d %v", status, out)
	}
	status, out = post(`{"key":"` + tok + `","permissions":["invoices:read"],"ip":"10.0.0.1"}`)
	if status != 400 || !strings.Contains(fmt.Sprint(out["error"]), "--verify-any-namespace") {
		t.Fatalf("no namespace, no audience: %d %v", status, out)
	}
	if status, _ = post(`{"key":"x","namespaces":[` + strings.Repeat(`"a",`, 40) + `"a"]}`); status != 400 {
		t.Fatalf("too many namespaces: %d", status)
	}
	if status, _ = post(`{"key":"x","audiences":[""]}`); status != 400 {
		t.Fatalf("empty audience: %d", status)
	}
	// A peer that is not a trusted proxy may not name the address its
	// key is judged by (issue 11).
	peer = "192.0.2.1:999"
	if status, out = post(`{"key":"` + tok + `","namespaces":["ns"],"ip":"10.0.0.1"}`); status != 400 || !strings.Contains(fmt.Sprint(out["error"]), "--trusted-proxies") {
		t.Fatalf("body ip from an untrusted peer: %d %v", status, out)
	}
	if status, out = post(`{"key":"` + tok + `","namespaces":["ns"]}`); status != 200 || out["code"] != "IPNotAllowed" {
		t.Fatalf("judged by its own address: %d %v", status, out)
	}
	if status, _ = post(`{"key":`); status != 400 {
		t.Fatalf("bad JSON: %d", status)
	}
	if status, _ = post(`{"key":"` + strings.Repeat("a", 70<<10) + `"}`); status != 413 {
		t.Fatalf("huge body: %d", status)
	}
	if status, _ = post(`{"key":"x","permissions":[` + strings.Repeat(`"a",`, 40) + `"a"]}`); status != 400 {
		t.Fatalf("too many permissions: %d", status)
	}
}

// TestPlaintextNeverLeaks sends every kind of request with a real token
// and looks for the token, and its hash, in every response, every log
// line and every metric.
func TestPlaintextNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 10})
	f := newFixtureWithLog(t, log, "127.0.0.1")
	tok := mint(t)
	f.ix.SetKey(apiKey("ns", "k", tok, func(k *keysv1.ApiKey) {
		k.Spec.Permissions = perms("a:read")
		k.Spec.AllowedIPs = ips("10.0.0.0/8")
	}))
	disabled := mint(t)
	f.ix.SetKey(apiKey("ns", "off", disabled, func(k *keysv1.ApiKey) { k.Spec.Enabled = ptr.To(false) }))
	secrets := []string{tok, disabled, flipLast(tok), token.Hash(tok), strings.TrimPrefix(token.Hash(tok), token.HashPrefix)}

	var seen bytes.Buffer
	record := func(w *httptest.ResponseRecorder) {
		_ = w.Header().Write(&seen)
		seen.Write(w.Body.Bytes())
	}
	for _, k := range []string{tok, disabled, flipLast(tok), tok + "x"} {
		for _, peer := range []string{"10.0.0.1:1", "192.0.2.1:1"} {
			record(f.auth(peer, "/v1/auth?permission=a:read&namespace=ns", map[string]string{"Authorization": "Bearer " + k}))
			record(f.auth(peer, "/v1/auth?permission=b:write&namespace=ns", map[string]string{"X-API-Key": k}))
			record(f.auth(peer, "/v1/auth?namespace=other", map[string]string{"X-API-Key": k}))
			record(f.auth(peer, "/v1/auth?audience=other", map[string]string{"X-API-Key": k}))
			record(f.auth(peer, "/v1/auth", map[string]string{"X-API-Key": k}))
			for _, body := range []string{`{"key":"` + k + `","namespaces":["ns"],"ip":"10.0.0.1"}`, `{"key":"` + k + `","namespaces":["other"]}`,
				`{"key":"` + k + `","audiences":["x"]}`, `{"key":"` + k + `"}`, `{"key":"` + k + `"`, `{"key":` + k + `}`} {
				r := httptest.NewRequest(http.MethodPost, "/v1/keys/verify", strings.NewReader(body))
				r.RemoteAddr = peer
				w := httptest.NewRecorder()
				f.srv.Handler().ServeHTTP(w, r)
				record(w)
			}
		}
	}
	metricsText := gatherText(t, f.reg)
	if !bytes.Contains(metricsText, []byte("apikey_verifications_total")) || !bytes.Contains(metricsText, []byte(`apikey_expiration_timestamp_seconds{name="k",namespace="ns"}`)) {
		t.Fatalf("metrics missing:\n%s", metricsText)
	}
	for _, leak := range testkit.Leaks(secrets, map[string]string{"responses": seen.String(), "logs": logs.String(), "metrics": string(metricsText)}) {
		t.Errorf("a token or its hash leaked: %s", leak)
	}
}

func TestKeysByStateMetric(t *testing.T) {
	f := newFixture(t)
	f.ix.SetKey(apiKey("ns", "a", mint(t)))
	f.ix.SetKey(apiKey("ns", "b", mint(t), func(k *keysv1.ApiKey) { k.Spec.Enabled = ptr.To(false) }))
	f.ix.SetKey(apiKey("ns", "c", mint(t), func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: t0.Add(-time.Hour)} }))
	f.ix.SetKey(apiKey("ns", "d", mint(t), func(k *keysv1.ApiKey) { k.Status.Hash = "" }))
	f.ix.SetKey(apiKey("ns", "e", mint(t), func(k *keysv1.ApiKey) { k.Spec.ConsumerRef = &keysv1.ConsumerReference{Name: "gone"} }))
	want := `apikey_keys{state="active"} 1
apikey_keys{state="consumer_missing"} 1
apikey_keys{state="disabled"} 1
apikey_keys{state="expired"} 1
apikey_keys{state="no_token"} 1
apikey_keys{state="role_missing"} 0
`
	if got := gatherText(t, f.reg); !bytes.Contains(got, []byte(want)) {
		t.Fatalf("want\n%s\nin\n%s", want, got)
	}
}

// FuzzVerify: no input panics the core, and a token that fails
// token.Validate is Malformed without reaching the index.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	tok := mint(f)
	fx.ix.SetKey(apiKey("ns", "k", tok, func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("a:*") }))
	f.Add(tok, "a:read", "10.0.0.1")
	f.Add(flipLast(tok), "", "::1")
	f.Add("", "*", "")
	f.Fuzz(func(t *testing.T, key, perm, ip string) {
		addr, _ := netip.ParseAddr(ip)
		res := fx.srv.Verifier().Verify(&Request{AnyNamespace: true, Token: key, Permissions: []string{perm}, IP: addr})
		if token.Validate(key) != nil && res.Code != Malformed && res.Code != RateLimited {
			t.Fatalf("malformed key got %s", res.Code)
		}
		if res.Code == Valid && key != tok {
			t.Fatal("a key other than the issued one verified")
		}
	})
}

// FuzzAuthHeaders: forward-auth never panics on odd headers and never
// echoes the presented key.
func FuzzAuthHeaders(f *testing.F) {
	fx := newFixture(f, "127.0.0.1")
	tok := mint(f)
	fx.ix.SetKey(apiKey("ns", "k", tok))
	f.Add("Bearer "+tok, "", "a:read", "127.0.0.1:1", "1.2.3.4")
	f.Add("bearer  "+tok+" ", tok, "", "[::1]:1", "")
	f.Add("Basic Zm9vOmJhcg==", "", ",,,", "192.0.2.1:1", "x, y")
	f.Fuzz(func(t *testing.T, authz, apiKeyHdr, perm, peer, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/auth?namespace=ns", nil)
		r.RemoteAddr = peer
		r.Header.Set("Authorization", authz)
		r.Header.Set(APIKeyHeader, apiKeyHdr)
		r.Header.Set(PermissionHeader, perm)
		r.Header.Set("X-Forwarded-For", xff)
		w := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(w, r)
		var out bytes.Buffer
		_ = w.Header().Write(&out)
		out.Write(w.Body.Bytes())
		for _, k := range []string{presentedKey(r.Header)} {
			if len(k) >= token.MinLen && bytes.Contains(out.Bytes(), []byte(k)) {
				t.Fatal("the presented key was echoed")
			}
		}
	})
}

// A key that names no audiences carries its role's; its own win when it
// names some; the role's follow its changes (issue 11, audiences on
// roles).
func TestRoleAudiences(t *testing.T) {
	f := newFixture(t)
	v := f.srv.Verifier()
	inherits, own := mint(t), mint(t)
	withRole := func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "billing"} }
	f.ix.SetKey(apiKey("ns", "inherits", inherits, withRole))
	f.ix.SetKey(apiKey("ns", "own", own, withRole, func(k *keysv1.ApiKey) { k.Spec.Audiences = []keysv1.Audience{"reports"} }))
	role := func(auds ...keysv1.Audience) {
		f.ix.SetRole(&keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "billing"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: perms("invoices:read"), Audiences: auds}})
	}
	verify := func(tok string, req Request) Code {
		req.Token = tok
		return v.Verify(&req).Code
	}
	billing := Request{Audiences: []string{"billing"}, Permissions: []string{"invoices:read"}}
	reports := Request{Audiences: []string{"reports"}}
	nsOnly := Request{Namespaces: []string{"ns"}}

	role("billing")
	for _, c := range []struct {
		name string
		tok  string
		req  Request
		want Code
	}{
		{"the role's audience opens its gateway", inherits, billing, Valid},
		{"another audience's gateway is closed", inherits, reports, WrongAudience},
		{"a namespace-only gateway is closed to a key with audiences", inherits, nsOnly, WrongAudience},
		{"the key's own audiences win over the role's", own, billing, WrongAudience},
		{"the key's own audience opens its gateway", own, reports, Valid},
	} {
		if got := verify(c.tok, c.req); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	role("billing", "reports")
	if got := verify(inherits, reports); got != Valid {
		t.Errorf("the role gained reports: %s, want Valid", got)
	}
	role()
	if got := verify(inherits, nsOnly); got != Valid {
		t.Errorf("the role lost its audiences, a namespace-only gateway: %s, want Valid", got)
	}
	if got := verify(inherits, billing); got != WrongAudience {
		t.Errorf("the role lost its audiences, an audience's gateway: %s, want WrongAudience", got)
	}
}
