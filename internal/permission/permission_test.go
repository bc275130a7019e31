package permission

import "testing"

func TestGrants(t *testing.T) {
	cases := []struct {
		pattern, required string
		want              bool
	}{
		{"*", "anything:at:all", true},
		{"invoices:read", "invoices:read", true},
		{"invoices:read", "invoices:write", false},
		{"tenant.apiKey:*", "tenant.apiKey:read", true},
		{"tenant.apiKey:*", "tenant.apiKey:read:all", true},
		{"tenant.apiKey:*", "tenant.apiKey", false},
		{"tenant.apiKey:*", "tenant:apiKey:read", false},
		{"invoices:*:read", "invoices:eu:read", true},
		{"invoices:*:read", "invoices:eu:write", false},
		// Granting a wildcard needs a wildcard at least as wide.
		{"invoices:*", "invoices:*", true},
		{"invoices:*", "*", false},
		{"invoices:read", "invoices:*", false},
		// '/' and '@' are separators like ':' and '.' (issue 13).
		{"payments/read", "payments/read", true},
		{"payments/*", "payments/read", true},
		{"payments/*", "payments/eu@read", true},
		{"payments/*", "payments:read", false},
		{"payments/*", "payments", false},
		{"billing@*", "billing@eu", true},
		{"billing@eu", "billing@us", false},
		{"urn:acme:*", "urn:acme:invoices/read", true},
		{"urn:*:invoices/read", "urn:acme:invoices/read", true},
		{"urn:*:read", "urn:acme/eu:read", false},
		{"*/read", "payments/read", true},
		{"*/read", "payments:read", false},
	}
	for _, c := range cases {
		if got := Grants(c.pattern, c.required); got != c.want {
			t.Errorf("Grants(%q, %q) = %v, want %v", c.pattern, c.required, got, c.want)
		}
	}
	if GrantsAll([]string{"a:read"}, []string{"a:read", "b:read"}) || !GrantsAll([]string{"a:*", "b:read"}, []string{"a:x", "b:read"}) {
		t.Error("GrantsAll")
	}
	if GrantsOne([]string{"*"}, "") {
		t.Error("an empty permission is never granted")
	}
}

func TestGrantsTable(t *testing.T) {
	cases := []struct {
		pattern, required string
		want              bool
	}{
		{"*", "anything:at.all", true},
		{"invoices:read", "invoices:read", true},
		{"invoices:read", "invoices:write", false},
		{"invoices:read", "invoices:read:all", false},
		{"invoices:read:all", "invoices:read", false},
		{"tenant.apiKey:*", "tenant.apiKey:read", true},
		{"tenant.apiKey:*", "tenant.apiKey:read:all", true},
		{"tenant.apiKey:*", "tenant.apiKey", false},
		{"tenant.apiKey:*", "tenant:apiKey:read", false},
		{"tenant.*", "tenant.apiKey:read", true},
		{"tenant.*", "tenants.apiKey", false},
		{"invoices:*:read", "invoices:eu:read", true},
		{"invoices:*:read", "invoices:eu:write", false},
		{"invoices:*:read", "invoices:eu:us:read", false},
		{"*:read", "invoices:read", true},
		{"*:read", "invoices:write", false},
		{"invoices:read", "invoices:*", false},
		{"invoices:*", "invoices:*", true},
		{"a", "", false},
	}
	for _, tc := range cases {
		if got := GrantsOne([]string{tc.pattern}, tc.required); got != tc.want {
			t.Errorf("%q grants %q: got %v, want %v", tc.pattern, tc.required, got, tc.want)
		}
	}
}

func FuzzGrantsProperties(f *testing.F) {
	for _, s := range [][2]string{{"*", "a"}, {"a:*", "a:b"}, {"a.*:c", "a.b:c"}, {"", ""}, {"a:", "a:"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, required string) {
		got := Grants(pattern, required)
		if pattern == "*" && !got {
			t.Fatal("* must grant everything")
		}
		if !Grants(required, required) {
			t.Fatalf("%q must grant itself", required)
		}
		if got && pattern != "*" && !containsStar(pattern) && pattern != required {
			t.Fatalf("%q has no wildcard yet grants %q", pattern, required)
		}
	})
}

func containsStar(s string) bool {
	for i := range len(s) {
		if s[i] == '*' {
			return true
		}
	}
	return false
}
