package keystore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// agreement is one input to both judges: the key store's validation
// (what a REST dialect's request meets first) and the CRD's OpenAPI and
// CEL rules (what kubectl's request meets). They must agree, or a key
// made one way could not be made, or edited, the other.
type agreement struct {
	what   string
	field  string // name, description, permissions or allowedIPs
	values []string
	accept bool // what both must answer
}

func repeat(s string, n int) []string { return []string{strings.Repeat(s, n)} }

func many(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i/256, i%256)
	}
	return out
}

var agreements = []agreement{
	{"a plain name", "name", []string{"billing"}, true},
	{"a name with every allowed character", "name", []string{"Billing_Service.prod-2"}, true},
	{"a name of 128 characters", "name", repeat("n", 128), true},
	{"a name of 129 characters", "name", repeat("n", 129), false},
	// Names are free text without control characters (issue 13).
	{"a name with '/'", "name", []string{"billing/prod"}, true},
	{"a name with a space", "name", []string{"billing prod"}, true},
	{"a name of free text", "name", []string{"CI Deploy (prod) #42 ops@example.com tenant:42"}, true},
	{"a name with a non-ASCII letter", "name", []string{"caf\u00e9"}, true},
	{"a name of 128 non-ASCII characters", "name", repeat("\u00e9", 128), true},
	{"a name of 129 non-ASCII characters", "name", repeat("\u00e9", 129), false},
	{"a name with a zero-width joiner", "name", []string{"\U0001F9D1\u200d\U0001F4BB dev"}, true},
	{"a name with a trailing newline", "name", []string{"billing\n"}, false},
	{"a name with a tab", "name", []string{"a\tb"}, false},
	{"a name with NUL", "name", []string{"a\x00b"}, false},
	{"a name with DEL", "name", []string{"a\x7fb"}, false},
	{"a name with a C1 control", "name", []string{"a\u0085b"}, false},
	{"a name with a right-to-left override", "name", []string{"a\u202eb"}, false},
	{"a name with a left-to-right mark", "name", []string{"a\u200eb"}, false},
	{"a name with an Arabic letter mark", "name", []string{"a\u061cb"}, false},
	{"a name with a bidi isolate", "name", []string{"a\u2068b"}, false},

	{"an empty description", "description", []string{""}, true},
	{"a description of 1024 characters", "description", repeat("x", 1024), true},
	{"a description of 1025 characters", "description", repeat("x", 1025), false},
	{"a description of 1024 two-byte characters", "description", repeat("\u00e9", 1024), true},
	{"a description of 1025 two-byte characters", "description", repeat("\u00e9", 1025), false},
	{"a description with newlines and tabs", "description", []string{"line one\n\tline two"}, true},

	{"permissions of every shape", "permissions", []string{"*", "invoices:read", "tenant.apiKey:*", "a-b_c:d.e", "x:*:y"}, true},
	{"a permission of 128 characters", "permissions", repeat("p", 128), true},
	{"a permission of 129 characters", "permissions", repeat("p", 129), false},
	{"an empty permission", "permissions", []string{""}, false},
	{"a permission with a space", "permissions", []string{"invoices read"}, false},
	{"a permission with an empty segment", "permissions", []string{"a::b"}, false},
	{"permissions with '/' and '@'", "permissions", []string{"payments/read", "billing@eu", "urn:acme:invoices/read", "payments/*", "*@eu"}, true},
	{"a permission with an empty '/' segment", "permissions", []string{"payments//read"}, false},
	{"a permission ending in '@'", "permissions", []string{"billing@"}, false},
	{"a permission with '#'", "permissions", []string{"inv#ices"}, false},
	{"a permission ending in a separator", "permissions", []string{"invoices:"}, false},
	{"a permission starting with a separator", "permissions", []string{":read"}, false},
	{"a wildcard inside a segment", "permissions", []string{"inv*:read"}, false},
	{"a double wildcard", "permissions", []string{"**"}, false},
	{"a permission with a non-ASCII letter", "permissions", []string{"caf\u00e9:read"}, false},
	{"64 permissions", "permissions", many(64, "p%d-%d:read"), true},
	{"65 permissions", "permissions", many(65, "p%d-%d:read"), false},
	{"a permission twice", "permissions", []string{"a:read", "a:read"}, false},

	{"IPv4 and IPv6 addresses and blocks", "allowedIPs", []string{"192.0.2.10", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32", "0.0.0.0/0", "::/0"}, true},
	{"a block with host bits set", "allowedIPs", []string{"10.0.0.1/8"}, true},
	{"the longest IPv6 block (49 characters)", "allowedIPs", []string{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128"}, true},
	{"IPv6 with leading zeros in groups", "allowedIPs", []string{"2001:0db8:0000::0001"}, true},
	{"a prefix too long", "allowedIPs", []string{"10.0.0.0/33"}, false},
	{"an octet too large", "allowedIPs", []string{"192.168.1.256"}, false},
	{"IPv4 with a leading zero", "allowedIPs", []string{"010.0.0.1"}, false},
	{"a prefix with a leading zero", "allowedIPs", []string{"10.0.0.0/08"}, false},
	{"a single digit", "allowedIPs", []string{"1"}, false},
	{"an empty entry", "allowedIPs", []string{""}, false},
	{"a space before the address", "allowedIPs", []string{" 10.0.0.1"}, false},
	{"a host name", "allowedIPs", []string{"localhost"}, false},
	{"an IPv6 zone", "allowedIPs", []string{"fe80::1%eth0"}, false},
	{"an IPv6 zone making it 50 characters", "allowedIPs", []string{"fe80::1%" + strings.Repeat("z", 42)}, false},
	{"an IPv4-mapped IPv6 address", "allowedIPs", []string{"::ffff:192.0.2.1"}, false},
	{"an IPv4-mapped IPv6 block", "allowedIPs", []string{"::ffff:192.0.2.0/120"}, false},
	{"an IPv4-compatible IPv6 address (not mapped)", "allowedIPs", []string{"::192.0.2.1"}, true},
	{"100 addresses", "allowedIPs", many(100, "10.%d.%d.1"), true},
	{"101 addresses", "allowedIPs", many(101, "10.%d.%d.1"), false},
	{"an address twice", "allowedIPs", []string{"10.0.0.1", "10.0.0.1"}, false},
}

// newKey and apiKey are the same input as a store request and as an
// ApiKey manifest.
func (a agreement) newKey() keystore.NewKey {
	var n keystore.NewKey
	switch a.field {
	case "name":
		n.Name = a.values[0]
	case "description":
		n.Description = a.values[0]
	case "permissions":
		n.Permissions = a.values
	case "allowedIPs":
		n.AllowedIPs = a.values
	}
	return n
}

func (a agreement) apiKey(ns string) *keysv1.ApiKey {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "judged"}}
	switch a.field {
	case "name":
		k.Spec.Name = keysv1.KeyName(a.values[0])
	case "description":
		k.Spec.Description = a.values[0]
	case "permissions":
		for _, p := range a.values {
			k.Spec.Permissions = append(k.Spec.Permissions, keysv1.Permission(p))
		}
	case "allowedIPs":
		for _, ip := range a.values {
			k.Spec.AllowedIPs = append(k.Spec.AllowedIPs, keysv1.IPOrCIDR(ip))
		}
	}
	return k
}

// TestStoreAndCRDAgree puts each input to the key store's validation and
// to kube-apiserver (a server-side dry run, so nothing is stored), and
// fails on every input the two judge differently.
func TestStoreAndCRDAgree(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t, "agree")
	ctx := context.Background()
	for _, a := range agreements {
		t.Run(a.what, func(t *testing.T) {
			n := a.newKey()
			storeErr := keystore.ValidateNew(&n, time.Now())
			apiErr := plane.k8s.Create(ctx, a.apiKey(ns), client.DryRunAll)
			if (storeErr == nil) != (apiErr == nil) {
				t.Errorf("they disagree: the store says %v, kube-apiserver says %v", verdict(storeErr), verdict(apiErr))
			}
			if (apiErr == nil) != a.accept {
				t.Errorf("want accepted=%v: the store says %v, kube-apiserver says %v", a.accept, verdict(storeErr), verdict(apiErr))
			}
			if a.field == "name" {
				// The store checks a rename with the same rule.
				if err := keystore.ValidateUpdate(&keystore.KeyUpdate{Name: &a.values[0]}); (err == nil) != (storeErr == nil) {
					t.Errorf("a create and a rename judge the name differently: %v against %v", verdict(storeErr), verdict(err))
				}
			}
		})
	}
}

func verdict(err error) string {
	if err == nil {
		return "accepted"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return "refused (" + s + ")"
}
