package keystoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// The conformance suite: one set of specs that every keystore.Store
// passes, as k8s.io/apiserver runs one storage suite against each of its
// stores. It runs against the in-memory store here (conformance_test.go)
// and against the Kubernetes-backed store on a real kube-apiserver
// (internal/keystore/conformance_test.go), so a dialect tested over the
// in-memory store meets the same rules in production.

// Fixture is one store under test, with two tenant namespaces that exist
// and one that does not.
type Fixture struct {
	Store keystore.Store
	// A and B exist; Missing does not.
	A, B, Missing string
	// AddRole creates an ApiKeyRole the store can see.
	AddRole func(t *testing.T, namespace, name string, permissions ...string)
}

// NewFixture returns a fresh store that authorises with authz, over
// namespaces no other fixture uses.
type NewFixture func(t *testing.T, authz *access.Authorizer) Fixture

// Scopes are the scopes the suite asks of API-key callers.
var Scopes = access.Scopes{Read: "tenant.apiKey:read", Write: "tenant.apiKey:write"}

// RBAC is the suite's Kubernetes authorisation: admin may do anything,
// viewer only get and list, everyone else nothing.
func RBAC(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	switch name, verb := a.GetUser().GetName(), a.GetVerb(); {
	case name == "admin", name == "viewer" && (verb == "get" || verb == "list"):
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC rule allows it", nil
}

func userCtx(name string) context.Context {
	return access.WithCaller(context.Background(), &access.Caller{User: &user.DefaultInfo{Name: name}})
}

func keyCtx(ns, name string, perms ...string) context.Context {
	return access.WithCaller(context.Background(), &access.Caller{
		User: &user.DefaultInfo{Name: "apikey:" + ns + "/" + name, Groups: []string{access.APIKeyGroup}},
		Key:  &access.KeyCaller{Namespace: ns, Name: name, Permissions: perms},
	})
}

// eventually retries f until it succeeds: the Kubernetes-backed store
// reads from an informer cache, which sees a write a moment after it.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var inv *keystore.InvalidError
	if !errors.As(err, &inv) {
		t.Errorf("%s: got error %v, want a keystore.InvalidError", what, err)
	}
}

// RunConformance runs every spec against fresh fixtures from newFixture.
func RunConformance(t *testing.T, newFixture NewFixture) {
	authz := &access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(RBAC)}
	for _, spec := range []struct {
		name string
		run  func(*testing.T, Fixture)
	}{
		{"CreateGetRoundTrip", createGetRoundTrip},
		{"UniqueNames", uniqueNames},
		{"InvalidChangesNothing", invalidChangesNothing},
		{"NotFound", notFound},
		{"Tenancy", tenancy},
		{"Escalation", escalation},
		{"Paging", paging},
		{"UpdateAndDelete", updateAndDelete},
		{"FreeTextNames", freeTextNames},
		{"ListRoles", listRoles},
	} {
		t.Run(spec.name, func(t *testing.T) { spec.run(t, newFixture(t, authz)) })
	}
}

// get reads a key as admin once the store sees it.
func get(t *testing.T, f Fixture, ns string, ref keystore.Ref) *keystore.Key {
	t.Helper()
	var k *keystore.Key
	eventually(t, "get "+ref.String(), func() (err error) {
		k, err = f.Store.Get(userCtx("admin"), Scopes, ns, ref)
		return err
	})
	return k
}

// count waits until a list of ns as admin holds n keys.
func count(t *testing.T, f Fixture, ns string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d keys in %s", n, ns), func() error {
		_, total, err := f.Store.List(userCtx("admin"), Scopes, ns, keystore.ListOptions{})
		if err == nil && total != n {
			err = fmt.Errorf("%d keys", total)
		}
		return err
	})
}

