package verify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

// Deps are what the verify server uses from the rest of the program.
type Deps struct {
	// Informers of ApiKey and ApiKeyRole: the manager's cache. Required.
	Informers cache.Informers
	// Client writes status.lastUsedAt and status.usage; nil leaves them
	// unrecorded.
	Client client.Client
	// APIReader reads a key from the API server after a write conflicted
	// with another replica's; nil: Client.
	APIReader client.Reader
	// Registerer for the metrics; default controller-runtime's registry,
	// which the manager serves on its metrics endpoint.
	Registerer prometheus.Registerer
	// Log for the server's own events; it never receives a token.
	Log *logr.Logger
	// Clock decides expiry and rate limits; default the real clock.
	Clock clock.PassiveClock
	// Limits makes the keys' rate limits: limits.Shared for cluster-wide
	// limits through Redis; default limits.Local (this replica alone).
	Limits limits.Provider
	// Quotas counts the keys' quotas: quota.Shared in Redis; default
	// quota.Local (exact with one replica, refused with several).
	Quotas quota.Provider
}

// Server is the verify listener: a manager.Runnable that every replica
// runs (it needs no leader).
type Server struct {
	opts     *Options
	deps     Deps
	index    *Index
	verifier *Verifier
	proxies  proxies
	flusher  *flusher
	log      logr.Logger
	synced   atomic.Bool

	// cacheHint is the Cache-Control value of allowed forward-auth
	// answers, made once from opts.CacheMaxAge (see cacheAllowed).
	cacheHint     []string
	cacheHintOnce sync.Once
}

// NewServer builds the verify server; Start runs it.
func NewServer(o *Options, d Deps) (*Server, error) {
	if d.Informers == nil {
		return nil, errors.New("verify: Deps.Informers is required")
	}
	var p limits.Provider = limits.Local{}
	if d.Limits != nil {
		p = d.Limits
	}
	ix := NewIndexWithLimits(p)
	if d.Quotas != nil {
		ix.WithQuotas(d.Quotas)
	}
	return NewServerFromIndex(o, ix, d)
}

// NewServerFromIndex builds a verify server over an index the caller
// fills; with Deps.Informers nil nothing else changes it. Benchmarks and
// tests use it to run the real endpoints without a cluster.
func NewServerFromIndex(o *Options, ix *Index, d Deps) (*Server, error) {
	ps, err := parseProxies(o.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, deps: d, index: ix, proxies: ps, log: ctrl.Log.WithName("verify")}
	if d.Log != nil {
		s.log = *d.Log
	}
	s.verifier, err = NewVerifier(s.index, d.Registerer, d.Clock, o.FailureRate, o.FailureBurst)
	if err != nil {
		return nil, err
	}
	if d.Client != nil {
		s.flusher = &flusher{tracker: s.verifier.usage, client: d.Client, reader: d.APIReader, interval: o.LastUsedFlushInterval,
			workers: 4, log: s.log, now: s.verifier.clock.Now, consumers: ix.consumerQuotas}
	}
	if o.MetricsPerKey {
		if err := registerPerKey(d.Registerer, ix); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// maxGuardedAddrs bounds the brute-force guard's memory.
const maxGuardedAddrs = 1 << 16

// NewVerifier returns the verify core over an index. reg nil means
// controller-runtime's registry; clk nil the real clock.
func NewVerifier(ix *Index, reg prometheus.Registerer, clk clock.PassiveClock, failureRate float64, failureBurst int) (*Verifier, error) {
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	m, err := newMetrics(reg, ix, clk.Now)
	if err != nil {
		return nil, fmt.Errorf("register verify metrics: %w", err)
	}
	return &Verifier{
		index:   ix,
		guard:   newGuard(failureRate, failureBurst, maxGuardedAddrs),
		usage:   &usageTracker{},
		metrics: m,
		clock:   clk,
	}, nil
}

// Verifier is the core, for other callers such as the ApiKeyReview.
func (s *Server) Verifier() *Verifier { return s.verifier }

// Index is the in-memory index the server keeps.
func (s *Server) Index() *Index { return s.index }

// NeedLeaderElection is false: every replica verifies.
func (s *Server) NeedLeaderElection() bool { return false }

// ReadyzCheck fails until the index holds every key listed at start, so
// that no replica answers NotFound for a key it has not loaded yet.
func (s *Server) ReadyzCheck(_ *http.Request) error {
	if !s.synced.Load() {
		return errors.New("verify index not synced yet")
	}
	return nil
}

// Start fills the index, then serves on BindAddress until ctx ends. With
// BindAddress "0" it serves no HTTP but keeps the index for Verifier's
// other callers.
func (s *Server) Start(ctx context.Context) error {
	if err := s.sync(ctx); err != nil {
		return err
	}
	if s.opts.BindAddress == "0" {
		s.background(ctx)
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on --verify-bind-address %s: %w", s.opts.BindAddress, err)
	}
	return s.serve(ctx, ln)
}

// sync attaches the index to the informers and waits until it is full.
func (s *Server) sync(ctx context.Context) error {
	if s.deps.Informers == nil {
		s.synced.Store(true)
		return nil
	}
	synced, err := s.index.Watch(ctx, s.deps.Informers)
	if err != nil {
		return err
	}
	fns := make([]toolscache.InformerSynced, len(synced))
	for i, f := range synced {
		fns[i] = f
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), fns...) {
		return errors.New("verify: informers did not sync before shutdown")
	}
	s.synced.Store(true)
	return nil
}

// Serve fills the index and serves on a listener the caller opened (tests
// use a free loopback port).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.sync(ctx); err != nil {
		return err
	}
	return s.serve(ctx, ln)
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	conns := s.opts.Connections
	ln = conns.Listen(connlimit.Verify, ln, s.TrustedProxy)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       conns.Idle(),
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if s.opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("load --verify-tls-cert-file/--verify-tls-private-key-file: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go s.background(ctx)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.log.Info("serving verify endpoints", "address", ln.Addr().String(), "tls", s.opts.TLSCertFile != "")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve verify endpoints: %w", err)
	}
	return nil
}

// background flushes lastUsedAt and forgets refilled guard entries.
func (s *Server) background(ctx context.Context) {
	if s.flusher != nil {
		go s.flusher.run(ctx)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.verifier.guard.sweep(now)
		}
	}
}

// cacheAllowed is the Cache-Control header value of an allowed
// forward-auth answer, built on first use so that answers allocate
// nothing for it.
func (s *Server) cacheAllowed() []string {
	s.cacheHintOnce.Do(func() {
		s.cacheHint = []string{"private, max-age=" + strconv.Itoa(int(s.opts.CacheMaxAge/time.Second))}
	})
	return s.cacheHint
}

// AnyNamespace tells whether the server runs with --verify-any-namespace:
// verifications that name no namespace and no audience accept every
// namespace's keys. The gRPC ext_authz server follows it too.
func (s *Server) AnyNamespace() bool { return s.opts.AnyNamespace }
