// Package plugin is `kubectl apikey`: everyday ApiKey tasks (create, show
// a token, rotate, enable, disable, status, list, verify) without jsonpath
// and base64 incantations. It talks to kube-apiserver with the caller's own
// kubeconfig and identity, so RBAC decides what each person may do, and it
// prints a token only where the person asked for it.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Streams are the plugin's standard input and outputs. IsTerminal says
// whether a file descriptor is a terminal; tests replace it.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
	IsTerminal  func(w any) bool
}

// StdStreams are the process's own.
func StdStreams() Streams {
	return Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, IsTerminal: isTerminal}
}

func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// ExitError ends the plugin with a status code and no further message:
// `verify` exits 1 when the key is refused, after printing the verdict.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// root holds what every subcommand shares: how to reach the cluster.
type root struct {
	streams   Streams
	loading   *clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides
	config    clientcmd.ClientConfig
	timeout   time.Duration
	// newClient is how commands get a client; unit tests replace it.
	newClient func() (client.Client, error)
}

// NewCommand returns `kubectl apikey` with its subcommands.
func NewCommand(s Streams) *cobra.Command { return newCommand(s, nil) }

// newCommand takes the client constructor; nil: from the kubeconfig.
func newCommand(s Streams, newClient func() (client.Client, error)) *cobra.Command {
	r := &root{streams: s, loading: clientcmd.NewDefaultClientConfigLoadingRules(), newClient: newClient}
	if r.newClient == nil {
		r.newClient = r.client
	}
	cmd := &cobra.Command{
		Use:   "kubectl-apikey",
		Short: "Create, rotate, inspect and verify ApiKeys",
		Long: `kubectl apikey manages the API keys of apikey-operator (ApiKey resources)
with your own kubeconfig and permissions.

A token is printed only by "create --show-token" and by "token", and "token"
refuses to write to a terminal unless you pass --reveal.

Shell completion: "kubectl apikey completion bash|zsh|fish --help".`,
		Example: `  kubectl apikey create billing --permission invoices:read --expires-in 720h --wait
  kubectl apikey token billing | some-tool --api-key-stdin
  kubectl apikey rotate billing --wait
  kubectl apikey list --expiring-within 7d -A
  kubectl apikey token billing | kubectl apikey verify --key-from-stdin --permission invoices:read`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// kubectl runs plugins as kubectl-apikey; help shows the name users type.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl apikey"},
	}
	cmd.SetIn(s.In)
	cmd.SetOut(s.Out)
	cmd.SetErr(s.ErrOut)
	fs := cmd.PersistentFlags()
	fs.StringVar(&r.loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file; default: $KUBECONFIG or ~/.kube/config.")
	clientcmd.BindOverrideFlags(&r.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
	fs.DurationVar(&r.timeout, "timeout", time.Minute, "How long --wait and other waits may take before giving up.")
	r.config = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(r.loading, &r.overrides)
	cmd.AddCommand(
		r.createCommand(), r.tokenCommand(), r.rotateCommand(),
		r.enableCommand(true), r.enableCommand(false),
		r.statusCommand(), r.listCommand(), r.verifyCommand(),
	)
	return cmd
}

// Scheme holds the types the plugin reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, keysv1.AddToScheme, accessv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

func (r *root) client() (client.Client, error) {
	cfg, err := r.config.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (set --kubeconfig or $KUBECONFIG): %w", err)
	}
	cfg.UserAgent = "kubectl-apikey"
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// namespace is the one the flags or the kubeconfig's context name.
func (r *root) namespace() (string, error) {
	ns, _, err := r.config.Namespace()
	if err != nil {
		return "", fmt.Errorf("read the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// session is a client and a namespace: what most commands start with.
func (r *root) session() (client.Client, string, error) {
	c, err := r.newClient()
	if err != nil {
		return nil, "", err
	}
	ns, err := r.namespace()
	return c, ns, err
}

// keySession is a client and the named ApiKey of the current namespace.
func (r *root) keySession(ctx context.Context, name string) (client.Client, *keysv1.ApiKey, error) {
	c, ns, err := r.session()
	if err != nil {
		return nil, nil, err
	}
	key, err := getKey(ctx, c, ns, name)
	return c, key, err
}

var errNoName = errors.New("name the ApiKey: kubectl apikey <command> NAME")