func createGetRoundTrip(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	expires := time.Now().Add(48 * time.Hour).Add(123 * time.Millisecond)
	off := false
	issued, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{
		Name: "Billing_Service.prod-2", Description: "bills", Permissions: []string{"invoices:read", "tenant.apiKey:*"},
		AllowedIPs: []string{"10.0.0.0/8", "2001:db8::1"}, ExpiresAt: &expires, Enabled: &off,
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if issued.Token == "" || !strings.HasPrefix(issued.Token, issued.KeyPrefix) {
		t.Errorf("create answers the token, starting with the key's prefix %q", issued.KeyPrefix)
	}
	for _, ref := range []keystore.Ref{keystore.ByName("Billing_Service.prod-2"), keystore.ByID(issued.ID)} {
		k := get(t, f, f.A, ref)
		switch {
		case k.ID != issued.ID || k.Name != "Billing_Service.prod-2" || k.Description != "bills" || k.Namespace != f.A:
			t.Errorf("get %s: %+v", ref, k)
		case !slices.Equal(k.Permissions, []string{"invoices:read", "tenant.apiKey:*"}) || !slices.Equal(k.AllowedIPs, []string{"10.0.0.0/8", "2001:db8::1"}):
			t.Errorf("get %s: permissions %v, IPs %v", ref, k.Permissions, k.AllowedIPs)
		case k.Enabled:
			t.Errorf("get %s: enabled, created disabled", ref)
		case !k.ExpiresAt.Equal(expires.Truncate(time.Second)):
			t.Errorf("get %s: expires %v, want %v (whole seconds, as the object keeps it)", ref, k.ExpiresAt, expires.Truncate(time.Second))
		case k.CreatedBy != "admin":
			t.Errorf("get %s: created by %q, want admin", ref, k.CreatedBy)
		}
	}
	generated, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{})
	if err != nil {
		t.Fatalf("create without a name: %v", err)
	}
	if !strings.HasPrefix(generated.Name, "key-") || !generated.Enabled {
		t.Errorf("a key created with no name or state: name %q (want key-…), enabled %v (want true)", generated.Name, generated.Enabled)
	}
	if d := time.Until(generated.ExpiresAt); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("a key created with no expiry expires in %v, want the default lifetime (a year)", d)
	}
}

func uniqueNames(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	if _, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "twin"}); err != nil {
		t.Fatal(err)
	}
	get(t, f, f.A, keystore.ByName("twin"))
	_, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "twin"})
	wantErr(t, "the same name twice", err, keystore.ErrConflict)
	if _, err := f.Store.Create(admin, Scopes, f.B, keystore.NewKey{Name: "twin"}); err != nil {
		t.Errorf("the same name in another namespace: %v", err)
	}
	if _, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	get(t, f, f.A, keystore.ByName("other"))
	name := "twin"
	_, err = f.Store.Update(admin, Scopes, f.A, keystore.ByName("other"), keystore.KeyUpdate{Name: &name})
	wantErr(t, "a rename onto a taken name", err, keystore.ErrConflict)
	count(t, f, f.A, 2)
}

func invalidChangesNothing(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	past := time.Now().Add(-time.Hour)
	for what, n := range map[string]keystore.NewKey{
		"a name with a line break":   {Name: "billing\nprod"},
		"a name with a bidi control": {Name: "billing\u202eprod"},
		"a name over 128 characters": {Name: strings.Repeat("é", keystore.MaxNameLen+1)},
		"a permission with '//'":     {Permissions: []string{"payments//read"}},
		"a permission with a space":  {Permissions: []string{"invoices read"}},
		"a bad CIDR":                 {AllowedIPs: []string{"10.0.0.0/33"}},
		"a duplicate permission":     {Permissions: []string{"a:read", "a:read"}},
		"an expiry in the past":      {ExpiresAt: &past},
		"a guessable secret":         {Token: strings.Repeat("a", 40)},
	} {
		_, err := f.Store.Create(admin, Scopes, f.A, n)
		wantInvalid(t, what, err)
	}
	if _, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	get(t, f, f.A, keystore.ByName("kept"))
	bad := []string{"no spaces allowed"}
	_, err := f.Store.Update(admin, Scopes, f.A, keystore.ByName("kept"), keystore.KeyUpdate{Permissions: &bad})
	wantInvalid(t, "an update with a bad permission", err)
	count(t, f, f.A, 1)
	if k := get(t, f, f.A, keystore.ByName("kept")); len(k.Permissions) != 0 {
		t.Errorf("a refused update changed the key: %v", k.Permissions)
	}
}

func notFound(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	for _, ref := range []keystore.Ref{keystore.ByName("nobody"), keystore.ByID("0123456789abcdef01234567")} {
		_, err := f.Store.Get(admin, Scopes, f.A, ref)
		wantErr(t, "get "+ref.String(), err, keystore.ErrNotFound)
		desc := "x"
		_, err = f.Store.Update(admin, Scopes, f.A, ref, keystore.KeyUpdate{Description: &desc})
		wantErr(t, "update "+ref.String(), err, keystore.ErrNotFound)
		_, err = f.Store.Delete(admin, Scopes, f.A, ref)
		wantErr(t, "delete "+ref.String(), err, keystore.ErrNotFound)
		_, err = f.Store.GetRole(admin, Scopes, f.A, ref)
		wantErr(t, "get role "+ref.String(), err, keystore.ErrRoleNotFound)
	}
	_, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Role: "nobody"})
	wantErr(t, "create with an unknown role", err, keystore.ErrRoleNotFound)
	_, err = f.Store.Create(admin, Scopes, f.A, keystore.NewKey{RoleID: "0123456789abcdef01234567"})
	wantErr(t, "create with an unknown role ID", err, keystore.ErrRoleNotFound)
	_, err = f.Store.Create(admin, Scopes, f.Missing, keystore.NewKey{})
	wantErr(t, "create in a namespace that does not exist", err, keystore.ErrNamespaceNotFound)
	_, _, err = f.Store.List(admin, Scopes, f.Missing, keystore.ListOptions{})
	wantErr(t, "list a namespace that does not exist", err, keystore.ErrNamespaceNotFound)
	count(t, f, f.A, 0)
}

func tenancy(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	if _, err := f.Store.Create(admin, Scopes, f.B, keystore.NewKey{Name: "theirs"}); err != nil {
		t.Fatal(err)
	}
	get(t, f, f.B, keystore.ByName("theirs"))
	mine := keyCtx(f.A, "mine", "*")
	_, err := f.Store.Get(mine, Scopes, f.B, keystore.ByName("theirs"))
	wantErr(t, "a key of A reading B", err, access.ErrOtherNamespace)
	_, err = f.Store.Create(mine, Scopes, f.B, keystore.NewKey{})
	wantErr(t, "a key of A creating in B", err, access.ErrOtherNamespace)
	_, err = f.Store.Delete(mine, Scopes, f.B, keystore.ByName("theirs"))
	wantErr(t, "a key of A deleting in B", err, access.ErrOtherNamespace)

	_, err = f.Store.Get(userCtx("nobody"), Scopes, f.B, keystore.ByName("theirs"))
	wantErr(t, "a user without RBAC", err, access.ErrForbidden)
	_, err = f.Store.Create(userCtx("viewer"), Scopes, f.B, keystore.NewKey{})
	wantErr(t, "a read-only user creating", err, access.ErrForbidden)
	_, err = f.Store.Create(keyCtx(f.A, "reader", "tenant.apiKey:read"), Scopes, f.A, keystore.NewKey{})
	wantErr(t, "a key with the read scope creating", err, access.ErrForbidden)
	_, err = f.Store.Get(context.Background(), Scopes, f.B, keystore.ByName("theirs"))
	wantErr(t, "no caller", err, access.ErrUnauthenticated)

	// Unknown and forbidden look alike to a caller without rights there.
	for what, ctx := range map[string]context.Context{"a key of A": mine, "a user without RBAC": userCtx("nobody")} {
		if ok, err := f.Store.NamespaceExists(ctx, f.Missing); err != nil || !ok {
			t.Errorf("%s asks whether a missing namespace exists: %v, %v; want true (as for one it may not see)", what, ok, err)
		}
	}
	if ok, err := f.Store.NamespaceExists(admin, f.Missing); err != nil || ok {
		t.Errorf("admin asks whether a missing namespace exists: %v, %v; want false", ok, err)
	}
	if ok, err := f.Store.NamespaceExists(admin, f.A); err != nil || !ok {
		t.Errorf("admin asks whether %s exists: %v, %v; want true", f.A, ok, err)
	}
	count(t, f, f.A, 0)
	count(t, f, f.B, 1)
}

func escalation(t *testing.T, f Fixture) {
	f.AddRole(t, f.A, "payer", "payments:write")
	limited := keyCtx(f.A, "limited", "tenant.apiKey:*", "invoices:*")
	_, err := f.Store.Create(limited, Scopes, f.A, keystore.NewKey{Name: "more", Permissions: []string{"payments:write"}})
	wantErr(t, "a key granting a permission it lacks", err, access.ErrEscalation)
	eventually(t, "the role is visible", func() error {
		_, err := f.Store.GetRole(userCtx("admin"), Scopes, f.A, keystore.ByName("payer"))
		return err
	})
	_, err = f.Store.Create(limited, Scopes, f.A, keystore.NewKey{Name: "by-role", Role: "payer"})
	wantErr(t, "a key granting through a role what it lacks", err, access.ErrEscalation)
	if _, err := f.Store.Create(limited, Scopes, f.A, keystore.NewKey{Name: "fine", Permissions: []string{"invoices:read"}}); err != nil {
		t.Fatalf("a key granting what it holds: %v", err)
	}
	get(t, f, f.A, keystore.ByName("fine"))
	wider := []string{"invoices:read", "payments:write"}
	_, err = f.Store.Update(limited, Scopes, f.A, keystore.ByName("fine"), keystore.KeyUpdate{Permissions: &wider})
	wantErr(t, "an update widening past the caller", err, access.ErrEscalation)
	role := "payer"
	_, err = f.Store.Update(limited, Scopes, f.A, keystore.ByName("fine"), keystore.KeyUpdate{Role: &role})
	wantErr(t, "an update adding a role past the caller", err, access.ErrEscalation)
	if _, err := f.Store.Create(userCtx("admin"), Scopes, f.A, keystore.NewKey{Name: "admin-made", Role: "payer"}); err != nil {
		t.Errorf("a Kubernetes user with RBAC may grant a role: %v", err)
	}
	// Widening a key that grants what the caller lacks is escalation too;
	// narrowing it is not.
	get(t, f, f.A, keystore.ByName("admin-made"))
	off, on := false, true
	if _, err := f.Store.Update(limited, Scopes, f.A, keystore.ByName("admin-made"), keystore.KeyUpdate{Enabled: &off}); err != nil {
		t.Errorf("disabling a key that grants more than the caller: %v", err)
	}
	eventually(t, "the key is disabled", func() error {
		k, err := f.Store.Get(userCtx("admin"), Scopes, f.A, keystore.ByName("admin-made"))
		if err == nil && k.Enabled {
			err = errors.New("still enabled")
		}
		return err
	})
	_, err = f.Store.Update(limited, Scopes, f.A, keystore.ByName("admin-made"), keystore.KeyUpdate{Enabled: &on})
	wantErr(t, "enabling a key that grants more than the caller", err, access.ErrEscalation)
	later := time.Now().Add(2 * 365 * 24 * time.Hour)
	_, err = f.Store.Update(limited, Scopes, f.A, keystore.ByName("admin-made"), keystore.KeyUpdate{ExpiresAt: &later})
	wantErr(t, "extending a key that grants more than the caller", err, access.ErrEscalation)
	count(t, f, f.A, 2)
	if k := get(t, f, f.A, keystore.ByName("fine")); !slices.Equal(k.Permissions, []string{"invoices:read"}) || k.Role != "" {
		t.Errorf("a refused update changed the key: %v, role %q", k.Permissions, k.Role)
	}
}

