package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/apikey-operator/apikey-operator/webhook/certs"
)

// ServerOptions say where the webhook server listens and where its
// certificate comes from.
type ServerOptions struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key (cert-manager, or any mounted
	// Secret); they are reloaded when they change. Empty: the operator
	// generates and rotates its own certificates, as Certs says.
	CertDir string
	Certs   certs.Config
}

// NewServer returns the webhook server for the manager's options, and the
// Rotator that must run beside it when the certificate is generated (nil
// when it comes from CertDir).
func NewServer(o ServerOptions) (ctrlwebhook.Server, *certs.Rotator, error) {
	opts := ctrlwebhook.Options{
		Host:    o.Host,
		Port:    o.Port,
		CertDir: o.CertDir,
		// HTTP/1.1 only: the API server needs nothing more, and HTTP/2
		// brings the rapid-reset class of attacks (CVE-2023-44487).
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if o.CertDir != "" {
		return ctrlwebhook.NewServer(opts), nil, nil
	}
	rot, err := certs.New(o.Certs)
	if err != nil {
		return nil, nil, err
	}
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.GetCertificate = rot.GetCertificate })
	return ctrlwebhook.NewServer(opts), rot, nil
}

// Install serves the webhooks on the manager, with readiness checks, and
// runs the certificate rotator when there is one.
func Install(ctx context.Context, mgr ctrl.Manager, rot *certs.Rotator, cfg Config) error {
	if err := Setup(ctx, mgr, cfg); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("add webhook readiness check: %w", err)
	}
	if err := registerExpiry(mgr, rot); err != nil {
		return err
	}
	if rot == nil {
		return nil
	}
	rot.SetClients(mgr.GetAPIReader(), mgr.GetClient())
	if err := mgr.Add(rot); err != nil {
		return fmt.Errorf("add webhook certificate rotator: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook-certs", rot.Ready); err != nil {
		return fmt.Errorf("add webhook certificate readiness check: %w", err)
	}
	return nil
}

// registerExpiry exports the serving certificate's expiry for the
// WebhookCertificateExpiring alert.
func registerExpiry(mgr ctrl.Manager, rot *certs.Rotator) error {
	certFile := ""
	if srv, ok := mgr.GetWebhookServer().(*ctrlwebhook.DefaultServer); ok {
		name := srv.Options.CertName
		if name == "" {
			name = "tls.crt"
		}
		certFile = filepath.Join(srv.Options.CertDir, name)
	}
	err := ctrlmetrics.Registry.Register(certs.NewExpiryCollector(rot, certFile))
	if _, dup := err.(prometheus.AlreadyRegisteredError); err != nil && !dup {
		return fmt.Errorf("register the webhook certificate expiry metric: %w", err)
	}
	return nil
}
