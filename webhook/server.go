package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/serving"

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
	// Connections bounds the listener's connections (the operator's one
	// connlimit.Options; nil: no limits).
	Connections *connlimit.Options
}

// NewServer returns the webhook server for the manager's options, and the
// Rotator that must run beside it when the certificate is generated (nil
// when it comes from CertDir).
//
// controller-runtime's server registers and instruments the webhooks;
// this one serves them, on a listener bounded by internal/connlimit
// (controller-runtime opens its own, which cannot be wrapped), so a flood
// on another port, or on this one from a pod, leaves kube-apiserver's
// calls served.
func NewServer(o ServerOptions) (ctrlwebhook.Server, *certs.Rotator, error) {
	s := &server{
		DefaultServer: ctrlwebhook.NewServer(ctrlwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, WebhookMux: http.NewServeMux()}).(*ctrlwebhook.DefaultServer),
		certDir:       o.CertDir,
		serving: serving.Server{
			Name: connlimit.Webhook, Address: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)),
			Connections: o.Connections, Log: ctrl.Log.WithName("webhook"),
		},
	}
	if o.CertDir != "" {
		return s, nil, nil
	}
	rot, err := certs.New(o.Certs)
	if err != nil {
		return nil, nil, err
	}
	s.getCertificate = rot.GetCertificate
	return s, rot, nil
}

type server struct {
	*ctrlwebhook.DefaultServer // Register, WebhookMux
	certDir                    string
	getCertificate             func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	serving                    serving.Server
	started                    atomic.Bool
}

// Start serves the registered webhooks until ctx ends.
func (s *server) Start(ctx context.Context) error {
	get := s.getCertificate
	if get == nil {
		w, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("webhook certificate in %s: %w", s.certDir, err)
		}
		go func() {
			if err := w.Start(ctx); err != nil {
				s.serving.Log.Error(err, "webhook certificate watcher")
			}
		}()
		get = w.GetCertificate
	}
	s.serving.TLS = &tls.Config{
		GetCertificate: get,
		MinVersion:     tls.VersionTLS12,
		// HTTP/1.1 only: the API server needs nothing more, and HTTP/2
		// brings the rapid-reset class of attacks (CVE-2023-44487).
		NextProtos: []string{"http/1.1"},
	}
	s.serving.Handler = s.WebhookMux()
	s.started.Store(true)
	return s.serving.Start(ctx)
}

// StartedChecker is ready once the server accepts TLS connections.
func (s *server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		addr := s.serving.Addr()
		if !s.started.Load() || addr == nil {
			return errors.New("webhook server has not started")
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr.String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a liveness dial, not a trust decision
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return c.Close()
	}
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
	if srv, ok := mgr.GetWebhookServer().(*server); ok && srv.certDir != "" {
		certFile = filepath.Join(srv.certDir, "tls.crt")
	}
	err := ctrlmetrics.Registry.Register(certs.NewExpiryCollector(rot, certFile))
	if _, dup := err.(prometheus.AlreadyRegisteredError); err != nil && !dup {
		return fmt.Errorf("register the webhook certificate expiry metric: %w", err)
	}
	return nil
}
