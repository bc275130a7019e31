package operator

import (
	"errors"
	goflag "flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/apiserver"
	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/extauthz"
	"github.com/apikey-operator/apikey-operator/internal/leak"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Components say which parts of the operator one process runs. Every
// command, `make run` and every test suite pick a set and hand it, with
// one Options, to Build: there is no other way to assemble the operator.
type Components struct {
	// Controller is the ApiKey reconciler, behind leader election.
	Controller bool
	// Webhook is the admission webhook server; --disable-webhooks turns
	// it off at run time.
	Webhook bool
	// APIServer is the aggregated API and the REST dialects. It answers
	// ApiKeyReviews with the verify server's verifier, so it needs Verify.
	APIServer bool
	// Verify is the verify and forward-auth endpoints.
	Verify bool
}

// The processes the binary runs, one per command.
var (
	ControllerProcess = Components{Controller: true, Webhook: true}
	APIServerProcess  = Components{APIServer: true, Verify: true}
	AllInOne          = Components{Controller: true, Webhook: true, APIServer: true, Verify: true}
)

// Options are every setting of the binary, each bound to one flag. A new
// capability adds one field here and one section in Flags; Validate and
// Build pick it up from there.
type Options struct {
	Kube       KubeOptions
	Log        zap.Options
	Keys       KeyOptions
	Controller ControllerOptions
	Webhook    WebhookOptions
	APIServer  *apiserver.Options
	Verify     *verify.Options
	Limits     *limits.Options
	ExtAuthz   *extauthz.Options
	Leak       *leak.Options
	// Connections bounds every listener of the process, each counted
	// separately: verify, the API server, gRPC ext_authz, leak, the
	// webhook, metrics and the probes all take their limits from this
	// one value.
	Connections *connlimit.Options
	Serving     ServingOptions

	// Hooks replace parts of the operator in tests; they are not flags,
	// and the zero value is production.
	Hooks Hooks
}

// KubeOptions say how every component reaches Kubernetes.
type KubeOptions struct {
	Kubeconfig string
	QPS        float32
	Burst      int
}

// KeyOptions are the facts about keys that every component must agree
// on: the controller, the webhook and the REST dialects all mint or
// default keys, so these are bound once and shared.
type KeyOptions struct {
	// DefaultLifetime is the life of a key whose spec.expiresAt is unset.
	DefaultLifetime time.Duration
	// TokenPrefix starts every minted token.
	TokenPrefix string
	// WatchNamespaces restricts the cache, and so every watch, to these
	// namespaces; empty means all. With it the operator needs only Roles
	// in those namespaces (docs/install.md).
	WatchNamespaces []string
}

// ControllerOptions are the reconciler's settings.
type ControllerOptions struct {
	LeaderElect             bool
	LeaderElectionNamespace string
	MaxConcurrentReconciles int
	SyncPeriod              time.Duration
	// EventQPS and EventBurst bound the Normal events the controller
	// sends (internal/eventbudget); EventQPS < 0: no bound.
	EventQPS   float64
	EventBurst int
}

// ServingOptions are the manager's own endpoints.
type ServingOptions struct {
	MetricsBindAddress string
	// MetricsSecure serves metrics over HTTPS, each request authenticated
	// (TokenReview) and authorised (SubjectAccessReview: get /metrics).
	MetricsSecure          bool
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's net/http/pprof profiles, plain HTTP
	// and unauthenticated; "" or "0" (the default): off. For measuring
	// (make bench-scale takes heap profiles through it), not production.
	PprofBindAddress string
}

// Hooks let tests observe or steer the operator without a second way of
// building it.
type Hooks struct {
	// Manager adjusts the manager's options before it is created, for
	// example to count or fail the client's writes.
	Manager func(*ctrl.Options)
	// Clock tells the controller, the webhook and verify the time.
	Clock clock.PassiveClock
	// Registerer receives verify's metrics; default the manager's.
	Registerer prometheus.Registerer
}

// NewOptions returns the defaults of DESIGN.md.
func NewOptions() *Options {
	return &Options{
		Kube: KubeOptions{QPS: -1, Burst: 100},
		Keys: KeyOptions{
			DefaultLifetime: 365 * 24 * time.Hour,
			TokenPrefix:     token.DefaultPrefix,
		},
		Controller: ControllerOptions{
			MaxConcurrentReconciles: 4,
			SyncPeriod:              10 * time.Hour,
			EventQPS:                10,
			EventBurst:              100,
		},
		Webhook: WebhookOptions{
			Port:             9443,
			ServiceName:      "apikey-operator-webhook-service",
			MutatingConfig:   "apikey-operator-mutating-webhook-configuration",
			ValidatingConfig: "apikey-operator-validating-webhook-configuration",
		},
		APIServer:   apiserver.NewOptions(),
		Verify:      verify.NewOptions(),
		Limits:      limits.NewOptions(),
		ExtAuthz:    extauthz.NewOptions(),
		Leak:        leak.NewOptions(),
		Connections: connlimit.NewOptions(),
		Serving: ServingOptions{
			MetricsBindAddress:     ":8080",
			MetricsSecure:          true,
			HealthProbeBindAddress: ":8081",
		},
	}
}

// Flags binds the options of the given components, in named sections
// that --help prints one after the other.
func (o *Options) Flags(c Components) cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.Kube.addFlags(fss.FlagSet("Kubernetes connection"))
	o.Keys.addFlags(fss.FlagSet("keys"))
	if c.Controller {
		o.Controller.addFlags(fss.FlagSet("controller"))
	}
	if c.Webhook {
		o.Webhook.AddFlags(fss.FlagSet("admission webhook"))
	}
	if c.APIServer {
		o.APIServer.AddFlags(fss.FlagSet("API server (REST dialects, ApiKeyReview, delegated authentication and authorization)"))
	}
	if c.Verify {
		o.Verify.AddFlags(fss.FlagSet("verify endpoints"))
		o.Limits.AddFlags(fss.FlagSet("rate limits (cluster-wide through Redis)"))
	}
	if c.APIServer {
		o.ExtAuthz.AddFlags(fss.FlagSet("Envoy ext_authz (gRPC, for Envoy, Envoy Gateway and Istio)"))
		o.Leak.AddFlags(fss.FlagSet("leak endpoint (secret scanners' reports of tokens found in public)"))
	}
	o.Connections.AddFlags(fss.FlagSet("connections (each listener: verify, api, ext-authz, leak, webhook, metrics, probes)"))
	fs := fss.FlagSet("metrics and probes")
	fs.StringVar(&o.Serving.MetricsBindAddress, "metrics-bind-address", o.Serving.MetricsBindAddress, "Address of the Prometheus metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.Serving.MetricsSecure, "metrics-secure", o.Serving.MetricsSecure, "Serve metrics over HTTPS (a self-signed certificate), answering only callers whose bearer token passes a TokenReview and who may get the non-resource URL /metrics (SubjectAccessReview; the chart's and config/rbac's metrics-reader ClusterRole grants it). The process's ServiceAccount needs create on tokenreviews and subjectaccessreviews (system:auth-delegator; the chart and config/ bind it). --metrics-secure=false serves plain HTTP to anyone who reaches the port: only for a local run (make run does so on 127.0.0.1).")
	fs.StringVar(&o.Serving.HealthProbeBindAddress, "health-probe-bind-address", o.Serving.HealthProbeBindAddress, "Address of the /healthz and /readyz probes; \"0\" turns them off.")
	fs.StringVar(&o.Serving.PprofBindAddress, "pprof-bind-address", o.Serving.PprofBindAddress, "Address of Go's /debug/pprof profiles (plain HTTP, no authentication: bind it to 127.0.0.1); \"\" or \"0\" (the default) turns them off. For measuring memory and CPU, not for production.")
	gofs := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	o.Log.BindFlags(gofs)
	fss.FlagSet("logging").AddGoFlagSet(gofs)
	return fss
}

func (o *KubeOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Sustained requests per second to the Kubernetes API, per resource type; negative: no client-side limit, the API server's Priority and Fairness queues the requests instead (controller-runtime's default). A limit below the server's write rate slows bulk key creation (docs/benchmarks.md).")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of requests to the Kubernetes API above --kube-api-qps; unused while --kube-api-qps is negative.")
}

