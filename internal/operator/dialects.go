package operator

import (
	"github.com/apikey-operator/apikey-operator/internal/apiserver"
	"github.com/apikey-operator/apikey-operator/internal/dialect/hub"
	"github.com/apikey-operator/apikey-operator/internal/dialect/nexus"
	"github.com/apikey-operator/apikey-operator/internal/dialect/tenant"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// dialects are the REST dialects the API server serves over a store.
func dialects(store keystore.Store) apiserver.Dialects {
	return apiserver.Dialects{
		Nexus:       apiserver.Dialect{Handler: nexus.New(store), OpenAPI: nexus.OpenAPI()},
		TenantAdmin: apiserver.Dialect{Handler: tenant.New(store), OpenAPI: tenant.OpenAPI()},
		Hub:         apiserver.Dialect{Handler: hub.New(store), OpenAPI: hub.OpenAPI()},
	}
}
