// Package operator assembles the controller manager: the scheme, a cache
// that holds only what the operator owns, the reconcilers, and the
// admission webhooks with their certificates.
package operator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/controllers"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/webhook"
	"github.com/apikey-operator/apikey-operator/webhook/certs"
)

// Options are the controller's settings, bound to command-line flags.
type Options struct {
	MetricsBindAddress string
	// MetricsSecure serves metrics over HTTPS, each request authenticated
	// (TokenReview) and authorised (SubjectAccessReview: get /metrics).
	MetricsSecure           bool
	HealthProbeBindAddress  string
	LeaderElect             bool
	LeaderElectionNamespace string
	DefaultKeyLifetime      time.Duration
	TokenPrefix             string
	MaxConcurrentReconciles int
	SyncPeriod              time.Duration
	// WatchNamespaces restricts the cache, and so every watch, to these
	// namespaces; empty means all. With it the controller needs only
	// Roles in those namespaces (docs/install.md).
	WatchNamespaces []string

	Webhook WebhookOptions
}

// WebhookOptions configure the admission webhook server (webhook/).
type WebhookOptions struct {
	Disable        bool
	Host           string
	Port           int
	CertDir        string
	MaxKeyLifetime time.Duration
	// ServiceName and ServiceNamespace name the Service the API server
	// reaches the webhooks through; generated certificates are issued for
	// it unless CertHosts says otherwise.
	ServiceName      string
	ServiceNamespace string
	CertHosts        []string
	MutatingConfig   string
	ValidatingConfig string
}

// NewOptions returns the defaults of DESIGN.md.
func NewOptions() *Options {
	return &Options{
		MetricsBindAddress:      ":8080",
		MetricsSecure:           false,
		HealthProbeBindAddress:  ":8081",
		DefaultKeyLifetime:      365 * 24 * time.Hour,
		TokenPrefix:             token.DefaultPrefix,
		MaxConcurrentReconciles: 4,
		SyncPeriod:              10 * time.Hour,
		Webhook: WebhookOptions{
			Port:             9443,
			ServiceName:      "apikey-operator-webhook-service",
			MutatingConfig:   "apikey-operator-mutating-webhook-configuration",
			ValidatingConfig: "apikey-operator-validating-webhook-configuration",
		},
	}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus metrics endpoint; \"0\" turns it off.")
	AddMetricsSecureFlag(fs, &o.MetricsSecure)
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of the /healthz and /readyz probes; \"0\" turns them off.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so that only one replica reconciles at a time (set it when running more than one).")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; default: the pod's namespace.")
	fs.DurationVar(&o.DefaultKeyLifetime, "default-key-lifetime", o.DefaultKeyLifetime, "Lifetime of a key whose spec.expiresAt is unset, counted from its creation.")
	fs.StringVar(&o.TokenPrefix, "token-prefix", o.TokenPrefix, "Prefix of every minted token: 1-16 lower-case letters and digits, starting with a letter.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Number of ApiKeys reconciled in parallel.")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "How often every key is reconciled again even when nothing changed (a safety net; a converged key costs no write).")
	AddWatchNamespacesFlag(fs, &o.WatchNamespaces)
	o.Webhook.AddFlags(fs)
}

// AddFlags binds the webhook options to a flag set.
func (o *WebhookOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Disable, "disable-webhooks", o.Disable, "Run without the admission webhook server (no defaults, lifetime policy or cross-object checks); for local runs and tests without webhook configurations.")
	fs.StringVar(&o.Host, "webhook-host", o.Host, "Address the admission webhook server listens on; default: all.")
	fs.IntVar(&o.Port, "webhook-port", o.Port, "Port of the admission webhook server (TLS).")
	fs.StringVar(&o.CertDir, "webhook-cert-dir", o.CertDir, "Directory with tls.crt and tls.key for the webhook server (for example mounted from a cert-manager Certificate), reloaded when they change. Empty: the operator generates and rotates its own and writes its CA into the webhook configurations.")
	fs.DurationVar(&o.MaxKeyLifetime, "max-key-lifetime", o.MaxKeyLifetime, "Longest an ApiKey may live, from its creation to spec.expiresAt; 0: no limit. The Namespace annotation keys.apikey-operator.io/max-key-lifetime can only lower it.")
	fs.StringVar(&o.ServiceName, "webhook-service-name", o.ServiceName, "Service in front of the webhook server; generated certificates are issued for <name>.<namespace>.svc.")
	fs.StringVar(&o.ServiceNamespace, "webhook-service-namespace", o.ServiceNamespace, "Namespace of that Service; default: $POD_NAMESPACE, else the pod's service-account namespace.")
	fs.StringSliceVar(&o.CertHosts, "webhook-cert-hosts", o.CertHosts, "DNS names and IP addresses for generated certificates, replacing the Service's names.")
	fs.StringVar(&o.MutatingConfig, "mutating-webhook-configuration", o.MutatingConfig, "MutatingWebhookConfiguration whose caBundle receives the generated CA; \"\" skips it.")
	fs.StringVar(&o.ValidatingConfig, "validating-webhook-configuration", o.ValidatingConfig, "ValidatingWebhookConfiguration whose caBundle receives the generated CA; \"\" skips it.")
}

