// Package devenv runs the whole product on one machine for `make run`: a
// control plane from bin/ (envtest: etcd + kube-apiserver), the CRDs, and
// the operator binary as a child process.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

// Env is a running local control plane.
type Env struct {
	env        *envtest.Environment
	Config     *rest.Config
	Kubeconfig string // path of an admin kubeconfig
	// Certs hold the front-proxy and the API server's serving certificates.
	Certs *Certs

	controllerManager    *proc.Process
	controllerManagerLog *os.File
}

// The Service in front of the operator's API server, as config/ names it.
const (
	APIServerService   = "apikey-operator-apiserver"
	APIServerNamespace = "apikey-operator-system"
)

// WebhookPort is where the operator's webhook server listens (DESIGN.md);
// `make run` serves its webhooks there.
const WebhookPort = 9443

// WebhookServing is where kube-apiserver calls the webhooks it was given
// (Options.Webhooks): the operator's webhook server must listen on Host
// and Port, serving the certificate in CertDir (tls.crt, tls.key), which
// CAPEM signed.
type WebhookServing struct {
	Host    string
	Port    int
	CertDir string
	CAPEM   []byte
}

// Webhook says where kube-apiserver calls the webhooks.
func (e *Env) Webhook() WebhookServing {
	w := &e.env.WebhookInstallOptions
	return WebhookServing{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir, CAPEM: w.LocalServingCAData}
}

// Options say where Start finds its pieces. Every test suite that needs
// a control plane starts it through Start; the zero Options are what a
// suite usually wants.
type Options struct {
	// BinDir holds etcd, kube-apiserver and kubectl; empty:
	// $KUBEBUILDER_ASSETS (`make test` sets it to bin/).
	BinDir string
	// ConfigDir is the repository's config/; empty: the config/ of the
	// nearest directory above the working directory that has one (a test
	// runs in its package's directory).
	ConfigDir string
	// Kubeconfig is where the admin kubeconfig is written; empty: a file
	// that Stop removes.
	Kubeconfig string
	// Webhooks registers config/webhook, calling https://127.0.0.1:<port>
	// with a certificate envtest writes (Env.WebhookCertDir), where port is
	// WebhookPort, or a free port when that is 0 (Env.WebhookAddress), so
	// suites can run side by side.
	Webhooks    bool
	WebhookPort int
	// AuditPolicyFile and AuditLogPath, when both are set, turn on
	// kube-apiserver's audit log with that policy, written as JSON lines
	// to that file (--audit-policy-file, --audit-log-path).
	AuditPolicyFile, AuditLogPath string
	// TokenAuthFile, when set, is kube-apiserver's --token-auth-file:
	// static bearer tokens (token,user,uid per line) that are not JWTs, as
	// OpenShift's sha256~, EKS and GKE tokens are not.
	TokenAuthFile string
	// ControllerManager also runs bin/kube-controller-manager's garbage
	// collector and namespace controller, as a cluster has them: a
	// deleted key's Secret then goes with it.
	ControllerManager bool
	// EtcdQuotaBytes, when not 0, is etcd's --quota-backend-bytes (its
	// default is 2 GiB, which a run of 100,000 keys and their history
	// between compactions can reach).
	EtcdQuotaBytes int64
}

