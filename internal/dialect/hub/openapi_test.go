package hub

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// The OpenAPI document parses, lists every operation, and agrees with
// what the handler answers.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
		Comps   struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	ops := map[string][]string{BasePath: {"get", "post"}, BasePath + "/{apikeyId}": {"delete", "get", "patch"},
		RolesPath: {"get"}, RolesPath + "/{roleId}": {"get"}}
	for path, methods := range ops {
		if got := slices.Sorted(maps.Keys(doc.Paths[path])); !slices.Equal(got, methods) {
			t.Errorf("%s: %v, want %v", path, got, methods)
		}
	}
	key := doc.Comps.Schemas["ApiKey"]
	if !slices.Equal(slices.Sorted(slices.Values(key.Required)), apiKeyFields) || !slices.Equal(slices.Sorted(maps.Keys(key.Properties)), apiKeyFields) {
		t.Errorf("ApiKey schema: %v", key.Required)
	}
	role := doc.Comps.Schemas["Role"]
	for _, f := range roleFields {
		if _, ok := role.Properties[f]; !ok {
			t.Errorf("Role schema lacks %s", f)
		}
	}
	for _, f := range role.Required {
		if !slices.Contains(roleFields, f) {
			t.Errorf("Role requires %s, which the handler does not send", f)
		}
	}
	var codes struct {
		Enum []string `json:"enum"`
	}
	_ = json.Unmarshal(doc.Comps.Schemas["Error"].Properties["code"], &codes)
	if got := slices.Sorted(maps.Keys(titles)); !slices.Equal(got, slices.Sorted(slices.Values(codes.Enum))) {
		t.Errorf("error codes: document %v, handler %v", codes.Enum, got)
	}
}

// Every code the handler answers is in the product's own Error.yml enum,
// and every capability the Role shows in the product's Capability.yml:
// read from the vendored files, not from our document.
func TestCodesAreTheProducts(t *testing.T) {
	errYML, err := os.ReadFile("hubspec/openapi/components/schemas/errors/Error.yml")
	if err != nil {
		t.Fatal(err)
	}
	for code := range titles {
		if !strings.Contains(string(errYML), "\n      - "+code+"\n") {
			t.Errorf("%s is not in the product's Error.yml", code)
		}
	}
	capYML, err := os.ReadFile("hubspec/openapi/components/schemas/common/Capability.yml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(capYML), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "- "); ok {
			if !capabilitySet[strings.Trim(v, `"`)] {
				t.Errorf("capability %s missing from capabilities", v)
			}
			n++
		}
	}
	if n != len(capabilities) {
		t.Errorf("Capability.yml has %d values, capabilities %d", n, len(capabilities))
	}
}

func TestOpenAPIIsACopy(t *testing.T) {
	a := OpenAPI()
	a[0] = 'x'
	if OpenAPI()[0] == 'x' {
		t.Error("OpenAPI returns the embedded bytes")
	}
}