func paging(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	names := []string{"echo", "alpha", "delta", "charlie", "bravo"}
	for _, n := range names {
		if _, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: n, Description: "d-" + n}); err != nil {
			t.Fatal(err)
		}
	}
	count(t, f, f.A, 5)
	list := func(o keystore.ListOptions) ([]string, int) {
		t.Helper()
		keys, total, err := f.Store.List(admin, Scopes, f.A, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.Name)
		}
		return out, total
	}
	for _, c := range []struct {
		what  string
		o     keystore.ListOptions
		want  []string
		total int
	}{
		{"all, by name", keystore.ListOptions{}, []string{"alpha", "bravo", "charlie", "delta", "echo"}, 5},
		{"page 2 of size 2", keystore.ListOptions{Offset: 2, Limit: 2}, []string{"charlie", "delta"}, 5},
		{"the last, short page", keystore.ListOptions{Offset: 4, Limit: 2}, []string{"echo"}, 5},
		{"past the end", keystore.ListOptions{Offset: 9, Limit: 2}, nil, 5},
		{"a filter counts what matched", keystore.ListOptions{Match: func(k *keystore.Key) bool { return k.Name > "c" }, Limit: 1}, []string{"charlie"}, 3},
		{"another order", keystore.ListOptions{Less: func(a, b *keystore.Key) bool { return a.Name > b.Name }, Limit: 2}, []string{"echo", "delta"}, 5},
		{"a kept order, page 2", keystore.ListOptions{Sort: &keystore.SortField{Field: keystore.SortByName, Desc: true},
			Less: func(a, b *keystore.Key) bool { return a.Name > b.Name }, Offset: 1, Limit: 2}, []string{"delta", "charlie"}, 5},
		{"a name search narrows, ignoring case", keystore.ListOptions{NameContains: "HA",
			Match: func(k *keystore.Key) bool { return keystore.ContainsFold(k.Name, "HA") }}, []string{"alpha", "charlie"}, 2},
		{"one name", keystore.ListOptions{Name: "delta", Match: func(k *keystore.Key) bool { return k.Name == "delta" }}, []string{"delta"}, 1},
	} {
		got, total := list(c.o)
		if !slices.Equal(got, c.want) || total != c.total {
			t.Errorf("%s: %v of %d, want %v of %d", c.what, got, total, c.want, c.total)
		}
	}
	keys, _, err := f.Store.List(userCtx("viewer"), Scopes, f.A, keystore.ListOptions{Limit: 1})
	if err != nil || len(keys) != 1 || keys[0].Description != "d-alpha" {
		t.Errorf("a read-only user lists: %v, %v", keys, err)
	}
}

