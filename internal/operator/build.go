// Package operator assembles the operator: one Options struct that owns
// every flag of the binary, and one Build that every command, `make run`
// and every test suite call to get a manager with the components they
// run. docs/architecture.md shows where each component plugs in.
package operator

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/controllers"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/apiserver"
	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/eventbudget"
	"github.com/apikey-operator/apikey-operator/internal/extauthz"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/leak"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/quota"
	"github.com/apikey-operator/apikey-operator/internal/serving"
	"github.com/apikey-operator/apikey-operator/internal/verify"
	"github.com/apikey-operator/apikey-operator/webhook"
	"github.com/apikey-operator/apikey-operator/webhook/certs"
)

// Operator is a built, not yet started, operator process.
type Operator struct {
	ctrl.Manager
	// Reconciler is the ApiKey reconciler; nil unless Components.Controller.
	Reconciler *controllers.ApiKeyReconciler
	// Verify is the verify server; nil unless Components.Verify.
	Verify *verify.Server
	// Rotator renews the webhook's generated certificate; nil unless the
	// webhook runs with generated certificates.
	Rotator *certs.Rotator

	// hashes is the process's one index of keys by token hash, shared
	// by the controller, the webhook, the store and the leak endpoint.
	hashes *hashindex.Index

	// checks are the probes' checks: the probe server is ours
	// (internal/serving), bounded like every listener, so the manager's
	// own is off and AddHealthzCheck/AddReadyzCheck land here.
	checks    serving.Checks
	probeOnce sync.Once
	probe     http.Handler
}

// Hashes returns the process's index of keys by token hash, registering
// it on the ApiKey informer on first use: one index, one event handler,
// whatever components the process runs.
func (op *Operator) Hashes(ctx context.Context) (*hashindex.Index, error) {
	if op.hashes == nil {
		x, err := hashindex.Register(ctx, op.GetCache())
		if err != nil {
			return nil, err
		}
		op.hashes = x
	}
	return op.hashes, nil
}

// AddHealthzCheck adds a liveness check to the probe server.
func (op *Operator) AddHealthzCheck(name string, check healthz.Checker) error {
	return op.checks.AddHealthz(name, check)
}

// AddReadyzCheck adds a readiness check to the probe server.
func (op *Operator) AddReadyzCheck(name string, check healthz.Checker) error {
	return op.checks.AddReadyz(name, check)
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
// Given namespaces, it watches only those (see KeyOptions.WatchNamespaces).
// The API server never reads a Secret, so no Secret informer starts there.
func (o *Options) CacheOptions() cache.Options {
	owned := labels.SelectorFromSet(labels.Set{keysv1.ManagedByLabel: keysv1.ManagedByValue})
	syncPeriod := o.Controller.SyncPeriod
	return cache.Options{
		SyncPeriod:        &syncPeriod,
		DefaultTransform:  cache.TransformStripManagedFields(),
		DefaultNamespaces: namespaceConfigs(o.Keys.WatchNamespaces),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: owned},
		},
	}
}

// Build assembles the given components into one manager sharing one
// cache. The caller validates the options first (Validate) and starts
// the result.
func Build(ctx context.Context, cfg *rest.Config, o *Options, c Components) (*Operator, error) {
	op := &Operator{}
	reg := o.Hooks.Registerer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	var err error
	if o.Connections.Metrics, err = connlimit.NewMetrics(reg); err != nil {
		return nil, fmt.Errorf("connection metrics: %w", err)
	}
	mgrOpts, err := o.managerOptions(c, op)
	if err != nil {
		return nil, err
	}
	if op.Manager, err = ctrl.NewManager(cfg, mgrOpts); err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := o.addServing(op); err != nil {
		return nil, err
	}
	if err := op.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := op.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	for _, step := range []struct {
		on  bool
		add func(context.Context, *Operator) error
	}{
		{c.Controller, o.addController},
		{c.webhook(o), o.addWebhook},
		{c.Verify || c.APIServer, o.addVerify},
		{c.APIServer, o.addExtAuthz},
		{c.APIServer, o.addAPIServer},
		{c.APIServer && o.Leak.Enabled(), o.addLeak},
	} {
		if step.on {
			if err := step.add(ctx, op); err != nil {
				return nil, err
			}
		}
	}
	return op, nil
}

// addServing adds the metrics endpoint and the probes, each on a listener
// bounded by --max-connections and --max-connections-per-address, so a
// flood on any port leaves the kubelet's probes and the scrapes served.
func (o *Options) addServing(op *Operator) error {
	log := ctrl.Log.WithName("serving")
	if a := o.Serving.MetricsBindAddress; a != "0" && a != "" {
		m, err := serving.Metrics(a, o.Serving.MetricsSecure, ctrlmetrics.Registry, op.GetConfig(), op.GetHTTPClient(), o.Connections, log)
		if err != nil {
			return err
		}
		if err := op.Add(m); err != nil {
			return err
		}
	}
	if a := o.Serving.HealthProbeBindAddress; a != "0" && a != "" {
		// The handler is built when the server starts, after every check
		// was added.
		probes := &serving.Server{Name: connlimit.Probes, Address: a, Connections: o.Connections, Log: log,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.probeHandler().ServeHTTP(w, r) })}
		if err := op.Add(probes); err != nil {
			return err
		}
	}
	return nil
}

