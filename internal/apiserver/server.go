package apiserver

import (
	"github.com/apikey-operator/apikey-operator/internal/connlimit"

	"context"
	"fmt"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Server is the running API server; it is a controller-runtime Runnable,
// so it starts after the informer cache the dialects read has synced.
type Server struct {
	generic *genericapiserver.GenericAPIServer
	// limited is the secure port's listener when connlimit bounds it.
	limited *connlimit.Listener
}

// Dialects are the REST dialects' own settings.
type Dialects struct {
	// WriteTimeout bounds each write (Options.WriteTimeout).
	WriteTimeout time.Duration
}

// Verification is the verify core the ApiKeyReview and the dialects'
// API-key authentication use, and --verify-any-namespace.
type Verification struct {
	Verifier     *verify.Verifier
	AnyNamespace bool
}

// New builds the server: the aggregated access API, and every dialect of
// internal/dialect over the store.
func New(cfg *genericapiserver.Config, v Verification, d Dialects, store keystore.Store) (*Server, error) {
	authn := newDialectAuthn(v.Verifier, cfg.Authentication.Authenticator)
	routes := dialectRoutes(store, authn, cfg.AuditBackend, cfg.AuditPolicyRuleEvaluator, d.WriteTimeout)
	// The secure port's idle timeout: k8s.io/apiserver's http.Server has a
	// fixed 90 s one, so the limited listener closes connections idle for
	// --connection-idle-timeout itself, seeing requests through Track.
	limited, _ := cfg.SecureServing.Listener.(*connlimit.Listener)
	cfg.BuildHandlerChainFunc = func(api http.Handler, c *genericapiserver.Config) http.Handler {
		h := routes.before(genericapiserver.DefaultBuildHandlerChain(api, c))
		if limited != nil {
			h = limited.Track(h)
		}
		return h
	}
	generic, err := cfg.Complete(nil).New("apikey-operator", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("create API server: %w", err)
	}
	group := genericapiserver.NewDefaultAPIGroupInfo(accessv1.GroupVersion.Group, Scheme, metav1.ParameterCodec, Codecs)
	group.VersionedResourcesStorageMap[accessv1.GroupVersion.Version] = map[string]rest.Storage{
		"apikeyreviews": &reviewStorage{verifier: v.Verifier, anyNamespace: v.AnyNamespace},
	}
	if err := generic.InstallAPIGroup(&group); err != nil {
		return nil, fmt.Errorf("install %s: %w", accessv1.GroupVersion, err)
	}
	return &Server{generic: generic, limited: limited}, nil
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.limited != nil {
		s.limited.Reap(s.limited.IdleTimeout(), ctx.Done())
	}
	return s.generic.PrepareRun().RunWithContext(ctx)
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }
