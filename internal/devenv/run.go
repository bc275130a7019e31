package devenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// RunOptions say where `make run` finds its pieces.
type RunOptions struct {
	BinDir    string
	ConfigDir string
	Namespace string
}

// readyTimeout bounds the wait for the sample keys.
const readyTimeout = 90 * time.Second

// Run brings everything up, reports, and waits for ctx to end (Ctrl-C);
// then it stops the operator, kube-apiserver and etcd, in that order.
func Run(ctx context.Context, out io.Writer, o RunOptions) error {
	local := filepath.Join(o.BinDir, "local")
	kubeconfig := filepath.Join(local, "kubeconfig")
	logPath := filepath.Join(local, "operator.log")

	step(out, 1, "starting etcd and kube-apiserver from %s", o.BinDir)
	start := time.Now()
	env, err := Start(Options{BinDir: o.BinDir, ConfigDir: o.ConfigDir, Kubeconfig: kubeconfig, Webhooks: true})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping kube-apiserver and etcd...")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(out, "  stop control plane:", err)
		}
		fmt.Fprintln(out, "stopped; nothing is left running.")
	}()
	fmt.Fprintf(out, "      kube-apiserver %s is up (%s); CRDs and webhook configurations installed\n", env.Config.Host, time.Since(start).Round(100*time.Millisecond))

	step(out, 2, "starting the operator (log: %s)", logPath)
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	operator, err := StartProcess(logFile, filepath.Join(o.BinDir, "apikey-operator"), "controller", "--kubeconfig", kubeconfig,
		"--webhook-host", "127.0.0.1", "--webhook-port", fmt.Sprint(WebhookPort), "--webhook-cert-dir", env.WebhookCertDir())
	if err != nil {
		return fmt.Errorf("%w (run `make build`)", err)
	}
	defer func() {
		fmt.Fprintln(out, "stopping the operator...")
		if err := operator.Stop(10 * time.Second); err != nil {
			fmt.Fprintln(out, "  operator:", err)
		}
	}()

	if err := waitListening(ctx, operator, fmt.Sprintf("127.0.0.1:%d", WebhookPort)); err != nil {
		return fmt.Errorf("the operator's webhook server did not start: %w; its log (%s) ends with:\n%s", err, logPath, tail(logPath, 15))
	}

	step(out, 3, "applying %s to namespace %q and waiting until the keys are Ready", filepath.Join(o.ConfigDir, "samples"), o.Namespace)
	kubectl := filepath.Join(o.BinDir, "kubectl")
	if err := runTo(out, kubectl, "--kubeconfig", kubeconfig, "apply", "-n", o.Namespace, "-f", filepath.Join(o.ConfigDir, "samples")); err != nil {
		return fmt.Errorf("apply samples: %w", err)
	}
	if err := waitKeysReady(ctx, env, operator, o.Namespace); err != nil {
		return fmt.Errorf("sample keys not Ready within %s: %w; the operator's log (%s) ends with:\n%s", readyTimeout, err, logPath, tail(logPath, 15))
	}
	_ = runTo(out, kubectl, "--kubeconfig", kubeconfig, "get", "ak", "-n", o.Namespace)

	printNextSteps(out, kubeconfig, o.BinDir)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nCtrl-C: shutting down.")
		return nil
	case <-operator.Done():
		return fmt.Errorf("the operator exited: %v; its log (%s) ends with:\n%s", operator.Err(), logPath, tail(logPath, 15))
	}
}

func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "[%d/3] %s\n", n, fmt.Sprintf(format, args...))
}

func runTo(out io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// waitListening waits until something accepts connections on addr.
func waitListening(ctx context.Context, p *Process, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return WaitFor(ctx, p, 100*time.Millisecond, func(context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

// waitKeysReady waits until every ApiKey in the namespace is Ready.
func waitKeysReady(ctx context.Context, env *Env, operator *Process, namespace string) error {
	c, err := client.New(env.Config, client.Options{Scheme: scheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return WaitFor(ctx, operator, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		keys := &keysv1.ApiKeyList{}
		if err := c.List(ctx, keys, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		for _, k := range keys.Items {
			if !meta.IsStatusConditionTrue(k.Status.Conditions, keysv1.ConditionReady) {
				return false, nil
			}
		}
		return len(keys.Items) > 0, nil
	})
}

func printNextSteps(out io.Writer, kubeconfig, binDir string) {
	fmt.Fprintf(out, `
The operator is running and the sample keys are Ready. In another terminal:

  export KUBECONFIG=%s PATH=%s:$PATH
  kubectl get ak                                  # keys: Ready, Enabled, Prefix, Expires
  kubectl get ak -o wide                          # ... with reason and role
  kubectl explain apikey.spec                     # every field, documented
  kubectl get secret ci-deployer -o jsonpath='{.data.api-key}' | base64 -d; echo
  kubectl annotate ak ci-deployer keys.apikey-operator.io/rotate="$(date +%%s)" --overwrite
  kubectl get ak ci-deployer -o yaml              # status: hash, prefix, dates; never the token

Press Ctrl-C to stop everything.
`, kubeconfig, binDir)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
