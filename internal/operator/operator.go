// Package operator assembles the controller manager: the scheme, a cache
// that holds only what the operator owns, and the reconcilers.
package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/controllers"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Options are the controller's settings, bound to command-line flags.
type Options struct {
	MetricsBindAddress      string
	HealthProbeBindAddress  string
	LeaderElect             bool
	LeaderElectionNamespace string
	DefaultKeyLifetime      time.Duration
	TokenPrefix             string
	MaxConcurrentReconciles int
	SyncPeriod              time.Duration
}

// NewOptions returns the defaults of DESIGN.md.
func NewOptions() *Options {
	return &Options{
		MetricsBindAddress:      ":8080",
		HealthProbeBindAddress:  ":8081",
		DefaultKeyLifetime:      365 * 24 * time.Hour,
		TokenPrefix:             token.DefaultPrefix,
		MaxConcurrentReconciles: 4,
		SyncPeriod:              10 * time.Hour,
	}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus metrics endpoint; \"0\" turns it off.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of the /healthz and /readyz probes; \"0\" turns them off.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so that only one replica reconciles at a time (set it when running more than one).")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; default: the pod's namespace.")
	fs.DurationVar(&o.DefaultKeyLifetime, "default-key-lifetime", o.DefaultKeyLifetime, "Lifetime of a key whose spec.expiresAt is unset, counted from its creation.")
	fs.StringVar(&o.TokenPrefix, "token-prefix", o.TokenPrefix, "Prefix of every minted token: 1-16 lower-case letters and digits, starting with a letter.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Number of ApiKeys reconciled in parallel.")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "How often every key is reconciled again even when nothing changed (a safety net; a converged key costs no write).")
}

// Validate reports options that cannot work, saying how to fix them.
func (o *Options) Validate() error {
	if _, err := token.Mint(o.TokenPrefix); err != nil {
		return fmt.Errorf("--token-prefix %q: %w", o.TokenPrefix, err)
	}
	if o.DefaultKeyLifetime <= 0 {
		return fmt.Errorf("--default-key-lifetime must be positive, for example 8760h")
	}
	if o.MaxConcurrentReconciles < 1 {
		return fmt.Errorf("--max-concurrent-reconciles must be at least 1")
	}
	return nil
}

// Scheme knows the built-in types and the ApiKey group.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := keysv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// CacheOptions caches only the Secrets the operator owns, selected by
// label, and drops managedFields from every cached object: the operator
// never reads them, and at 10,000 keys they would be most of its memory.
func CacheOptions(syncPeriod time.Duration) cache.Options {
	owned := labels.SelectorFromSet(labels.Set{keysv1.ManagedByLabel: keysv1.ManagedByValue})
	return cache.Options{
		SyncPeriod:       &syncPeriod,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: owned},
		},
	}
}

// NewManager builds the controller manager with the ApiKey controller.
func NewManager(ctx context.Context, cfg *rest.Config, o *Options) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Cache:                   CacheOptions(o.SyncPeriod),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "apikey-operator.keys.apikey-operator.io",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// Hand over leadership at once on a clean shutdown.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	r := &controllers.ApiKeyReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("apikey-operator"),
		DefaultLifetime:         o.DefaultKeyLifetime,
		TokenPrefix:             o.TokenPrefix,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up apikey controller: %w", err)
	}
	return mgr, nil
}