func (o *KeyOptions) addFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.DefaultLifetime, "default-key-lifetime", o.DefaultLifetime, "Lifetime of a key whose spec.expiresAt is unset (or created through a REST dialect without an expiry), counted from its creation.")
	fs.StringVar(&o.TokenPrefix, "token-prefix", o.TokenPrefix, "Prefix of every minted token: 1-16 lower-case letters and digits, starting with a letter.")
	AddWatchNamespacesFlag(fs, &o.WatchNamespaces)
}

func (o *ControllerOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so that only one replica reconciles at a time (set it when running more than one).")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; default: the pod's namespace.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Number of ApiKeys reconciled in parallel.")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "How often every key is reconciled again even when nothing changed (a safety net; a converged key costs no write).")
	fs.Float64Var(&o.EventQPS, "event-qps", o.EventQPS, "Normal events (Issued, Rotated, Expired, ...) the controller sends per second beyond --event-burst; the rest of a burst is not sent, counted in apikey_events_dropped_total, and stays readable in each key's status (issuedAt, lastRotatedAt, the Ready condition). Warning events are always sent. Negative: send every event (each is one more API write per key; docs/benchmarks.md).")
	fs.IntVar(&o.EventBurst, "event-burst", o.EventBurst, "Normal events the controller may send at once before --event-qps applies.")
}

