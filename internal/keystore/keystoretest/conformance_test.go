package keystoretest

import (
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

// TestConformance holds the in-memory store to the contract the
// Kubernetes-backed store is held to (internal/keystore).
func TestConformance(t *testing.T) {
	RunConformance(t, func(t *testing.T, authz *access.Authorizer) Fixture {
		s := New(authz, "tenant-a", "tenant-b")
		return Fixture{
			Store: s, A: "tenant-a", B: "tenant-b", Missing: "no-such-tenant",
			AddRole: func(_ *testing.T, ns, name string, perms ...string) { s.AddRole(ns, name, perms...) },
		}
	})
}
