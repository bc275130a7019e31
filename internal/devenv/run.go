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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

// RunOptions say where `make run` finds its pieces.
type RunOptions struct {
	BinDir    string
	ConfigDir string
	Namespace string
}

// readyTimeout bounds the wait for the sample keys.
const readyTimeout = 90 * time.Second

// Ports of the API server that `make run` uses: DESIGN.md's defaults.
const (
	SecurePort   = 8443
	VerifyPort   = 8090
	ExtAuthzPort = 9191
	MetricsPort  = 8080
)

// AdminKey is the key `make run` creates for trying the REST dialects.
const AdminKey = "make-run-admin"

// Run brings everything up, reports, and waits for ctx to end (Ctrl-C);
// then it stops the operator, kube-apiserver and etcd, in that order.
func Run(ctx context.Context, out io.Writer, o RunOptions) error {
	local := filepath.Join(o.BinDir, "local")
	kubeconfig := filepath.Join(local, "kubeconfig")
	logPath := filepath.Join(local, "operator.log")

	step(out, 1, "starting etcd, kube-apiserver and kube-controller-manager (garbage collector, namespaces) from %s", o.BinDir)
	start := time.Now()
	env, err := Start(Options{BinDir: o.BinDir, ConfigDir: o.ConfigDir, Kubeconfig: kubeconfig, Webhooks: true, WebhookPort: WebhookPort, ControllerManager: true})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping kube-controller-manager, kube-apiserver and etcd...")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(out, "  stop control plane:", err)
		}
		fmt.Fprintln(out, "stopped; nothing is left running.")
	}()
	fmt.Fprintf(out, "      kube-apiserver %s is up with kube-controller-manager (%s); CRDs and webhook configurations installed\n", env.Config.Host, time.Since(start).Round(100*time.Millisecond))

	step(out, 2, "starting the operator: controller, webhook, API server, verify endpoints (log: %s)", logPath)
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	operator, err := proc.Start(filepath.Join(o.BinDir, "apikey-operator"), operatorArgs(env, kubeconfig), proc.Options{Out: logFile})
	if err != nil {
		return fmt.Errorf("%w (run `make build`)", err)
	}
	defer func() {
		fmt.Fprintln(out, "stopping the operator...")
		if err := operator.Stop(10 * time.Second); err != nil {
			fmt.Fprintln(out, "  operator:", err)
		}
	}()
	for _, port := range []int{WebhookPort, SecurePort, VerifyPort} {
		if err := waitListening(ctx, operator, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			return fmt.Errorf("the operator is not listening on port %d: %w; its log (%s) ends with:\n%s", port, err, logPath, tail(logPath, 15))
		}
	}

	step(out, 3, "registering access.apikey-operator.io with kube-apiserver's aggregator")
	if err := env.RegisterAPIService(ctx, SecurePort); err != nil {
		return err
	}
	if err := env.WaitAPIServiceAvailable(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("%w; the operator's log (%s) ends with:\n%s", err, logPath, tail(logPath, 15))
	}

	step(out, 4, "applying %s and an admin key to namespace %q, waiting until the keys are Ready", filepath.Join(o.ConfigDir, "samples"), o.Namespace)
	kubectl := filepath.Join(o.BinDir, "kubectl")
	if err := runTo(out, kubectl, "--kubeconfig", kubeconfig, "apply", "-n", o.Namespace, "-f", filepath.Join(o.ConfigDir, "samples")); err != nil {
		return fmt.Errorf("apply samples: %w", err)
	}
	if err := createAdminKey(ctx, env, o.Namespace); err != nil {
		return err
	}
	if err := waitKeysReady(ctx, env, operator, o.Namespace); err != nil {
		return fmt.Errorf("sample keys not Ready within %s: %w; the operator's log (%s) ends with:\n%s", readyTimeout, err, logPath, tail(logPath, 15))
	}
	_ = runTo(out, kubectl, "--kubeconfig", kubeconfig, "get", "ak", "-n", o.Namespace)

	printNextSteps(out, kubeconfig, o.BinDir, o.Namespace)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nCtrl-C: shutting down.")
		return nil
	case <-operator.Done():
		return fmt.Errorf("the operator exited: %v; its log (%s) ends with:\n%s", operator.Err(), logPath, tail(logPath, 15))
	}
}

