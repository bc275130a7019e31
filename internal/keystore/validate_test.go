package keystore

import (
	"errors"
	"strings"
	"testing"
)

// Names are free text (issue 13): the CRD's KeyName rule, checked before
// any write so dialects answer in their own shapes.
func TestValidateName(t *testing.T) {
	for _, ok := range []string{"CI Deploy (prod)", "Déploiement", "build #42", "ops@example.com", "tenant:42", "a/b",
		"x", strings.Repeat("é", MaxNameLen), "🧑\u200d💻 dev", " spaced "} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", MaxNameLen+1), strings.Repeat("é", MaxNameLen+1), "a\nb", "a\tb", "a\x00",
		"a\x7f", "a\u0085b", "a\u202eb", "a\u2066b", "a\u200fb", "a\u061cb", "\xff\xfe"} {
		var ie *InvalidError
		if err := ValidateName(bad); !errors.As(err, &ie) || ie.Field != "name" {
			t.Errorf("ValidateName(%q) = %v, want an InvalidError for name", bad, err)
		}
	}
}

func TestValidatePermissions(t *testing.T) {
	for _, ok := range []string{"*", "invoices:read", "tenant.apiKey:*", "payments/read", "billing@eu", "urn:acme:invoices/read", "*/read", "a_b-c"} {
		if err := validatePermissions([]string{ok}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\tb", "payments//read", "/read", "read/", "a*b", "inv#ices", "é", "a,b", strings.Repeat("a", MaxPermissionLen+1)} {
		if err := validatePermissions([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
