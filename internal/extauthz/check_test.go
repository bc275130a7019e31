package extauthz

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

func TestAllowedAnswerCarriesIdentityAndRemovesTheKey(t *testing.T) {
	f := newFixture(t)
	tok := f.key(t, "billing", "gateway", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read", "reports:*") })
	for _, c := range []struct {
		name    string
		headers map[string]string
		removed []string
		raw     bool
	}{
		{"Authorization: Bearer", bearer(tok), []string{"authorization"}, false},
		{"bearer in any case", map[string]string{"authorization": "BEARER " + tok}, []string{"authorization"}, false},
		{"X-API-Key", map[string]string{"x-api-key": tok}, []string{"x-api-key"}, false},
		{"both headers are removed", map[string]string{"authorization": "Bearer " + tok, "x-api-key": "other"}, []string{"authorization", "x-api-key"}, false},
		{"header_map (encode_raw_headers)", bearer(tok), []string{"authorization"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			headers := map[string]string{"x-apikey-name": "spoofed", "x-apikey-namespace": "spoofed", "x-apikey-permissions": "*"}
			for k, v := range c.headers {
				headers[k] = v
			}
			r := f.check(t, check{headers: headers, source: "192.0.2.1", extensions: map[string]string{"permission": "invoices:read"}, raw: c.raw})
			if got := deniedStatus(t, r); got != 200 {
				t.Fatalf("status %d (%s), want 200", got, code(r))
			}
			ok := r.GetOkResponse()
			want := map[string]string{"x-apikey-namespace": "billing", "x-apikey-name": "gateway", "x-apikey-permissions": "invoices:read,reports:*"}
			if got := headerMap(ok.GetHeaders()); !mapsEqual(got, want) {
				t.Errorf("upstream headers %v, want %v", got, want)
			}
			for _, h := range ok.GetHeaders() {
				// The client's own identity headers are overwritten, never
				// appended to.
				if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
					t.Errorf("header %s is not set with OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey())
				}
			}
			if got := ok.GetHeadersToRemove(); !slices.Equal(got, c.removed) {
				t.Errorf("headers_to_remove %v, want %v", got, c.removed)
			}
			if len(ok.GetResponseHeadersToAdd()) != 0 {
				t.Errorf("a key without a rate limit got response headers %v", headerMap(ok.GetResponseHeadersToAdd()))
			}
			assertNoToken(t, r, tok)
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// assertNoToken fails when the answer holds the token anywhere.
func assertNoToken(t *testing.T, r any, tok string) {
	t.Helper()
	b, err := protojson.Marshal(r.(proto.Message))
	if err != nil {
		t.Fatal(err)
	}
	if leaks := testkit.Leaks([]string{tok}, map[string]string{"answer": string(b)}); len(leaks) > 0 {
		t.Fatalf("the answer holds the token: %v", leaks)
	}
}

func TestEveryVerdict(t *testing.T) {
	f := newFixture(t)
	valid := f.key(t, "ns", "valid", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read") })
	disabled := f.key(t, "ns", "disabled", func(k *keysv1.ApiKey) { k.Spec.Enabled = new(false) })
	expired := f.key(t, "ns", "expired", func(k *keysv1.ApiKey) { k.Spec.ExpiresAt = &metav1.Time{Time: t0.Add(-time.Second)} })
	fenced := f.key(t, "ns", "fenced", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("192.0.2.0/24") })
	limited := f.key(t, "ns", "limited", func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 1}
	})
	unknown := f.key(t, "ns", "unknown")
	f.ix.DeleteKey(keyID("ns", "unknown"))
	// Spend the limited key's only token.
	if got := code(f.check(t, check{headers: bearer(limited), source: "192.0.2.1"})); got != "Valid" {
		t.Fatalf("limited key's first request: %s", got)
	}
	for _, c := range []struct {
		name   string
		check  check
		status int
		code   string
		grpc   codes.Code
	}{
		{"valid", check{headers: bearer(valid), source: "192.0.2.1"}, 200, "Valid", codes.OK},
		{"missing key", check{headers: map[string]string{}, source: "192.0.2.1"}, 401, "Malformed", codes.Unauthenticated},
		{"Basic is not a key", check{headers: map[string]string{"authorization": "Basic " + valid}, source: "192.0.2.1"}, 401, "Malformed", codes.Unauthenticated},
		{"malformed key", check{headers: bearer(valid[:len(valid)-1] + "x"), source: "192.0.2.1"}, 401, "Malformed", codes.Unauthenticated},
		{"unknown key", check{headers: bearer(unknown), source: "192.0.2.1"}, 401, "NotFound", codes.Unauthenticated},
		{"disabled", check{headers: bearer(disabled), source: "192.0.2.1"}, 401, "Disabled", codes.Unauthenticated},
		{"expired", check{headers: bearer(expired), source: "192.0.2.1"}, 401, "Expired", codes.Unauthenticated},
		{"outside allowedIPs", check{headers: bearer(fenced), source: "198.51.100.1"}, 403, "IPNotAllowed", codes.PermissionDenied},
		{"missing permission (extension)", check{headers: bearer(valid), source: "192.0.2.1", extensions: map[string]string{"permission": "invoices:write"}}, 403, "MissingPermission", codes.PermissionDenied},
		{"missing permission (header)", check{headers: map[string]string{"authorization": "Bearer " + valid, "x-required-permission": "invoices:write"}, source: "192.0.2.1"}, 403, "MissingPermission", codes.PermissionDenied},
		{"a header cannot lift the route's permission", check{headers: map[string]string{"authorization": "Bearer " + valid, "x-required-permission": "invoices:read"}, source: "192.0.2.1", extensions: map[string]string{"permission": "admin"}}, 403, "MissingPermission", codes.PermissionDenied},
		{"key's rate limit", check{headers: bearer(limited), source: "192.0.2.1"}, 429, "RateLimited", codes.ResourceExhausted},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, answers := f.resultCount(t, c.code), f.answerCount(t, c.status)
			r := f.check(t, c.check)
			if got := deniedStatus(t, r); got != c.status || code(r) != c.code || codes.Code(r.GetStatus().GetCode()) != c.grpc {
				t.Fatalf("got %d %s %s, want %d %s %s", got, code(r), codes.Code(r.GetStatus().GetCode()), c.status, c.code, c.grpc)
			}
			if got := f.resultCount(t, c.code); got != before+1 {
				t.Errorf("apikey_verifications_total{result=%q} went from %v to %v, want +1", c.code, before, got)
			}
			if got := f.answerCount(t, c.status); got != answers+1 {
				t.Errorf("apikey_verify_responses_total{endpoint=\"ext_authz\",code=\"%d\"} went from %v to %v, want +1", c.status, answers, got)
			}
			if c.status == 200 {
				return
			}
			d := r.GetDeniedResponse()
			h := headerMap(d.GetHeaders())
			if d.GetBody() != c.code+"\n" {
				t.Errorf("body %q, want %q", d.GetBody(), c.code+"\n")
			}
			if h["cache-control"] != "no-store" {
				t.Errorf("cache-control %q, want no-store", h["cache-control"])
			}
			if _, ok := h["www-authenticate"]; ok != (c.status == 401) {
				t.Errorf("www-authenticate present %v with status %d", ok, c.status)
			}
			if c.status == 429 && (h["retry-after"] != "1" || h["ratelimit-policy"] != `"rate";q=1;w=1` || h["ratelimit"] != `"rate";r=0;t=1`) {
				t.Errorf("rate-limit headers %v", h)
			}
		})
	}
}

func TestRateLimitHeadersReachTheClient(t *testing.T) {
	f := newFixture(t)
	tok := f.key(t, "ns", "limited", func(k *keysv1.ApiKey) {
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 10, Burst: 20}
	})
	r := f.check(t, check{headers: bearer(tok), source: "192.0.2.1"})
	// The IETF draft's fields (verify.RateLimitHeaders): 10/s with a burst
	// of 20 is 20 per 2 s, 19 left, a token back within a second.
	want := map[string]string{"ratelimit-policy": `"rate";q=20;w=2`, "ratelimit": `"rate";r=19;t=1`}
	if got := headerMap(r.GetOkResponse().GetResponseHeadersToAdd()); !mapsEqual(got, want) {
		t.Fatalf("response headers %v, want %v", got, want)
	}
}

