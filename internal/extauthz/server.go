package extauthz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Backend is what the server uses of the verify server: the one verify
// core, the trusted proxies, --verify-any-namespace, and whether the index
// is loaded.
type Backend interface {
	Verify(*verify.Request) verify.Result
	TrustedProxy(netip.Addr) bool
	AnyNamespace() bool
	Ready() bool
	// Answered counts an answer by the HTTP status it gives.
	Answered(status int)
}

// ServiceName is the gRPC service Envoy calls, and the name under which
// the health service reports it.
const ServiceName = "envoy.service.auth.v3.Authorization"

// maxRecvBytes bounds a CheckRequest: the request's headers (Envoy's own
// limit is 60 KiB by default, at most 96 KiB) and nothing more. A route
// that also sends the body must stay under it.
const maxRecvBytes = 256 << 10

// Server is the gRPC ext_authz listener: a manager.Runnable that every
// replica runs.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	opts       *Options
	backend    Backend
	keyHeaders []string
	bodyShape  string
	health     *health.Server
	log        logr.Logger
}

// NewServer builds the server over a verify backend; Start or Serve runs
// it. The options must have passed Validate.
func NewServer(o *Options, b Backend, log logr.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Server{
		opts:       o,
		backend:    b,
		keyHeaders: o.keyHeaders(),
		bodyShape:  o.DeniedBody,
		health:     health.NewServer(),
		log:        log,
	}, nil
}

// NeedLeaderElection is false: every replica verifies.
func (s *Server) NeedLeaderElection() bool { return false }

// Start listens on BindAddress and serves until ctx ends; with "0" it
// does nothing.
func (s *Server) Start(ctx context.Context) error {
	if s.opts.BindAddress == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on --ext-authz-bind-address %s: %w", s.opts.BindAddress, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on a listener the caller opened (tests use a free loopback
// port) until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	conns := s.opts.Connections
	ln = conns.Listen(connlimit.ExtAuthz, ln, s.backend.TrustedProxy)
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecvBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: conns.Idle()}),
		// Envoy keeps its connections to an authorization service open
		// and may ping them; gRPC's default policy would cut it off.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	authv3.RegisterAuthorizationServer(srv, s)
	healthpb.RegisterHealthServer(srv, s.health)
	reflection.Register(srv)
	s.setHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	go s.reportReady(ctx)
	go func() {
		<-ctx.Done()
		s.health.Shutdown()
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	}()
	s.log.Info("serving gRPC ext_authz", "address", ln.Addr().String(), "service", ServiceName)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC ext_authz: %w", err)
	}
	return nil
}

// reportReady turns health to SERVING once the verify index holds every
// key, so that no replica answers NotFound for a key it has not loaded.
func (s *Server) reportReady(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !s.backend.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	s.setHealth(healthpb.HealthCheckResponse_SERVING)
}

func (s *Server) setHealth(st healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(ServiceName, st)
}

// FromVerify is the Backend of a verify server.
func FromVerify(vs *verify.Server) Backend { return verifyBackend{vs} }

type verifyBackend struct{ *verify.Server }

func (b verifyBackend) Verify(r *verify.Request) verify.Result { return b.Verifier().Verify(r) }
func (b verifyBackend) Ready() bool                            { return b.ReadyzCheck(nil) == nil }
func (b verifyBackend) Answered(status int)                    { b.Verifier().CountExtAuthzAnswer(status) }