// probeHandler serves the checks added so far; built once, at the first
// probe (every check is added in Build, before the manager starts).
func (op *Operator) probeHandler() http.Handler {
	op.probeOnce.Do(func() { op.probe = op.checks.Handler() })
	return op.probe
}

// webhook says whether the webhook server runs: the component is asked
// for and --disable-webhooks is not set.
func (c Components) webhook(o *Options) bool { return c.Webhook && !o.Webhook.Disable }

func (o *Options) managerOptions(c Components, op *Operator) (ctrl.Options, error) {
	mo := ctrl.Options{
		Scheme: Scheme(),
		Cache:  o.CacheOptions(),
		// Metrics and probes are served by addServing, on bounded listeners.
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		PprofBindAddress:       o.Serving.PprofBindAddress,
	}
	if c.Controller {
		mo.LeaderElection = o.Controller.LeaderElect
		mo.LeaderElectionID = "apikey-operator.keys.apikey-operator.io"
		mo.LeaderElectionNamespace = o.Controller.LeaderElectionNamespace
		// Hand over leadership at once on a clean shutdown.
		mo.LeaderElectionReleaseOnCancel = true
	}
	if c.webhook(o) {
		var server ctrlwebhook.Server
		var err error
		if server, op.Rotator, err = o.Webhook.server(o.Connections); err != nil {
			return mo, fmt.Errorf("create webhook server: %w", err)
		}
		mo.WebhookServer = server
	}
	if o.Hooks.Manager != nil {
		o.Hooks.Manager(&mo)
	}
	return mo, nil
}

// addController adds the ApiKey reconciler: the only place it is built.
func (o *Options) addController(ctx context.Context, op *Operator) error {
	hashes, err := op.Hashes(ctx)
	if err != nil {
		return err
	}
	reg := o.Hooks.Registerer
	if reg == nil {
		reg = metrics.Registry
	}
	dropped, err := eventbudget.NewDroppedCounter(reg)
	if err != nil {
		return fmt.Errorf("event budget metric: %w", err)
	}
	r := &controllers.ApiKeyReconciler{
		Client:    op.GetClient(),
		APIReader: op.GetAPIReader(),
		// Normal events within a budget: at 10,000 keys the Issued event
		// would be the third write per key (docs/benchmarks.md).
		Recorder:                eventbudget.New(op.GetEventRecorder("apikey-operator"), o.Controller.EventQPS, o.Controller.EventBurst, dropped),
		Clock:                   o.Hooks.Clock,
		DefaultLifetime:         o.Keys.DefaultLifetime,
		TokenPrefix:             o.Keys.TokenPrefix,
		MaxConcurrentReconciles: o.Controller.MaxConcurrentReconciles,
		Hashes:                  hashes,
	}
	if err := r.SetupWithManager(ctx, op); err != nil {
		return fmt.Errorf("set up apikey controller: %w", err)
	}
	op.Reconciler = r
	return nil
}

func (o *Options) addWebhook(ctx context.Context, op *Operator) error {
	hashes, err := op.Hashes(ctx)
	if err != nil {
		return err
	}
	err = webhook.Install(ctx, op, op.Rotator, webhook.Config{
		DefaultLifetime: o.Keys.DefaultLifetime,
		MaxLifetime:     o.Webhook.MaxKeyLifetime,
		Clock:           o.Hooks.Clock,
		Hashes:          hashes,
	})
	if err != nil {
		return fmt.Errorf("set up webhooks: %w", err)
	}
	return nil
}

// addVerify adds the verify server, which reads keys from the shared cache.
func (o *Options) addVerify(ctx context.Context, op *Operator) error {
	if err := o.watch(ctx, op); err != nil {
		return err
	}
	lim, quotas, err := o.limits(op)
	if err != nil {
		return err
	}
	o.Verify.Connections = o.Connections
	vs, err := verify.NewServer(o.Verify, verify.Deps{
		Informers: op.GetCache(), Client: op.GetClient(), APIReader: op.GetAPIReader(), Registerer: o.Hooks.Registerer, Clock: o.Hooks.Clock,
		Limits: lim,
		Quotas: quotas,
	})
	if err != nil {
		return fmt.Errorf("verify server: %w", err)
	}
	if err := op.Add(vs); err != nil {
		return err
	}
	op.Verify = vs
	return op.AddReadyzCheck("verify-index", vs.ReadyzCheck)
}

