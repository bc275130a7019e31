package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// status names where a key without audiences of its own verifies: with a
// role, wherever the role's audiences say (internal/verify/key.go).
func TestStatusAudiences(t *testing.T) {
	for _, c := range []struct {
		name string
		key  keysv1.ApiKey
		want string
	}{
		{"own", keysv1.ApiKey{Spec: keysv1.ApiKeySpec{Audiences: []keysv1.Audience{"billing"},
			RoleRef: &keysv1.RoleReference{Name: "readers"}}}, "Audiences:    billing\n"},
		{"a role's", keysv1.ApiKey{Spec: keysv1.ApiKeySpec{RoleRef: &keysv1.RoleReference{Name: "readers"}}},
			"Audiences:    those of role readers, if it has any; else any gateway of the namespace\n"},
		{"none", keysv1.ApiKey{}, "Audiences:    any gateway of the namespace\n"},
	} {
		var out bytes.Buffer
		describe(&out, &c.key, time.Now())
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%s: want %q in\n%s", c.name, c.want, out.String())
		}
	}
}
