package limits

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestReadyReplicas(t *testing.T) {
	ep := func(ready *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	v4 := func(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps}
	}
	v6 := func(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv6, Endpoints: eps}
	}
	yes, no := ptr.To(true), ptr.To(false)
	for _, c := range []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   int
	}{
		{"none: the whole limit", nil, 1},
		{"none ready: the whole limit", []*discoveryv1.EndpointSlice{v4(ep(no), ep(no))}, 1},
		{"ready and unset count, not-ready does not", []*discoveryv1.EndpointSlice{v4(ep(yes), ep(nil), ep(no))}, 2},
		{"slices add up", []*discoveryv1.EndpointSlice{v4(ep(yes), ep(yes)), v4(ep(yes))}, 3},
		{"dual stack counts each pod once", []*discoveryv1.EndpointSlice{v4(ep(yes), ep(yes)), v6(ep(yes), ep(yes))}, 2},
	} {
		if got := ReadyReplicas(c.slices); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestSplitService(t *testing.T) {
	dir := t.TempDir()
	podNamespaceFile = filepath.Join(dir, "namespace")
	if _, _, err := splitService("verify"); err == nil || !strings.Contains(err.Error(), "namespace/name") {
		t.Fatalf("a name alone outside a Pod: %v, want an error asking for namespace/name", err)
	}
	if err := os.WriteFile(podNamespaceFile, []byte("apikey-system\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"verify": "apikey-system/verify", "team/verify": "team/verify"} {
		ns, name, err := splitService(in)
		if err != nil || ns+"/"+name != want {
			t.Errorf("%q: %s/%s, %v; want %s", in, ns, name, err, want)
		}
	}
	for _, bad := range []string{"/verify", "team/", "a/b/c"} {
		if _, _, err := splitService(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