// Complete fills in what follows from other settings: the API server's
// delegated authentication and authorisation use the operator's own
// kubeconfig when no other is given, since outside a cluster there is no
// in-cluster configuration to fall back to.
func (o *Options) Complete() {
	if o.Kube.Kubeconfig == "" {
		return
	}
	if o.APIServer.Authentication.RemoteKubeConfigFile == "" {
		o.APIServer.Authentication.RemoteKubeConfigFile = o.Kube.Kubeconfig
	}
	if o.APIServer.Authorization.RemoteKubeConfigFile == "" {
		o.APIServer.Authorization.RemoteKubeConfigFile = o.Kube.Kubeconfig
	}
}

// Validate reports every setting of the given components that cannot
// work, all at once, each naming its flag and the fix.
func (o *Options) Validate(c Components) error {
	errs := []error{o.Keys.validate()}
	if c.Controller {
		errs = append(errs, o.Controller.validate())
	}
	if c.Webhook {
		errs = append(errs, o.Webhook.Validate())
	}
	if c.APIServer {
		errs = append(errs, o.APIServer.Validate(), o.ExtAuthz.Validate(), o.Leak.Validate())
	}
	if c.Verify {
		errs = append(errs, o.Verify.Validate(), o.Limits.Validate())
	}
	errs = append(errs, o.Connections.Validate())
	return errors.Join(errs...)
}

func (o *KeyOptions) validate() error {
	var errs []error
	if _, err := token.Mint(o.TokenPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--token-prefix %q: %w", o.TokenPrefix, err))
	}
	if o.DefaultLifetime <= 0 {
		errs = append(errs, errors.New("--default-key-lifetime must be positive, for example 8760h"))
	}
	return errors.Join(append(errs, ValidateWatchNamespaces(o.WatchNamespaces))...)
}

func (o *ControllerOptions) validate() error {
	var errs []error
	if o.MaxConcurrentReconciles < 1 {
		errs = append(errs, errors.New("--max-concurrent-reconciles must be at least 1"))
	}
	if o.EventQPS >= 0 && o.EventBurst < 1 {
		errs = append(errs, fmt.Errorf("--event-burst must be at least 1 while --event-qps is not negative (it is %v); set --event-qps -1 to send every event", o.EventQPS))
	}
	return errors.Join(errs...)
}

// RestConfig loads the kubeconfig the flags name.
func (o *KubeOptions) RestConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (set --kubeconfig or $KUBECONFIG, or run in a pod): %w", err)
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	return cfg, nil
}
