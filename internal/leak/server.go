package leak

import (
	"github.com/apikey-operator/apikey-operator/internal/connlimit"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// GitHubPath is where GitHub's reports are received.
const GitHubPath = "/v1/leaks/github"

// maxReplays bounds the remembered report digests.
const maxReplays = 100_000

// Server is the leak endpoint's listener, a manager runnable.
type Server struct {
	opts    *Options
	handler http.Handler
	log     logr.Logger
}

// Deps are what the endpoint works with.
type Deps struct {
	Keys       KeySet
	Revoker    Revoker
	Registerer prometheus.Registerer
	Log        logr.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewServer builds the endpoint.
func NewServer(o *Options, d Deps) (*Server, error) {
	h, err := NewGitHub(o, d)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(GitHubPath, h)
	return &Server{opts: o, handler: mux, log: d.Log}, nil
}

// NewGitHub builds the GitHub handler alone.
func NewGitHub(o *Options, d Deps) (*GitHub, error) {
	if d.Keys == nil || d.Revoker == nil || d.Registerer == nil {
		return nil, errors.New("leak: Deps.Keys, Revoker and Registerer are required")
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("leak metrics: %w", err)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &GitHub{keys: d.Keys, revoker: d.Revoker, maxBody: o.MaxBodyBytes, replays: newReplays(o.ReplayWindow, maxReplays),
		metrics: m, log: d.Log, now: now}, nil
}

// Handler is the endpoint's routes, for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica answers reports.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("leak endpoint: listen on --leak-bind-address %s: %w", s.opts.BindAddress, err)
	}
	ln = s.opts.Connections.Listen(connlimit.Leak, ln, nil)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		// GitHub waits up to 30 s for partners that send feedback.
		ReadTimeout:    20 * time.Second,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    s.opts.Connections.Idle(),
		MaxHeaderBytes: 32 << 10,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	if s.opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load --leak-tls-cert-file/--leak-tls-private-key-file: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.log.Info("leak endpoint listening", "address", ln.Addr().String(), "path", GitHubPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errc:
		return fmt.Errorf("leak endpoint: %w", err)
	}
}
