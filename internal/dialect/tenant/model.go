package tenant

import (
	"net/http"
	"regexp"
	"slices"

	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// createRequest is the product's create body. Pointers tell "not sent"
// (or null) from a zero value.
type createRequest struct {
	Name        *string  `json:"name"`
	Enabled     *bool    `json:"enabled"`
	Permissions []string `json:"permissions"`
}

// createNameRE is the product's rule for the names it creates: letters,
// digits, '-', '_' and '.'. Keys made elsewhere may have any name the
// store allows (keystore.ValidateName); this dialect shows and addresses
// them all, but creates only these.
var createNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// newKey translates the request. The store checks lengths and the
// characters any key name may hold; this checks what it cannot see: a
// missing name (which the store would generate), the product's narrower
// characters, and repeated permissions.
func (c *createRequest) newKey() (keystore.NewKey, error) {
	switch {
	case c.Name == nil:
		return keystore.NewKey{}, errorf(http.StatusBadRequest, "name is required")
	case *c.Name == "":
		return keystore.NewKey{}, errorf(http.StatusBadRequest, "name must not be empty")
	case len(*c.Name) <= keystore.MaxNameLen && !createNameRE.MatchString(*c.Name):
		return keystore.NewKey{}, errorf(http.StatusBadRequest, "name: may contain only letters, digits, '-', '_' and '.' (for example billing-service_prod.v2)")
	}
	if err := checkPermissions(c.Permissions); err != nil {
		return keystore.NewKey{}, err
	}
	return keystore.NewKey{Name: *c.Name, Enabled: c.Enabled, Permissions: c.Permissions}, nil
}

// updateRequest is the product's update body: enabled is required;
// permissions absent or null leaves them as they are, [] removes them all.
type updateRequest struct {
	Enabled     *bool     `json:"enabled"`
	Permissions *[]string `json:"permissions"`
}

func (u *updateRequest) keyUpdate() (keystore.KeyUpdate, error) {
	if u.Enabled == nil {
		return keystore.KeyUpdate{}, errorf(http.StatusBadRequest, "enabled is required")
	}
	ku := keystore.KeyUpdate{Enabled: u.Enabled}
	if u.Permissions != nil {
		if err := checkPermissions(*u.Permissions); err != nil {
			return ku, err
		}
		ku.Permissions = u.Permissions
	}
	return ku, nil
}

// definition is the product's ApiKeyDefinition: exactly these three
// properties, in list and get. The hash and the token are never here.
type definition struct {
	Name        string   `json:"name"`
	Enabled     bool     `json:"enabled"`
	Permissions []string `json:"permissions"`
}

// createdKey is the product's ApiKeyCreatedResponse: the definition and
// the plaintext token, returned this once.
type createdKey struct {
	Name        string   `json:"name"`
	Enabled     bool     `json:"enabled"`
	Permissions []string `json:"permissions"`
	Token       string   `json:"token"`
}

func definitionOf(k *keystore.Key) definition {
	return definition{Name: k.Name, Enabled: k.Enabled, Permissions: permissionsOf(k)}
}

func createdOf(i *keystore.Issued) createdKey {
	return createdKey{Name: i.Name, Enabled: i.Enabled, Permissions: permissionsOf(&i.Key), Token: i.Token}
}

// permissionsOf never answers null: the schema requires an array.
func permissionsOf(k *keystore.Key) []string {
	if k.Permissions == nil {
		return []string{}
	}
	return slices.Clone(k.Permissions)
}
