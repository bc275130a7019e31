// Package serving runs the manager's own HTTP endpoints — the probes,
// metrics and the admission webhook — on listeners bounded by
// internal/connlimit. controller-runtime opens these listeners itself
// and offers no way to wrap them, so without this a flood of idle
// connections to any port could take the files the probes need, and a
// flood on the verify port could leave the kubelet's probes unanswered.
package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
)

// Server serves Handler on Address with the connection limits of
// listener Name, as a manager Runnable (not behind leader election).
type Server struct {
	Name    connlimit.Name
	Address string
	Handler http.Handler
	// TLS, when set, serves HTTPS.
	TLS         *tls.Config
	Connections *connlimit.Options
	Log         logr.Logger

	mu    sync.Mutex
	bound net.Addr
}

// NeedLeaderElection is false: every replica serves its endpoints.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr is the bound address once started, else nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	raw, err := net.Listen("tcp", s.Address)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.Name, s.Address, err)
	}
	var ln net.Listener = s.Connections.Listen(s.Name, raw, nil)
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	s.mu.Lock()
	s.bound = raw.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.Connections.Idle(),
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.Log.Info("serving", "listener", s.Name, "address", raw.Addr().String(), "tls", s.TLS != nil)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", s.Name, err)
	}
	return nil
}