// Validate reports webhook options that cannot work.
func (o *WebhookOptions) Validate() error {
	if o.MaxKeyLifetime < 0 {
		return fmt.Errorf("--max-key-lifetime must be 0 (no limit) or positive, for example 2160h")
	}
	if o.Disable {
		return nil
	}
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("--webhook-port must be between 1 and 65535")
	}
	if o.CertDir != "" {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(o.CertDir, f)); err != nil {
				return fmt.Errorf("--webhook-cert-dir %q must hold tls.crt and tls.key: %w", o.CertDir, err)
			}
		}
		return nil
	}
	if len(o.CertHosts) == 0 && (o.ServiceName == "" || o.serviceNamespace() == "") {
		return fmt.Errorf("generated webhook certificates need --webhook-service-name and --webhook-service-namespace (or $POD_NAMESPACE), or --webhook-cert-hosts; or mount certificates with --webhook-cert-dir")
	}
	return nil
}

// serviceNamespace is the flag, else the pod's namespace.
func (o *WebhookOptions) serviceNamespace() string {
	if o.ServiceNamespace != "" {
		return o.ServiceNamespace
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// certHosts are the names the API server dials the webhook Service at.
func (o *WebhookOptions) certHosts() []string {
	if len(o.CertHosts) > 0 {
		return o.CertHosts
	}
	svc, ns := o.ServiceName, o.serviceNamespace()
	return []string{svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local", svc + "." + ns, svc}
}

func (o *WebhookOptions) server() (ctrlwebhook.Server, *certs.Rotator, error) {
	return webhook.NewServer(webhook.ServerOptions{
		Host:    o.Host,
		Port:    o.Port,
		CertDir: o.CertDir,
		Certs: certs.Config{
			Hosts:                          o.certHosts(),
			MutatingWebhookConfiguration:   o.MutatingConfig,
			ValidatingWebhookConfiguration: o.ValidatingConfig,
		},
	})
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
	if err := ValidateWatchNamespaces(o.WatchNamespaces); err != nil {
		return err
	}
	return o.Webhook.Validate()
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
// Given namespaces, it watches only those (see WatchNamespaces).
func CacheOptions(syncPeriod time.Duration, namespaces ...string) cache.Options {
	owned := labels.SelectorFromSet(labels.Set{keysv1.ManagedByLabel: keysv1.ManagedByValue})
	return cache.Options{
		SyncPeriod:        &syncPeriod,
		DefaultTransform:  cache.TransformStripManagedFields(),
		DefaultNamespaces: namespaceConfigs(namespaces),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: owned},
		},
	}
}

// NewManager builds the controller manager with the ApiKey controller and,
// unless disabled, the admission webhooks.
func NewManager(ctx context.Context, cfg *rest.Config, o *Options) (ctrl.Manager, error) {
	var webhookServer ctrlwebhook.Server
	var rotator *certs.Rotator
	if !o.Webhook.Disable {
		var err error
		if webhookServer, rotator, err = o.Webhook.server(); err != nil {
			return nil, fmt.Errorf("create webhook server: %w", err)
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           webhookServer,
		Scheme:                  Scheme(),
		Cache:                   CacheOptions(o.SyncPeriod, o.WatchNamespaces...),
		Metrics:                 MetricsServer(o.MetricsBindAddress, o.MetricsSecure),
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
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("apikey-operator"),
		DefaultLifetime:         o.DefaultKeyLifetime,
		TokenPrefix:             o.TokenPrefix,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("set up apikey controller: %w", err)
	}
	if !o.Webhook.Disable {
		err := webhook.Install(ctx, mgr, rotator, webhook.Config{
			DefaultLifetime: o.DefaultKeyLifetime,
			MaxLifetime:     o.Webhook.MaxKeyLifetime,
		})
		if err != nil {
			return nil, fmt.Errorf("set up webhooks: %w", err)
		}
	}
	return mgr, nil
}

// AddMetricsSecureFlag binds --metrics-secure.
func AddMetricsSecureFlag(fs *pflag.FlagSet, secure *bool) {
	fs.BoolVar(secure, "metrics-secure", *secure, "Serve metrics over HTTPS (a self-signed certificate), answering only callers whose bearer token passes a TokenReview and who may get the non-resource URL /metrics (SubjectAccessReview). The component's ServiceAccount then needs create on tokenreviews and subjectaccessreviews (system:auth-delegator). Off by default for now: the chart and config/default still scrape plain HTTP.")
}

// MetricsServer is the metrics endpoint: with secure, HTTPS and
// controller-runtime's authentication and authorisation filter, as
// kubebuilder's scaffold serves it, so metrics (key names, namespaces,
// usage) are not open to whatever reaches the pod.
func MetricsServer(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if secure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}