func TestSourceAddresses(t *testing.T) {
	f := newFixture(t)
	v4 := f.key(t, "ns", "v4", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("192.0.2.0/24") })
	v6 := f.key(t, "ns", "v6", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("2001:db8::/32") })
	for _, c := range []struct {
		tok, source, want string
	}{
		{v4, "192.0.2.7", "Valid"},
		{v4, "::ffff:192.0.2.7", "Valid"}, // IPv4-mapped, as a dual-stack listener reports it
		{v4, "198.51.100.7", "IPNotAllowed"},
		{v4, "", "IPNotAllowed"}, // no address: a fenced key is refused
		{v4, "not-an-ip", "IPNotAllowed"},
		{v6, "2001:db8::1", "Valid"},
		{v6, "fe80::1%eth0", "IPNotAllowed"},
		{v6, "2001:db9::1", "IPNotAllowed"},
		{v6, "192.0.2.7", "IPNotAllowed"},
	} {
		if got := code(f.check(t, check{headers: bearer(c.tok), source: c.source})); got != c.want {
			t.Errorf("source %q: %s, want %s", c.source, got, c.want)
		}
	}
}

// TestUntrustedPeerNamesNoClient: a caller that is not in
// --trusted-proxies cannot claim a client address to pass allowedIPs.
func TestUntrustedPeerNamesNoClient(t *testing.T) {
	f := newFixture(t, func(s *setup) { s.trusted = []string{"10.0.0.1"} })
	fenced := f.key(t, "ns", "fenced", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = ips("192.0.2.0/24", "127.0.0.0/8") })
	open := f.key(t, "ns", "open")
	if got := code(f.check(t, check{headers: bearer(fenced), source: "192.0.2.7"})); got != "IPNotAllowed" {
		t.Errorf("fenced key from an untrusted peer claiming an allowed source: %s, want IPNotAllowed", got)
	}
	if got := code(f.check(t, check{headers: bearer(open), source: "192.0.2.7"})); got != "Valid" {
		t.Errorf("key without allowedIPs: %s, want Valid", got)
	}
}