// Start starts etcd and kube-apiserver from BinDir with aggregation
// enabled, installs the CRDs (and the webhook configurations when asked)
// from ConfigDir, and writes an admin kubeconfig.
func Start(o Options) (*Env, error) {
	binDir, configDir, err := o.dirs()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("%s is not in %s: run `make controlplane` to build it", name, binDir)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		CRDDirectoryPaths:     []string{filepath.Join(configDir, "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if o.Webhooks {
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{
			Paths:            []string{filepath.Join(configDir, "webhook", "manifests.yaml")},
			LocalServingHost: "127.0.0.1",
			LocalServingPort: o.WebhookPort,
		}
	}
	certDir, err := os.MkdirTemp("", "apikey-operator-certs-")
	if err != nil {
		return nil, err
	}
	kubeconfigPath := o.Kubeconfig
	if kubeconfigPath == "" {
		kubeconfigPath = filepath.Join(certDir, "kubeconfig")
	}
	certs, err := WriteCerts(certDir, []string{APIServerService + "." + APIServerNamespace + ".svc", "localhost"})
	if err != nil {
		return nil, fmt.Errorf("write certificates: %w", err)
	}
	enableAggregation(env, certs)
	if o.AuditPolicyFile != "" && o.AuditLogPath != "" {
		args := env.ControlPlane.GetAPIServer().Configure()
		args.Set("audit-policy-file", o.AuditPolicyFile)
		args.Set("audit-log-path", o.AuditLogPath)
		args.Set("audit-log-format", "json")
		args.Set("audit-log-mode", "blocking")
	}
	if o.EtcdQuotaBytes != 0 {
		if env.ControlPlane.Etcd == nil {
			env.ControlPlane.Etcd = &envtest.Etcd{}
		}
		env.ControlPlane.Etcd.Configure().Set("quota-backend-bytes", strconv.FormatInt(o.EtcdQuotaBytes, 10))
	}
	if o.TokenAuthFile != "" {
		env.ControlPlane.GetAPIServer().Configure().Set("token-auth-file", o.TokenAuthFile)
	}
	// kube-apiserver's own serving certificates live with ours rather than
	// in a directory envtest deletes on Stop, so StopAPIServer and
	// StartAPIServer bring it back with the certificates clients trust.
	apiServerDir := filepath.Join(certDir, "kube-apiserver")
	if err := os.Mkdir(apiServerDir, 0o700); err != nil {
		os.RemoveAll(certDir)
		return nil, err
	}
	env.ControlPlane.GetAPIServer().CertDir = apiServerDir
	cfg, err := env.Start()
	if err != nil {
		os.RemoveAll(certDir)
		return nil, fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	e := &Env{env: env, Config: cfg, Kubeconfig: kubeconfigPath, Certs: certs}
	if err := e.writeKubeconfig(); err != nil {
		_ = e.Stop()
		return nil, err
	}
	if o.ControllerManager {
		if err := e.startControllerManager(binDir); err != nil {
			_ = e.Stop()
			return nil, err
		}
	}
	return e, nil
}

// dirs are BinDir and ConfigDir, or their defaults.
func (o Options) dirs() (binDir, configDir string, err error) {
	binDir, configDir = o.BinDir, o.ConfigDir
	if binDir == "" {
		if binDir = os.Getenv("KUBEBUILDER_ASSETS"); binDir == "" {
			return "", "", errors.New("KUBEBUILDER_ASSETS is not set: run through `make test`, which builds the control plane into bin/ and sets it (or set KUBEBUILDER_ASSETS=$PWD/bin)")
		}
	}
	if configDir != "" {
		return binDir, configDir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "config", "crd", "bases")); err == nil {
			return binDir, filepath.Join(dir, "config"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("no config/crd/bases above the working directory: run from inside the repository, or set Options.ConfigDir")
		}
		dir = parent
	}
}

func (e *Env) writeKubeconfig() error {
	user, err := e.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(e.Kubeconfig), 0o700); err != nil {
		return err
	}
	return os.WriteFile(e.Kubeconfig, raw, 0o600)
}

// enableAggregation configures kube-apiserver as a cluster is: it proxies
// to aggregated API servers with a client certificate, and publishes the
// CA of that certificate for request-header authentication. Without it,
// the headers it sends could not be trusted.
func enableAggregation(env *envtest.Environment, c *Certs) {
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("proxy-client-cert-file", c.FrontProxyClientCert)
	args.Set("proxy-client-key-file", c.FrontProxyClientKey)
	args.Set("requestheader-client-ca-file", c.FrontProxyCA)
	args.Set("requestheader-allowed-names", FrontProxyClientName)
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
}

// Stop stops kube-apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	defer os.RemoveAll(e.Certs.Dir)
	return errors.Join(e.stopControllerManager(), e.env.Stop())
}

// StopAPIServer stops kube-apiserver and leaves etcd running, to test
// how clients live through an outage; StartAPIServer starts it again on
// the same address with the same certificates and users.
//
// kube-apiserver drains open watches before it exits, which can take
// longer than envtest waits; envtest then kills it. Either way the API
// server is gone, which is the outage the caller asked for.
func (e *Env) StopAPIServer() error {
	err := e.env.ControlPlane.APIServer.Stop()
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process") {
		return nil
	}
	return err
}

// StartAPIServer starts kube-apiserver again after StopAPIServer.
func (e *Env) StartAPIServer() error { return e.env.ControlPlane.APIServer.Start() }

// AddUser returns a kubeconfig-backed REST config for a user with a
// client certificate, such as a user with or without RBAC in tests.
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// WaitFor polls check until it returns true, the context ends or the
// process exits.
func WaitFor(ctx context.Context, p *proc.Process, every time.Duration, check func(context.Context) (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ok, err := check(ctx)
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-p.Done():
			return fmt.Errorf("the operator exited: %v", p.Err())
		case <-t.C:
		}
	}
}

// EtcdURL is the client URL of the control plane's etcd, for tools that
// measure what is stored (hack/scalebench).
func (e *Env) EtcdURL() string { return e.env.ControlPlane.Etcd.URL.String() }
