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

func FuzzGrants(f *testing.F) {
	f.Add("tenant.apiKey:*", "tenant.apiKey:read")
	f.Add("*", "")
	f.Add("a:*:c", "a::c")
	f.Fuzz(func(t *testing.T, pattern, required string) {
		got := Grants(pattern, required)
		if pattern == required && pattern != "" && !got {
			t.Fatalf("a permission must grant itself: %q", pattern)
		}
	})
}