// TestBruteForceGuard: unknown keys are charged to the client's address
// (source.address from a trusted proxy, IPv6 by /64); over budget they get
// 429, while a valid key from the same address still passes and other
// addresses are not affected.
func TestBruteForceGuard(t *testing.T) {
	for _, c := range []struct{ name, source, sibling, other string }{
		{"IPv4", "203.0.113.9", "203.0.113.9", "203.0.113.10"},
		{"IPv6 by /64", "2001:db8:1:2::9", "2001:db8:1:2::ffff", "2001:db8:1:3::9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			valid := f.key(t, "ns", "valid")
			gone := f.key(t, "ns", "gone")
			f.ix.DeleteKey(keyID("ns", "gone"))
			for i := range 20 { // the default burst
				if got := code(f.check(t, check{headers: bearer(gone), source: c.source})); got != "NotFound" {
					t.Fatalf("failure %d: %s, want NotFound", i+1, got)
				}
			}
			r := f.check(t, check{headers: bearer(gone), source: c.sibling})
			if deniedStatus(t, r) != 429 || code(r) != "RateLimited" || headerMap(r.GetDeniedResponse().GetHeaders())["retry-after"] == "" {
				t.Fatalf("over budget: %d %s %v", deniedStatus(t, r), code(r), headerMap(r.GetDeniedResponse().GetHeaders()))
			}
			if got := code(f.check(t, check{headers: bearer(valid), source: c.source})); got != "Valid" {
				t.Errorf("valid key from a throttled address: %s", got)
			}
			if got := code(f.check(t, check{headers: bearer(gone), source: c.other})); got != "NotFound" {
				t.Errorf("another address: %s, want NotFound", got)
			}
		})
	}
}

