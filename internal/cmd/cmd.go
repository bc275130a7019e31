// Package cmd is the command line of the apikey-operator binary: one
// subcommand per process, each a set of operator.Components over the one
// operator.Options, with --help grouped into sections.
package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/dialect"
	"github.com/apikey-operator/apikey-operator/internal/memlimit"
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
	root.AddCommand(
		newCommand(operator.ControllerProcess, "controller",
			"Run the controller: mint keys into Secrets, rotate and expire them",
			`Run the ApiKey controller. For each ApiKey it creates the Secret that holds
the token (data key "api-key"), records the token's hash, prefix and dates in
status, rotates the token on request or on schedule, and marks the key not
Ready when it is expired, disabled or its role is missing.

It caches only the Secrets it owns (label app.kubernetes.io/managed-by=apikey-operator).`),
		newCommand(operator.APIServerProcess, "apiserver",
			"Run the API server: REST dialects, the ApiKeyReview API and the verify endpoints",
			`Run the API server. It serves, on --secure-port (TLS):
  /apis/access.apikey-operator.io/v1alpha1/apikeyreviews  (aggregated, through an APIService)
`+dialectHelp()+`and, on --verify-bind-address, the verify and forward-auth endpoints that
gateways call on every request.

It is stateless: run as many replicas as the load needs. It caches ApiKeys,
ApiKeyRoles and Namespaces, and never reads a Secret.`),
		newCommand(operator.AllInOne, "all",
			"Run the controller, the admission webhook and the API server in one process",
			`Run every component in one process: the controller and webhook of
"apikey-operator controller" and the API server and verify endpoints of
"apikey-operator apiserver", sharing one cache. Good for a laptop (make run)
and small clusters; in production run them as separate Deployments so the
API server scales out without leader election.`),
		newHashCommand(),
	)
	return root
}

// dialectHelp lists the REST dialects' endpoints, from internal/dialect.
func dialectHelp() string {
	var b strings.Builder
	for _, d := range dialect.All {
		fmt.Fprintf(&b, "  %-55s (%s dialect, OpenAPI at %s)\n", d.Endpoints, d.Name, d.DocumentPath())
	}
	return b.String()
}

// helpColumns is the width --help wraps flag descriptions at.
const helpColumns = 120

// newCommand is every subcommand: the flags of its components in named
// sections, one validation that reports every bad flag, one builder.
func newCommand(c operator.Components, use, short, long string) *cobra.Command {
	o := operator.NewOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return run(o, c) },
	}
	fss := o.Flags(c)
	for _, name := range fss.Order {
		cmd.Flags().AddFlagSet(fss.FlagSets[name])
	}
	cmd.SetUsageFunc(func(cmd *cobra.Command) error {
		fmt.Fprintf(cmd.OutOrStderr(), "Usage:\n  %s\n", cmd.UseLine())
		printSections(cmd.OutOrStderr(), fss)
		return nil
	})
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n\nUsage:\n  %s\n", cmd.Long, cmd.UseLine())
		printSections(cmd.OutOrStdout(), fss)
	})
	return cmd
}

// printSections prints each named flag set under its own heading, wrapped
// to helpColumns (component-base's PrintSections pads every flag name to
// the widest column, which pushes each description onto a line of its own).
func printSections(w io.Writer, fss cliflag.NamedFlagSets) {
	for _, name := range fss.Order {
		if fs := fss.FlagSets[name]; fs.HasFlags() {
			fmt.Fprintf(w, "\n%s flags:\n\n%s", strings.ToUpper(name[:1])+name[1:], fs.FlagUsagesWrapped(helpColumns))
		}
	}
}

// run is what every process does: check its options, log, connect,
// build its components and run them until SIGTERM or Ctrl-C.
func run(o *operator.Options, c operator.Components) error {
	o.Complete()
	if err := o.Validate(c); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.Log)))
	// The Go runtime's GC target and its soft memory limit from the
	// container's (internal/memlimit): the GC works harder near it,
	// before an OOM kill.
	if gc, why := memlimit.GC(os.Getenv); gc > 0 {
		ctrl.Log.Info("Go GC target", "percent", gc, "from", why)
	} else {
		ctrl.Log.Info("Go GC target", "from", why)
	}
	soft, why, err := memlimit.Apply(os.Getenv)
	if err != nil {
		return err
	}
	if soft > 0 {
		ctrl.Log.Info("Go soft memory limit", "bytes", soft, "from", why)
	}
	cfg, err := o.Kube.RestConfig()
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	op, err := operator.Build(ctx, cfg, o, c)
	if err != nil {
		return err
	}
	return op.Start(ctx)
}
