package keystore

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// TestWidens: which updates make a key more powerful and so need the
// caller to hold the key's permissions (issue 11). The dialects' updates
// are tested on the real control plane in internal/apiserver
// (widening_test.go); expiry has no dialect field yet, so it is here.
func TestWidens(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	off, on := false, true
	key := &keysv1.ApiKey{Spec: keysv1.ApiKeySpec{
		Enabled:    &off,
		AllowedIPs: []keysv1.IPOrCIDR{"10.0.0.0/8", "2001:db8::/32"},
		ExpiresAt:  &metav1.Time{Time: now},
	}}
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	ips := func(s ...string) *[]string { return &s }
	for _, tc := range []struct {
		name string
		u    KeyUpdate
		want bool
	}{
		{"enable a disabled key", KeyUpdate{Enabled: &on}, true},
		{"disable it", KeyUpdate{Enabled: &off}, false},
		{"lift the allowlist", KeyUpdate{AllowedIPs: ips()}, true},
		{"a wider block", KeyUpdate{AllowedIPs: ips("10.0.0.0/7")}, true},
		{"an address outside", KeyUpdate{AllowedIPs: ips("10.0.0.1", "192.0.2.1")}, true},
		{"a v4-mapped address inside the v4 block", KeyUpdate{AllowedIPs: ips("::ffff:10.0.0.1")}, false},
		{"a narrower block and an address inside", KeyUpdate{AllowedIPs: ips("10.1.0.0/16", "2001:db8::1")}, false},
		{"a later expiry", KeyUpdate{ExpiresAt: &later}, true},
		{"an earlier expiry", KeyUpdate{ExpiresAt: &earlier}, false},
		{"a description", KeyUpdate{Description: ptrTo("x")}, false},
	} {
		if got := widens(key, &tc.u); got != tc.want {
			t.Errorf("%s: widens = %v, want %v", tc.name, got, tc.want)
		}
	}
	open := &keysv1.ApiKey{}
	if widens(open, &KeyUpdate{AllowedIPs: ips("10.0.0.0/8")}) {
		t.Error("restricting a key that allows any address widens nothing")
	}
	if !widens(open, &KeyUpdate{ExpiresAt: &later}) {
		t.Error("an expiry on a key with none known counts as widening")
	}
}

func ptrTo[T any](v T) *T { return &v }