func TestBadRouteConfiguration(t *testing.T) {
	f := newFixture(t)
	tok := f.key(t, "ns", "k")
	many := strings.Repeat("p,", 33)
	for name, ext := range map[string]string{"33 permissions": many, "a permission of 129 characters": strings.Repeat("p", 129)} {
		r := f.check(t, check{headers: bearer(tok), source: "192.0.2.1", extensions: map[string]string{"permission": ext}})
		if deniedStatus(t, r) != 400 || codes.Code(r.GetStatus().GetCode()) != codes.InvalidArgument {
			t.Errorf("%s: %d %s, want 400 InvalidArgument", name, deniedStatus(t, r), codes.Code(r.GetStatus().GetCode()))
		}
	}
}

func TestDeniedBodyShapes(t *testing.T) {
	for _, c := range []struct{ shape, body, contentType string }{
		{BodyText, "NotFound\n", "text/plain; charset=utf-8"},
		{BodyJSON, `{"code":"NotFound","status":401}` + "\n", "application/json"},
		{BodyEmpty, "", ""},
	} {
		t.Run(c.shape, func(t *testing.T) {
			f := newFixture(t, func(s *setup) { s.body = c.shape })
			tok := f.key(t, "ns", "gone")
			f.ix.DeleteKey(keyID("ns", "gone"))
			d := f.check(t, check{headers: bearer(tok), source: "192.0.2.1"}).GetDeniedResponse()
			if d.GetBody() != c.body || headerMap(d.GetHeaders())["content-type"] != c.contentType {
				t.Fatalf("body %q, content-type %q", d.GetBody(), headerMap(d.GetHeaders())["content-type"])
			}
			if c.shape == BodyJSON {
				var v map[string]any
				if err := json.Unmarshal([]byte(d.GetBody()), &v); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
			}
		})
	}
}

func TestConfiguredKeyHeaders(t *testing.T) {
	f := newFixture(t, func(s *setup) { s.headers = []string{"X-Token"} })
	tok := f.key(t, "ns", "k")
	r := f.check(t, check{headers: map[string]string{"x-token": tok, "authorization": "Bearer " + tok}, source: "192.0.2.1"})
	if code(r) != "Valid" || !slices.Equal(r.GetOkResponse().GetHeadersToRemove(), []string{"x-token"}) {
		t.Fatalf("%s, removes %v", code(r), r.GetOkResponse().GetHeadersToRemove())
	}
	if got := code(f.check(t, check{headers: bearer(tok), source: "192.0.2.1"})); got != "Malformed" {
		t.Errorf("Authorization is not a configured header, yet: %s", got)
	}
}

func TestHealthAndReflection(t *testing.T) {
	f := newFixture(t)
	hc := healthpb.NewHealthClient(f.conn)
	for _, svc := range []string{"", ServiceName} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health of %q: %v %v", svc, resp, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := listServices(t, f.conn); !slices.Contains(got, ServiceName) || !slices.Contains(got, "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %v", got)
	}
}

// TestNoTokenInLogsOrMetrics: the gRPC path writes no token to its log
// (at the highest verbosity) or the metrics, whatever the verdict.
func TestNoTokenInLogsOrMetrics(t *testing.T) {
	f := newFixture(t)
	logs := &testkit.SyncBuffer{}
	f.srv.log = funcr.New(func(prefix, args string) { fmt.Fprintln(logs, prefix, args) }, funcr.Options{Verbosity: 127})
	var toks []string
	valid := f.key(t, "ns", "valid", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("a") })
	gone := f.key(t, "ns", "gone")
	f.ix.DeleteKey(keyID("ns", "gone"))
	toks = append(toks, valid, gone)
	for _, c := range []check{
		{headers: bearer(valid), source: "192.0.2.1"},
		{headers: bearer(valid), source: "192.0.2.1", extensions: map[string]string{"permission": "b"}},
		{headers: map[string]string{"x-api-key": gone}, source: "192.0.2.1"},
		{headers: bearer(valid[:len(valid)-2]), source: "192.0.2.1"},
	} {
		assertNoToken(t, f.check(t, c), valid)
	}
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if leaks := testkit.Leaks(toks, map[string]string{"log": logs.String(), "metrics": fmt.Sprint(families)}); len(leaks) > 0 {
		t.Fatalf("tokens found in %v", leaks)
	}
}

