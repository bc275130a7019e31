package extauthz

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// FuzzReadRoute: whatever a route's context extensions and a client's
// headers hold, reading them never panics, and what is accepted stays
// within forward-auth's bounds.
func FuzzReadRoute(f *testing.F) {
	f.Add("invoices:read", "billing", "", "reports:*", "Bearer ak_x")
	f.Add(",,,", " , ", "a,b,,c", "", "bearer")
	f.Fuzz(func(t *testing.T, perm, ns, aud, permHeader, auth string) {
		var req verify.Request
		r := &authv3.AttributeContext_HttpRequest{Headers: map[string]string{permissionHeader: permHeader, "authorization": auth}}
		msg := readRoute(&req, map[string]string{PermissionExtension: perm, NamespaceExtension: ns, AudienceExtension: aud}, r)
		if msg == "" && (len(req.Permissions) > 32 || len(req.Namespaces) > 32 || len(req.Audiences) > 32) {
			t.Fatalf("accepted %d permissions, %d namespaces, %d audiences", len(req.Permissions), len(req.Namespaces), len(req.Audiences))
		}
		_ = verify.KeyFromHeaders([]string{"authorization", "x-api-key"}, func(n string) string { return header(r, n) })
	})
}