func updateAndDelete(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	issued, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "changing", Permissions: []string{"a:read"}})
	if err != nil {
		t.Fatal(err)
	}
	get(t, f, f.A, keystore.ByName("changing"))
	desc, name, off := "now described", "changed", false
	perms, ips := []string{"b:write"}, []string{"192.0.2.10"}
	expires := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	writer := keyCtx(f.A, "writer", "tenant.apiKey:*", "b:*")
	u, err := f.Store.Update(writer, Scopes, f.A, keystore.ByID(issued.ID), keystore.KeyUpdate{
		Name: &name, Description: &desc, Permissions: &perms, AllowedIPs: &ips, Enabled: &off, ExpiresAt: &expires,
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if u.Name != name || u.Description != desc || !slices.Equal(u.Permissions, perms) || !slices.Equal(u.AllowedIPs, ips) || u.Enabled || !u.ExpiresAt.Equal(expires) {
		t.Errorf("the update's answer: %+v", u)
	}
	if u.UpdatedBy != "apikey:"+f.A+"/writer" {
		t.Errorf("updated by %q, want the key that did it", u.UpdatedBy)
	}
	eventually(t, "the update is visible", func() error {
		k, err := f.Store.Get(admin, Scopes, f.A, keystore.ByName(name))
		if err == nil && (k.ID != issued.ID || k.Description != desc || k.Enabled) {
			err = fmt.Errorf("not yet: %+v", k)
		}
		return err
	})
	gone, err := f.Store.Delete(writer, Scopes, f.A, keystore.ByName(name))
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if gone.ID != issued.ID || gone.Description != desc {
		t.Errorf("delete answers the key as it was: %+v", gone)
	}
	eventually(t, "the key is gone", func() error {
		_, err := f.Store.Get(admin, Scopes, f.A, keystore.ByName(name))
		if !errors.Is(err, keystore.ErrNotFound) {
			return fmt.Errorf("get after delete: %v", err)
		}
		return nil
	})
	count(t, f, f.A, 0)
}

// freeTextNames: a name is any text without control characters, kept
// byte for byte, unique exactly (issue 13).
func freeTextNames(t *testing.T, f Fixture) {
	admin := userCtx("admin")
	names := []string{"CI Deploy (prod)", "ci deploy (prod)", "Déploiement", "ops@example.com", "tenant:42", "a/b"}
	for _, n := range names {
		if _, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: n, Permissions: []string{"payments/read", "billing@eu"}}); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	for _, n := range names {
		if k := get(t, f, f.A, keystore.ByName(n)); k.Name != n {
			t.Errorf("get %q: name %q", n, k.Name)
		}
	}
	_, err := f.Store.Create(admin, Scopes, f.A, keystore.NewKey{Name: "CI Deploy (prod)"})
	wantErr(t, "the same free-text name twice", err, keystore.ErrConflict)
	count(t, f, f.A, len(names))
}

// listRoles: the namespace's roles by name, authorised as a list of keys.
func listRoles(t *testing.T, f Fixture) {
	f.AddRole(t, f.A, "zeta", "payments/read")
	f.AddRole(t, f.A, "alpha", "*")
	f.AddRole(t, f.B, "theirs", "*")
	var roles []*keystore.Role
	eventually(t, "both roles listed", func() (err error) {
		roles, err = f.Store.ListRoles(userCtx("viewer"), Scopes, f.A)
		if err == nil && len(roles) != 2 {
			err = fmt.Errorf("%d roles", len(roles))
		}
		return err
	})
	if roles[0].Name != "alpha" || roles[1].Name != "zeta" || roles[1].Permissions[0] != "payments/read" || roles[0].ID == "" || roles[0].Namespace != f.A {
		t.Errorf("roles %+v %+v", roles[0], roles[1])
	}
	_, err := f.Store.ListRoles(keyCtx(f.B, "other", "*"), Scopes, f.A)
	wantErr(t, "another namespace's key", err, access.ErrOtherNamespace)
	_, err = f.Store.ListRoles(keyCtx(f.A, "noscope", "invoices:read"), Scopes, f.A)
	wantErr(t, "a key without the read scope", err, access.ErrForbidden)
	_, err = f.Store.ListRoles(userCtx("nobody"), Scopes, f.A)
	wantErr(t, "a user without RBAC", err, access.ErrForbidden)
	if _, err := f.Store.ListRoles(keyCtx(f.A, "reader", "tenant.apiKey:read"), Scopes, f.A); err != nil {
		t.Errorf("a key with the read scope: %v", err)
	}
	_, err = f.Store.ListRoles(userCtx("admin"), Scopes, f.Missing)
	wantErr(t, "a namespace that does not exist", err, keystore.ErrNamespaceNotFound)
}