// TestTenancy: the route's context extensions say whose keys it accepts;
// another namespace's key (even one granting "*") or a key made for
// another audience is refused, a route naming neither is refused unless
// the server runs with --verify-any-namespace, and a client's header
// cannot widen the scope.
func TestTenancy(t *testing.T) {
	f := newFixture(t)
	mine := f.key(t, "billing", "mine", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read") })
	theirs := f.key(t, "reports", "star", func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("*") })
	billingAPI := f.key(t, "billing", "for-billing-api", func(k *keysv1.ApiKey) {
		k.Spec.Audiences = []keysv1.Audience{"billing-api"}
	})
	billing := map[string]string{"namespace": "billing", "permission": "invoices:read"}
	for _, c := range []struct {
		name   string
		check  check
		status int
		code   string
	}{
		{"own namespace", check{headers: bearer(mine), extensions: billing}, 200, "Valid"},
		{"another namespace's * key", check{headers: bearer(theirs), extensions: billing}, 401, "WrongNamespace"},
		{"a client's accept header does not widen the scope",
			check{headers: map[string]string{"authorization": "Bearer " + theirs, "x-apikey-accept-namespace": "reports"}, extensions: billing}, 401, "WrongNamespace"},
		{"one of several namespaces", check{headers: bearer(theirs), extensions: map[string]string{"namespace": "billing, reports"}}, 200, "Valid"},
		{"the key's audience", check{headers: bearer(billingAPI), extensions: map[string]string{"audience": "billing-api"}}, 200, "Valid"},
		{"another audience", check{headers: bearer(billingAPI), extensions: map[string]string{"audience": "reports-api"}}, 401, "WrongAudience"},
		{"a key with audiences on a route naming only namespaces", check{headers: bearer(billingAPI), extensions: map[string]string{"namespace": "billing"}}, 401, "WrongAudience"},
		{"no scope", check{headers: bearer(mine), unscoped: true}, 400, "Unscoped"},
		{"33 namespaces", check{headers: bearer(mine), extensions: map[string]string{"namespace": strings.Repeat("n,", 33)}}, 400, "InvalidRoute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.check.source = "192.0.2.1"
			r := f.check(t, c.check)
			if got := deniedStatus(t, r); got != c.status || code(r) != c.code {
				t.Fatalf("got %d %s, want %d %s", got, code(r), c.status, c.code)
			}
			if c.status != 200 {
				assertNoIdentity(t, r)
			}
			if c.code == "Unscoped" && !strings.Contains(r.GetDeniedResponse().GetBody(), "--verify-any-namespace") {
				t.Errorf("the Unscoped answer does not say how to fix it: %q", r.GetDeniedResponse().GetBody())
			}
		})
	}
	t.Run("--verify-any-namespace", func(t *testing.T) {
		f := newFixture(t, func(s *setup) { s.anyNamespace = true })
		tok := f.key(t, "anywhere", "k")
		if got := code(f.check(t, check{headers: bearer(tok), source: "192.0.2.1", unscoped: true})); got != "Valid" {
			t.Fatalf("unscoped route with --verify-any-namespace: %s", got)
		}
	})
}

// assertNoIdentity fails when a refusal names whose key it was.
func assertNoIdentity(t *testing.T, r *authv3.CheckResponse) {
	t.Helper()
	for _, h := range r.GetDeniedResponse().GetHeaders() {
		if strings.HasPrefix(h.GetHeader().GetKey(), "x-apikey-") && h.GetHeader().GetKey() != "x-apikey-code" {
			t.Errorf("a refusal carries %s", h.GetHeader().GetKey())
		}
	}
}
