package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/apiserver"
	"github.com/apikey-operator/apikey-operator/internal/dialect/hub"
	"github.com/apikey-operator/apikey-operator/internal/dialect/nexus"
	"github.com/apikey-operator/apikey-operator/internal/dialect/tenant"
	"github.com/apikey-operator/apikey-operator/internal/extauthz"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// APIServerOptions are the settings of the API server process: the REST
// dialects, the aggregated API and the verify endpoints. What it may do
// with the Kubernetes API is in package rbac beside this one.
type APIServerOptions struct {
	Server             *apiserver.Options
	Verify             *verify.Options
	ExtAuthz           *extauthz.Options
	DefaultKeyLifetime time.Duration
	TokenPrefix        string
	// WatchNamespaces are the namespaces (tenants, hubs) served; empty
	// means all. See watchedNamespaces.
	WatchNamespaces []string
}

// NewAPIServerOptions returns the defaults of DESIGN.md.
func NewAPIServerOptions() *APIServerOptions {
	return &APIServerOptions{
		Server:             apiserver.NewOptions(),
		Verify:             verify.NewOptions(),
		ExtAuthz:           extauthz.NewOptions(),
		DefaultKeyLifetime: 365 * 24 * time.Hour,
		TokenPrefix:        token.DefaultPrefix,
	}
}

// AddFlags binds the options to a flag set. shared is false when the
// controller's options, which hold the same two settings, are bound too.
func (o *APIServerOptions) AddFlags(fs *pflag.FlagSet, shared bool) {
	o.Server.AddFlags(fs)
	o.Verify.AddFlags(fs)
	o.ExtAuthz.AddFlags(fs)
	if shared {
		fs.DurationVar(&o.DefaultKeyLifetime, "default-key-lifetime", o.DefaultKeyLifetime, "Lifetime of a key created through a REST dialect without an expiry.")
		fs.StringVar(&o.TokenPrefix, "token-prefix", o.TokenPrefix, "Prefix of every token the API server mints: 1-16 lower-case letters and digits, starting with a letter.")
		AddWatchNamespacesFlag(fs, &o.WatchNamespaces)
	}
}

// Validate reports options that cannot work.
func (o *APIServerOptions) Validate() error {
	if err := o.Server.Validate(); err != nil {
		return err
	}
	if err := o.Verify.Validate(); err != nil {
		return err
	}
	if err := o.ExtAuthz.Validate(); err != nil {
		return err
	}
	if _, err := token.Mint(o.TokenPrefix); err != nil {
		return fmt.Errorf("--token-prefix %q: %w", o.TokenPrefix, err)
	}
	return ValidateWatchNamespaces(o.WatchNamespaces)
}

// APIServerCacheOptions cache ApiKeys, roles and namespaces, and no Secret:
// the API server writes Secrets but never reads one. Given namespaces, it
// watches only those.
func APIServerCacheOptions(namespaces ...string) cache.Options {
	return cache.Options{
		DefaultTransform:  cache.TransformStripManagedFields(),
		DefaultNamespaces: namespaceConfigs(namespaces),
	}
}

// NewAPIServerManager builds the stateless API server process: no leader
// election, every replica serves.
func NewAPIServerManager(ctx context.Context, cfg *rest.Config, o *APIServerOptions, metricsAddr string, metricsSecure bool, probeAddr string) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme(),
		Cache:                  APIServerCacheOptions(o.WatchNamespaces...),
		Metrics:                MetricsServer(metricsAddr, metricsSecure),
		HealthProbeBindAddress: probeAddr,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, AddAPIServer(ctx, mgr, o)
}

// AddAPIServer adds the verify server and the API server to a manager,
// sharing its cache. With o.WatchNamespaces the manager's cache must be
// restricted to the same namespaces.
func AddAPIServer(ctx context.Context, mgr ctrl.Manager, o *APIServerOptions) error {
	if err := keystore.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	// Register the informers now, so the cache syncs them before any
	// request needs them. Namespaces are cached only when all are served.
	watched := []client.Object{&keysv1.ApiKey{}, &keysv1.ApiKeyRole{}}
	if len(o.WatchNamespaces) == 0 {
		watched = append(watched, &corev1.Namespace{})
	}
	for _, obj := range watched {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	vs, err := verify.NewServer(o.Verify, verify.Deps{Informers: mgr.GetCache(), Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()})
	if err != nil {
		return fmt.Errorf("verify server: %w", err)
	}
	if err := mgr.Add(vs); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("verify-index", vs.ReadyzCheck); err != nil {
		return err
	}
	ea, err := extauthz.NewServer(o.ExtAuthz, extauthz.FromVerify(vs), ctrl.Log.WithName("extauthz"))
	if err != nil {
		return fmt.Errorf("gRPC ext_authz server: %w", err)
	}
	if err := mgr.Add(ea); err != nil {
		return err
	}
	cfg, err := o.Server.Config()
	if err != nil {
		return err
	}
	store := &keystore.Kube{
		Cache:           newWatchedNamespaces(mgr.GetCache(), mgr.GetAPIReader(), o.WatchNamespaces),
		Client:          mgr.GetClient(),
		Authorizer:      &access.Authorizer{Kubernetes: cfg.Authorization.Authorizer},
		DefaultLifetime: o.DefaultKeyLifetime,
		TokenPrefix:     o.TokenPrefix,
		// Lists page from an index kept from the ApiKey informer.
		Informers: mgr.GetCache(),
		Recorder:  mgr.GetEventRecorder("apikey-operator-apiserver"),
	}
	srv, err := apiserver.New(cfg, apiserver.Verification{Verifier: vs.Verifier(), AnyNamespace: o.Verify.AnyNamespace}, apiserver.Dialects{
		Nexus:       apiserver.Dialect{Handler: nexus.New(store), OpenAPI: nexus.OpenAPI()},
		TenantAdmin: apiserver.Dialect{Handler: tenant.New(store), OpenAPI: tenant.OpenAPI()},
		Hub:         apiserver.Dialect{Handler: hub.New(store), OpenAPI: hub.OpenAPI()},
	})
	if err != nil {
		return err
	}
	return mgr.Add(srv)
}
