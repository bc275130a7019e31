package keystore

import (
	"strings"
	"testing"
)

func TestObjectName(t *testing.T) {
	for _, c := range []struct{ display, want string }{
		{"billing", "billing"},
		{"billing.v2", "billing.v2"},
		{"Billing", "billing-"},
		{"billing_service", "billing-service-"},
		{"_", "key-"},
	} {
		got := ObjectName(c.display)
		if !strings.HasPrefix(got, c.want) || (c.want == c.display) != (got == c.display) {
			t.Errorf("ObjectName(%q) = %q, want prefix %q", c.display, got, c.want)
		}
		if len(got) > 63 || !objectNameRE.MatchString(got) {
			t.Errorf("ObjectName(%q) = %q is not a valid object name", c.display, got)
		}
	}
	if ObjectName("Foo") == ObjectName("foo") || ObjectName("a_b") == ObjectName("a-b") {
		t.Error("distinct display names share an object name")
	}
	long := ObjectName(strings.Repeat("X", 128))
	if len(long) > 63 {
		t.Errorf("len = %d", len(long))
	}
}

func FuzzObjectName(f *testing.F) {
	f.Add("Billing_Service.prod-2")
	f.Add("...")
	f.Fuzz(func(t *testing.T, s string) {
		if got := ObjectName(s); len(got) > 63 || !objectNameRE.MatchString(got) {
			t.Fatalf("ObjectName(%q) = %q", s, got)
		}
	})
}
