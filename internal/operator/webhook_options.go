package operator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/webhook"
	"github.com/apikey-operator/apikey-operator/webhook/certs"
)

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

// Validate reports every webhook option that cannot work.
func (o *WebhookOptions) Validate() error {
	var errs []error
	if o.MaxKeyLifetime < 0 {
		errs = append(errs, errors.New("--max-key-lifetime must be 0 (no limit) or positive, for example 2160h"))
	}
	if o.Disable {
		return errors.Join(errs...)
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, errors.New("--webhook-port must be between 1 and 65535"))
	}
	switch {
	case o.CertDir != "":
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(o.CertDir, f)); err != nil {
				errs = append(errs, fmt.Errorf("--webhook-cert-dir %q must hold tls.crt and tls.key: %w", o.CertDir, err))
				break
			}
		}
	case len(o.CertHosts) == 0 && (o.ServiceName == "" || o.serviceNamespace() == ""):
		errs = append(errs, errors.New("generated webhook certificates need --webhook-service-name and --webhook-service-namespace (or $POD_NAMESPACE), or --webhook-cert-hosts; or mount certificates with --webhook-cert-dir"))
	}
	return errors.Join(errs...)
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

func (o *WebhookOptions) server(conns *connlimit.Options) (ctrlwebhook.Server, *certs.Rotator, error) {
	return webhook.NewServer(webhook.ServerOptions{
		Host:        o.Host,
		Port:        o.Port,
		CertDir:     o.CertDir,
		Connections: conns,
		Certs: certs.Config{
			Hosts:                          o.certHosts(),
			MutatingWebhookConfiguration:   o.MutatingConfig,
			ValidatingWebhookConfiguration: o.ValidatingConfig,
		},
	})
}
