package nexus

import (
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// createRequest is the vendor's request payload: every field optional and
// nullable, so each is a pointer and null means "not sent". It is bound as
// the vendor's ASP.NET server binds it (httpjson.DecodeAsASPNET): names
// ignoring case, unknown members ignored.
type createRequest struct {
	ID          *string `json:"id"`
	RoleID      *string `json:"roleId"`
	Secret      *string `json:"secret"`
	ExpiresAt   *string `json:"expiresAt"`
	Description *string `json:"description"`
	Permissions *string `json:"permissions"`
}

// newKey translates the request. The store checks the rules it owns
// (name characters, lengths, expiry in the future, permission syntax);
// this checks only what the store cannot see: empty strings that the
// store would read as "not sent", and the date format.
func (c *createRequest) newKey() (keystore.NewKey, error) {
	var n keystore.NewKey
	if c.ID != nil {
		if *c.ID == "" {
			return n, badField("id", "must not be empty; leave it out or send null to have one generated")
		}
		n.Name = *c.ID
	}
	if c.RoleID != nil {
		if *c.RoleID == "" {
			return n, badField("roleId", "must not be empty; leave it out or send null for no role")
		}
		n.Role = *c.RoleID
	}
	if c.Secret != nil {
		if len(*c.Secret) < token.MinLen {
			return n, badField("secret", "must have at least 32 characters; leave it out or send null to have one generated")
		}
		n.Token = *c.Secret
	}
	if c.ExpiresAt != nil {
		t, ok := parseDateTime(*c.ExpiresAt)
		if !ok {
			return n, badField("expiresAt", "must be a date-time such as 2030-01-31T00:00:00Z, 2030-01-31T00:00:00.1234567+02:00, 2030-01-31T00:00:00 (UTC) or 2030-01-31 (midnight UTC)")
		}
		n.ExpiresAt = &t
	}
	if c.Description != nil {
		n.Description = *c.Description
	}
	return n, c.addPermissions(&n)
}

// addPermissions keeps the string as sent, for the responses, and its
// items, to decide access.
func (c *createRequest) addPermissions(n *keystore.NewKey) error {
	if c.Permissions == nil || *c.Permissions == "" {
		return nil
	}
	if len(*c.Permissions) > keystore.MaxAttributeLen {
		return badField("permissions", "must be at most 1024 characters")
	}
	n.Permissions = splitPermissions(*c.Permissions)
	n.Attributes = map[string]string{PermissionsAttribute: *c.Permissions}
	return nil
}

// splitPermissions splits on commas and white space and drops repeats: a
// key's permissions are a set.
func splitPermissions(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func badField(field, reason string) error {
	return errorf(http.StatusBadRequest, "%s %s", field, reason)
}

// apiKey is the vendor's response object, fields in its order.
type apiKey struct {
	ID          *string `json:"id"`
	RoleID      *string `json:"roleId"`
	Secret      *string `json:"secret"`
	UserID      *string `json:"userId"`
	Created     string  `json:"created"`
	Modified    string  `json:"modified"`
	CreatedBy   *string `json:"createdBy"`
	ExpiresAt   string  `json:"expiresAt"`
	ModifiedBy  *string `json:"modifiedBy"`
	Description *string `json:"description"`
	Permissions *string `json:"permissions"`
}

// view shows a key; secret is the plaintext on create, nil elsewhere.
func view(k *keystore.Key, secret *string) apiKey {
	return apiKey{
		ID:          nullable(k.Name),
		RoleID:      nullable(k.Role),
		Secret:      secret,
		UserID:      nullable(k.CreatedBy),
		Created:     timestamp(k.CreatedAt),
		Modified:    timestamp(k.UpdatedAt),
		CreatedBy:   nullable(k.CreatedBy),
		ExpiresAt:   timestamp(k.ExpiresAt),
		ModifiedBy:  nullable(k.UpdatedBy),
		Description: nullable(k.Description),
		Permissions: permissionsOf(k),
	}
}

// permissionsOf is the string as sent while it still says what the key
// grants; once the permissions were changed elsewhere (another dialect,
// kubectl), the current ones joined with commas.
func permissionsOf(k *keystore.Key) *string {
	if sent, ok := k.Attributes[PermissionsAttribute]; ok && sameSet(splitPermissions(sent), k.Permissions) {
		return &sent
	}
	return nullable(strings.Join(k.Permissions, ","))
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
