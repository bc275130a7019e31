// Package dialect declares the REST dialects the API server serves, as
// one list. Routing, the paths that need no identity (the OpenAPI
// documents), the OpenAPI endpoints and the API server's --help are all
// built from All, so a fourth dialect is one package under
// internal/dialect (shapes only, over keystore.Store, answering through
// httpjson and status as nexus and tenant do) and one line here.
package dialect

import (
	"net/http"

	"github.com/apikey-operator/apikey-operator/internal/dialect/hub"
	"github.com/apikey-operator/apikey-operator/internal/dialect/nexus"
	"github.com/apikey-operator/apikey-operator/internal/dialect/tenant"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Dialect is one REST dialect.
type Dialect struct {
	// Name is short and URL-safe: its document is /openapi/<Name>.json.
	Name string
	// Endpoints is what --help shows a person.
	Endpoints string
	// Patterns are the http.ServeMux patterns routed to the handler,
	// ahead of the Kubernetes filter chain. They cover the dialect's whole
	// subtree, so that a path there which is not an endpoint gets the
	// dialect's own 404, not a Kubernetes Status.
	Patterns []string
	// New returns the handler over a store.
	New func(keystore.Store) http.Handler
	// OpenAPI returns the dialect's OpenAPI document.
	OpenAPI func() []byte
}

// All are the dialects, in the order --help lists them.
var All = []Dialect{
	{Name: "nexus", Endpoints: nexus.BasePath + "[/{id}]", Patterns: []string{nexus.BasePath, nexus.BasePath + "/"}, New: nexus.New, OpenAPI: nexus.OpenAPI},
	{Name: "tenant-admin", Endpoints: "/api/{tenantId}/admin/apiKeys[/{keyName}]", Patterns: []string{"/api/{tenant}/admin", "/api/{tenant}/admin/"}, New: tenant.New, OpenAPI: tenant.OpenAPI},
	{Name: "hub", Endpoints: hub.BasePath + "[/{apikeyId}]", Patterns: []string{"/v1/hubs/"}, New: hub.New, OpenAPI: hub.OpenAPI},
}

// DocumentPath is where a dialect's OpenAPI document is served.
func (d Dialect) DocumentPath() string { return "/openapi/" + d.Name + ".json" }

// DocumentPaths are the paths of every dialect's OpenAPI document: they
// need no identity.
func DocumentPaths() []string {
	paths := make([]string, 0, len(All))
	for _, d := range All {
		paths = append(paths, d.DocumentPath())
	}
	return paths
}
