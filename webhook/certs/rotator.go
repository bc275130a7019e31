package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Config says what the generated certificates are for.
type Config struct {
	// Hosts are the DNS names and IP addresses the API server dials the
	// webhook at: for a Service, <service>.<namespace>.svc.
	Hosts []string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name
	// the configurations whose caBundle is written. Empty: skip that one.
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string
	// Validity of each CA and serving certificate; they are replaced two
	// thirds into it. Default 7 days.
	Validity time.Duration
	// Resync is how often the bundle is checked and written again if
	// someone (a re-applied manifest) dropped our CA. Default 10 minutes.
	Resync time.Duration
	// Propagation is how long to wait between trusting a new CA and
	// serving with it, for the API server to see the new bundle. Default 10s.
	Propagation time.Duration
}

// retryAfter is the wait after a failed attempt to write the bundle.
const retryAfter = 10 * time.Second

// Rotator serves a generated certificate to the webhook server and keeps
// the webhook configurations trusting it. Every replica runs one.
type Rotator struct {
	cfg      Config
	injector injector
	current  atomic.Pointer[authority]
	injected atomic.Bool
}

var log = logf.Log.WithName("webhook-certs")

// New makes the first certificate at once, so the webhook server has one
// to serve from its first connection.
func New(cfg Config) (*Rotator, error) {
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("webhook certificates: no host names to issue them for")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 7 * 24 * time.Hour
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Minute
	}
	if cfg.Propagation <= 0 {
		cfg.Propagation = 10 * time.Second
	}
	first, err := newAuthority(cfg.Hosts, time.Now(), cfg.Validity)
	if err != nil {
		return nil, err
	}
	r := &Rotator{
		cfg:      cfg,
		injector: injector{mutating: cfg.MutatingWebhookConfiguration, validating: cfg.ValidatingWebhookConfiguration},
	}
	r.current.Store(first)
	return r, nil
}

// SetClients gives the rotator its API access; call it before Start.
func (r *Rotator) SetClients(reader client.Reader, writer client.Writer) {
	r.injector.reader, r.injector.writer = reader, writer
}

// GetCertificate is the webhook server's tls.Config.GetCertificate.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current.Load().serving, nil
}

// CABundle is the PEM of the CA that signed the certificate served now.
func (r *Rotator) CABundle() []byte { return r.current.Load().caPEM }

// NeedLeaderElection is false: every replica serves webhooks, so every
// replica needs its CA trusted.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Ready is a readiness check: ready once the bundle was written.
func (r *Rotator) Ready(*http.Request) error {
	if !r.injected.Load() {
		return errors.New("the webhook CA is not yet in the webhook configurations' caBundle")
	}
	return nil
}

// Start keeps the bundle written and the certificate fresh until ctx ends.
func (r *Rotator) Start(ctx context.Context) error {
	if r.injector.reader == nil || r.injector.writer == nil {
		return errors.New("webhook certificates: SetClients was not called")
	}
	for {
		wait := r.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// step renews the authority when due, writes the bundle, and returns how
// long to wait before the next step.
func (r *Rotator) step(ctx context.Context) time.Duration {
	now := time.Now()
	if !now.Before(r.current.Load().renewAt()) {
		if err := r.renew(ctx, now); err != nil {
			log.Error(err, "renew the webhook certificate; the current one stays in use", "retryIn", retryAfter)
			return retryAfter
		}
	}
	current := r.current.Load()
	if err := r.injector.inject(ctx, current.caPEM, now); err != nil {
		log.Error(err, "write the webhook CA into the webhook configurations (create them from config/webhook, or run with --disable-webhooks)", "retryIn", retryAfter)
		return retryAfter
	}
	r.injected.Store(true)
	return min(r.cfg.Resync, max(time.Until(current.renewAt()), time.Second))
}

// renew makes a new authority, has the API server trust it, and only then
// serves with it; the old CA stays in the bundle until it expires.
func (r *Rotator) renew(ctx context.Context, now time.Time) error {
	next, err := newAuthority(r.cfg.Hosts, now, r.cfg.Validity)
	if err != nil {
		return err
	}
	if err := r.injector.inject(ctx, next.caPEM, now); err != nil {
		return fmt.Errorf("trust the new CA: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.cfg.Propagation):
	}
	r.current.Store(next)
	log.Info("serving a renewed webhook certificate", "notAfter", next.notAfter)
	return nil
}