// limits is where the keys' rate limits and quotas are counted: in Redis
// for the whole cluster under --limits-redis-url, else in each replica,
// which enforces its share of each rate limit under
// --limits-verify-service and counts quotas only while it is the one
// replica.
func (o *Options) limits(op *Operator) (limits.Provider, quota.Provider, error) {
	local := limits.Local{}
	if o.Limits.VerifyService != "" {
		cs, err := kubernetes.NewForConfig(op.GetConfig())
		if err != nil {
			return nil, nil, fmt.Errorf("count verify replicas: %w", err)
		}
		replicas, err := limits.NewReplicas(cs, o.Limits.VerifyService, ctrl.Log.WithName("limits"))
		if err != nil {
			return nil, nil, err
		}
		if err := op.Add(replicas); err != nil {
			return nil, nil, err
		}
		local.Replicas = replicas.Count()
	}
	if o.Limits.RedisURL == "" {
		return local, quota.Local{Replicas: local.Replicas}, nil
	}
	reg := o.Hooks.Registerer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	shared, err := limits.NewShared(o.Limits, local, reg, ctrl.Log.WithName("limits"))
	if err != nil {
		return nil, nil, fmt.Errorf("shared rate limits: %w", err)
	}
	if err := op.Add(shared); err != nil {
		return nil, nil, err
	}
	// /readyz/limits-redis says whether this replica's limits are shared;
	// the whole /readyz stays ready while Redis is down (see ReadyzCheck).
	if err := op.AddReadyzCheck(limits.ReadyzCheckName, shared.ReadyzCheck); err != nil {
		return nil, nil, err
	}
	quotas, err := quota.NewShared(shared, local.Replicas, reg)
	if err != nil {
		return nil, nil, fmt.Errorf("shared quotas: %w", err)
	}
	return shared, quotas, nil
}

// addExtAuthz adds the gRPC ext_authz server over verify's core; it runs
// in the API server process, beside the HTTP verify endpoints.
func (o *Options) addExtAuthz(_ context.Context, op *Operator) error {
	o.ExtAuthz.Connections = o.Connections
	ea, err := extauthz.NewServer(o.ExtAuthz, extauthz.FromVerify(op.Verify), ctrl.Log.WithName("extauthz"))
	if err != nil {
		return fmt.Errorf("gRPC ext_authz server: %w", err)
	}
	return op.Add(ea)
}

// watch registers the informers the API server and verify read, so the
// cache syncs them before any request needs them. Namespaces are cached
// only when all are served.
func (o *Options) watch(ctx context.Context, op *Operator) error {
	watched := []client.Object{&keysv1.ApiKey{}, &keysv1.ApiKeyRole{}, &keysv1.ApiConsumer{}}
	if len(o.Keys.WatchNamespaces) == 0 {
		watched = append(watched, &corev1.Namespace{})
	}
	for _, obj := range watched {
		if _, err := op.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	return nil
}

// addAPIServer adds the aggregated API and the REST dialects over the
// Kubernetes-backed key store.
func (o *Options) addAPIServer(ctx context.Context, op *Operator) error {
	o.APIServer.Connections = o.Connections
	hashes, err := op.Hashes(ctx)
	if err != nil {
		return err
	}
	cfg, err := o.APIServer.Config()
	if err != nil {
		return err
	}
	store := &keystore.Kube{
		Cache:           newWatchedNamespaces(op.GetCache(), op.GetAPIReader(), o.Keys.WatchNamespaces),
		Client:          op.GetClient(),
		Authorizer:      &access.Authorizer{Kubernetes: cfg.Authorization.Authorizer},
		DefaultLifetime: o.Keys.DefaultLifetime,
		TokenPrefix:     o.Keys.TokenPrefix,
		// Lists page from an index kept from the ApiKey informer.
		Informers: op.GetCache(),
		Recorder:  op.GetEventRecorder("apikey-operator-apiserver"),
		Hashes:    hashes,
		// A retried create waits out another process's write deadline.
		WriteTimeout: o.APIServer.WriteTimeout,
	}
	srv, err := apiserver.New(cfg, apiserver.Verification{Verifier: op.Verify.Verifier(), AnyNamespace: o.Verify.AnyNamespace},
		apiserver.Dialects{WriteTimeout: o.APIServer.WriteTimeout}, store)
	if err != nil {
		return err
	}
	return op.Add(srv)
}

// addLeak adds the leak endpoint: reports of tokens found in public,
// verified against the reporter's published keys, acted on through the
// keys' own means (docs/leaks.md).
func (o *Options) addLeak(ctx context.Context, op *Operator) error {
	o.Leak.Connections = o.Connections
	hashes, err := op.Hashes(ctx)
	if err != nil {
		return err
	}
	reaction, err := leak.ParseReaction(o.Leak.Reaction)
	if err != nil {
		return fmt.Errorf("--leak-reaction: %w", err)
	}
	log := ctrl.Log.WithName("leak")
	reg := o.Hooks.Registerer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	srv, err := leak.NewServer(o.Leak, leak.Deps{
		Keys: &leak.HTTPKeySet{URL: o.Leak.GitHubKeysURL, MaxAge: o.Leak.GitHubKeysMaxAge, MinRefetch: o.Leak.GitHubKeysMinRefetch},
		Revoker: &leak.Kube{
			Hashes: hashes, Client: op.GetClient(), Reader: op.GetAPIReader(), Recorder: op.GetEventRecorder("apikey-operator-leak"),
			Default: reaction, Log: log,
		},
		Registerer: reg,
		Log:        log,
	})
	if err != nil {
		return fmt.Errorf("leak endpoint: %w", err)
	}
	return op.Add(srv)
}
