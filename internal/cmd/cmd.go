// Package cmd is the command line of the apikey-operator binary: one
// subcommand per component, each with complete --help.
package cmd

import (
	"context"
	goflag "flag"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/operator"
)

// New returns the root command.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:   "apikey-operator",
		Short: "Manage API keys declaratively on Kubernetes",
		Long: `apikey-operator manages API keys as Kubernetes resources (ApiKey, ApiKeyRole).
It mints each key's token into a Secret and keeps only its SHA-256 hash in
the ApiKey's status.

Run one component per subcommand.`,
		SilenceUsage: true,
	}
	root.AddCommand(newControllerCommand(), newAPIServerCommand(), newAllCommand())
	return root
}

// connection holds the flags every component uses to reach Kubernetes.
type connection struct {
	kubeconfig string
	qps        float32
	burst      int
	zap        zap.Options
}

func (c *connection) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account.")
	fs.Float32Var(&c.qps, "kube-api-qps", -1, "Sustained requests per second to the Kubernetes API, per resource type; negative: no client-side limit, the API server's Priority and Fairness queues the requests instead (controller-runtime's default). A limit below the server's write rate slows bulk key creation (docs/benchmarks.md).")
	fs.IntVar(&c.burst, "kube-api-burst", 100, "Burst of requests to the Kubernetes API above --kube-api-qps; unused while --kube-api-qps is negative.")
	gofs := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	c.zap.BindFlags(gofs)
	fs.AddGoFlagSet(gofs)
}

// restConfig loads the kubeconfig the flags name.
func (c *connection) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (set --kubeconfig or $KUBECONFIG, or run in a pod): %w", err)
	}
	cfg.QPS, cfg.Burst = c.qps, c.burst
	return cfg, nil
}

func (c *connection) setupLogging() {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap)))
}

// run is what every component does once its options are valid: log,
// connect, build its manager, and run it until SIGTERM or Ctrl-C.
func (c *connection) run(build func(context.Context, *rest.Config) (ctrl.Manager, error)) error {
	c.setupLogging()
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func newControllerCommand() *cobra.Command {
	conn := &connection{}
	opts := operator.NewOptions()
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: mint keys into Secrets, rotate and expire them",
		Long: `Run the ApiKey controller. For each ApiKey it creates the Secret that holds
the token (data key "api-key"), records the token's hash, prefix and dates in
status, rotates the token on request or on schedule, and marks the key not
Ready when it is expired, disabled or its role is missing.

It caches only the Secrets it owns (label app.kubernetes.io/managed-by=apikey-operator).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Validate(); err != nil {
				return err
			}
			return conn.run(func(ctx context.Context, cfg *rest.Config) (ctrl.Manager, error) {
				return operator.NewManager(ctx, cfg, opts)
			})
		},
	}
	conn.addFlags(cmd.Flags())
	opts.AddFlags(cmd.Flags())
	return cmd
}

// delegateTo makes the delegated authentication and authorisation use the
// operator's own kubeconfig when no other is given: outside a cluster
// there is no in-cluster configuration to fall back to.
func (c *connection) delegateTo(o *operator.APIServerOptions) {
	if c.kubeconfig == "" {
		return
	}
	if o.Server.Authentication.RemoteKubeConfigFile == "" {
		o.Server.Authentication.RemoteKubeConfigFile = c.kubeconfig
	}
	if o.Server.Authorization.RemoteKubeConfigFile == "" {
		o.Server.Authorization.RemoteKubeConfigFile = c.kubeconfig
	}
}

func newAPIServerCommand() *cobra.Command {
	conn := &connection{}
	opts := operator.NewAPIServerOptions()
	metrics, probes := ":8080", ":8081"
	metricsSecure := false
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the API server: REST dialects, the ApiKeyReview API and the verify endpoints",
		Long: `Run the API server. It serves, on --secure-port (TLS):
  /apis/access.apikey-operator.io/v1alpha1/apikeyreviews  (aggregated, through an APIService)
  /v1/api-keys                          (Nexus dialect)
  /api/{tenantId}/admin/apiKeys[...]    (tenant-admin dialect)
  /v1/hubs/current/api-keys[...]        (hub dialect)
and, on --verify-bind-address, the verify and forward-auth endpoints that
gateways call on every request.

It is stateless: run as many replicas as the load needs. It caches ApiKeys,
ApiKeyRoles and Namespaces, and never reads a Secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn.delegateTo(opts)
			if err := opts.Validate(); err != nil {
				return err
			}
			return conn.run(func(ctx context.Context, cfg *rest.Config) (ctrl.Manager, error) {
				return operator.NewAPIServerManager(ctx, cfg, opts, metrics, metricsSecure, probes)
			})
		},
	}
	fs := cmd.Flags()
	conn.addFlags(fs)
	opts.AddFlags(fs, true)
	fs.StringVar(&metrics, "metrics-bind-address", metrics, "Address of the Prometheus metrics endpoint; \"0\" turns it off.")
	operator.AddMetricsSecureFlag(fs, &metricsSecure)
	fs.StringVar(&probes, "health-probe-bind-address", probes, "Address of the /healthz and /readyz probes; \"0\" turns them off.")
	return cmd
}

func newAllCommand() *cobra.Command {
	conn := &connection{}
	opts := operator.NewOptions()
	api := operator.NewAPIServerOptions()
	cmd := &cobra.Command{
		Use:   "all",
		Short: "Run the controller, the admission webhook and the API server in one process",
		Long: `Run every component in one process: the controller and webhook of
"apikey-operator controller" and the API server and verify endpoints of
"apikey-operator apiserver", sharing one cache. Good for a laptop (make run)
and small clusters; in production run them as separate Deployments so the
API server scales out without leader election.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api.DefaultKeyLifetime, api.TokenPrefix, api.WatchNamespaces = opts.DefaultKeyLifetime, opts.TokenPrefix, opts.WatchNamespaces
			conn.delegateTo(api)
			if err := opts.Validate(); err != nil {
				return err
			}
			if err := api.Validate(); err != nil {
				return err
			}
			return conn.run(func(ctx context.Context, cfg *rest.Config) (ctrl.Manager, error) {
				mgr, err := operator.NewManager(ctx, cfg, opts)
				if err != nil {
					return nil, err
				}
				return mgr, operator.AddAPIServer(ctx, mgr, api)
			})
		},
	}
	fs := cmd.Flags()
	conn.addFlags(fs)
	opts.AddFlags(fs)
	api.AddFlags(fs, false)
	return cmd
}
