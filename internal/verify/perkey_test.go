package verify

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Verdicts on known keys count per namespace always, and per key only
// with --metrics-per-key; a deleted key's series go with it.
func TestKeyMetrics(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		ix := NewIndex()
		tok := mint(t)
		ix.SetKey(apiKey("team-a", "billing", tok, func(k *keysv1.ApiKey) { k.Spec.Permissions = perms("invoices:read") }))
		o := NewOptions()
		o.MetricsPerKey = perKey
		s, err := NewServerFromIndex(o, ix, Deps{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"invoices:read", "invoices:read", "invoices:write"} {
			s.Verifier().Verify(&Request{Token: tok, Namespaces: []string{"team-a"}, Permissions: []string{p}})
		}
		if got := testutil.ToFloat64(namespaceDesc.WithLabelValues("team-a", "Valid")); got < 2 {
			t.Errorf("apikey_namespace_verifications_total{team-a,Valid} = %v, want at least 2", got)
		}
		n, err := testutil.GatherAndCount(reg, "apikey_key_verifications_total")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 2}[perKey]; n != want {
			t.Errorf("perKey=%t: %d per-key series, want %d", perKey, n, want)
		}
		if perKey {
			ix.DeleteKey(types.NamespacedName{Namespace: "team-a", Name: "billing"})
			if n, _ := testutil.GatherAndCount(reg, "apikey_key_verifications_total"); n != 0 {
				t.Errorf("a deleted key keeps %d per-key series", n)
			}
		}
	}
}