// operatorArgs run every component in one process, on DESIGN.md's ports,
// with the certificates the local aggregation trusts. Metrics are plain
// HTTP on loopback here, the one place they are (--metrics-secure=false):
// the local kubeconfig's admin holds a client certificate, which the
// metrics filter does not take, and nothing but this machine reaches
// 127.0.0.1. A cluster install serves them over HTTPS to authorised
// scrapers only.
func operatorArgs(env *Env, kubeconfig string) []string {
	return []string{
		"all", "--kubeconfig", kubeconfig,
		"--webhook-host", "127.0.0.1", "--webhook-port", fmt.Sprint(WebhookPort), "--webhook-cert-dir", env.Webhook().CertDir,
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(SecurePort),
		"--tls-cert-file", env.Certs.ServingCert, "--tls-private-key-file", env.Certs.ServingKey,
		"--verify-bind-address", fmt.Sprintf("127.0.0.1:%d", VerifyPort),
		"--ext-authz-bind-address", fmt.Sprintf("127.0.0.1:%d", ExtAuthzPort),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", MetricsPort), "--metrics-secure=false",
	}
}

// createAdminKey makes the key that the printed REST examples use.
func createAdminKey(ctx context.Context, env *Env, namespace string) error {
	c, err := client.New(env.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	key := &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: AdminKey},
		Spec: keysv1.ApiKeySpec{
			Description: "Created by make run to try the REST dialects; grants everything in this namespace.",
			Permissions: []keysv1.Permission{"*"},
		},
	}
	if err := c.Create(ctx, key); err != nil {
		return fmt.Errorf("create the admin key: %w", err)
	}
	return nil
}

func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "[%d/4] %s\n", n, fmt.Sprintf(format, args...))
}

func runTo(out io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// waitListening waits until something accepts connections on addr.
func waitListening(ctx context.Context, p *proc.Process, addr string) error {
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
func waitKeysReady(ctx context.Context, env *Env, operator *proc.Process, namespace string) error {
	c, err := client.New(env.Config, client.Options{Scheme: Scheme()})
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

func printNextSteps(out io.Writer, kubeconfig, binDir, namespace string) {
	fmt.Fprintf(out, `
Everything is running. In another terminal:

  export KUBECONFIG=%[1]s PATH=%[2]s:$PATH
  kubectl get ak -o wide                          # keys: Ready, reason, prefix, expiry, role
  kubectl explain apikey.spec                     # every field, documented
  kubectl get secret ci-deployer -o jsonpath='{.data.api-key}' | base64 -d; echo

The kubectl plugin (bin/kubectl-apikey, built by make build; docs/operations.md):

  kubectl apikey list                             # state, prefix, expiry, last use
  kubectl apikey status billing-service           # conditions, expiry, usage, rotation, role, Secret
  kubectl apikey rotate ci-deployer --wait        # new token; reports the old one's grace period
  kubectl apikey create demo --permission invoices:read --show-token
  kubectl apikey token ci-deployer | kubectl apikey verify --key-from-stdin --permission releases:publish

The REST dialects, with the admin key %[3]s (permission *):

  export BASE=https://localhost:%[4]d KEY=$(kubectl get secret %[3]s -o jsonpath='{.data.api-key}' | base64 -d)
  curl -sk -X POST $BASE/api/%[5]s/admin/apiKeys -H "X-API-KEY: $KEY" \
    -H 'Content-Type: application/json' -d '{"name":"My_First_Key","permissions":["invoices:read"]}'
  curl -sk $BASE/v1/hubs/current/api-keys -H "Authorization: Bearer $KEY" -H "X-Hub-Id: %[5]s"

Verify a key as a gateway would, and through kube-apiserver:

  curl -s -i "localhost:%[6]d/v1/auth?namespace=%[5]s&permission=invoices:read" -H "Authorization: Bearer $KEY"
  kubectl api-resources --api-group=access.apikey-operator.io

Metrics, plain HTTP on loopback for this local run only (in a cluster they
are HTTPS behind a token and RBAC; docs/operations.md, "Scraping metrics"):

  curl -s localhost:%[7]d/metrics | grep '^apikey_'

Press Ctrl-C to stop everything.
`, kubeconfig, binDir, AdminKey, SecurePort, namespace, VerifyPort, MetricsPort)
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
