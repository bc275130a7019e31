package hub

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

func TestState(t *testing.T) {
	changed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	cases := []struct {
		reason, message string
		current         string
		errMessage      string // "": no error
	}{
		{keysv1.ReasonIssued, "", "live", ""},
		{keystore.StatePending, "", "new", ""},
		{keysv1.ReasonDisabled, "disabled by spec.enabled", "inactive", ""},
		{keysv1.ReasonExpired, "expired at ...", "inactive", ""},
		{keysv1.ReasonRoleNotFound, `role "gone" not found`, "inactive", `role "gone" not found`},
		{keysv1.ReasonSecretInvalid, "", "inactive", keysv1.ReasonSecretInvalid},
		{keysv1.ReasonSecretTaken, "the Secret belongs to someone else", "inactive", "the Secret belongs to someone else"},
		{"SomethingNew", "", "inactive", "SomethingNew"},
	}
	for _, c := range cases {
		s := stateOf(&keystore.Key{State: c.reason, StateMessage: c.message, StateChangedAt: changed})
		if s.Current != c.current || !s.Changed.Equal(changed) || s.Changed.Location() != time.UTC {
			t.Errorf("%s: %+v", c.reason, s)
		}
		switch {
		case c.errMessage == "" && s.Error != nil:
			t.Errorf("%s: unexpected error %+v", c.reason, s.Error)
		case c.errMessage != "" && (s.Error == nil || s.Error.Message != c.errMessage || !s.Error.Time.Equal(changed)):
			t.Errorf("%s: error %+v, want %q", c.reason, s.Error, c.errMessage)
		}
	}
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if s := stateOf(&keystore.Key{State: keystore.StatePending, CreatedAt: created}); !s.Changed.Equal(created) {
		t.Errorf("no change time: want the creation time, got %v", s.Changed)
	}
}

func TestCreator(t *testing.T) {
	cases := []struct{ createdBy, typ string }{
		{"", "platform"},
		{"apikey:hub-a/ci", "api-key"},
		{"alice", "account"},
		{"system:serviceaccount:hub-a:deployer", "account"},
	}
	for _, c := range cases {
		got := creatorOf(c.createdBy)
		if got.Type != c.typ || !hexID.MatchString(got.ID) {
			t.Errorf("%q: %+v", c.createdBy, got)
		}
		if again := creatorOf(c.createdBy); again != got {
			t.Errorf("%q: creator ID is not stable", c.createdBy)
		}
	}
	if creatorOf("alice").ID == creatorOf("bob").ID {
		t.Error("different creators share an ID")
	}
}

func TestMaskedSecret(t *testing.T) {
	for prefix, want := range map[string]string{"ak_3xAmPl": "ak_3xAmPl********", "": "********"} {
		if got := toAPIKey(&keystore.Key{KeyPrefix: prefix}, "").Secret; got != want {
			t.Errorf("%q: %q", prefix, got)
		}
	}
	if got := toAPIKey(&keystore.Key{KeyPrefix: "ak_x"}, "plain").Secret; got != "plain" {
		t.Errorf("create: %q", got)
	}
}

// A key made by kubectl, with no role and no IPs, still has every
// required field with a value of the right JSON type.
func TestKubectlKeyShape(t *testing.T) {
	b, err := json.Marshal(toAPIKey(&keystore.Key{ID: strings.Repeat("1", 24), Namespace: hubA, Name: "k", AllowedIPs: []string{}}, ""))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if !slices.Equal(keysOf(m), apiKeyFields) || m["role_id"] != noID || m["ips"] != nil || obj(m, "creator")["id"] != noID || obj(m, "creator")["type"] != "platform" {
		t.Errorf("%s", b)
	}
}

func TestRoleCapabilities(t *testing.T) {
	// Only the product's capabilities go to specific; other permissions
	// to extra.permissions; "*" is all.
	r := toRole(&keystore.Role{ID: "r", Name: "ops", Namespace: hubA, Description: "ops team",
		Permissions: []string{"a:read", "*", "api-keys-manage", "b:write", "payments/read", "dns-view"}})
	if !r.Capabilities.All || !slices.Equal(r.Capabilities.Specific, []string{"api-keys-manage", "dns-view"}) ||
		r.Extra["description"] != "ops team" || r.Extra["permissions"] != "a:read,b:write,payments/read" {
		t.Errorf("%+v", r)
	}
	r = toRole(&keystore.Role{ID: "r", Name: "none"})
	if r.Capabilities.All || r.Capabilities.Specific == nil || r.Extra != nil {
		t.Errorf("%+v", r)
	}
}
