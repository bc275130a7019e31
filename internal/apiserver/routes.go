package apiserver

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	apikeyaudit "github.com/apikey-operator/apikey-operator/internal/audit"
	"github.com/apikey-operator/apikey-operator/internal/dialect"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Limits of a dialect request.
const (
	maxBodyBytes   = 1 << 20
	requestTimeout = 60 * time.Second
)

// routes sends the dialects' paths to their handlers ahead of the
// Kubernetes filter chain, whose errors are Kubernetes Status objects:
// the dialects authenticate and authorise themselves (through the same
// delegated authenticator and authorizer) to answer in their own shapes.
type routes struct {
	mux *http.ServeMux
}

func dialectRoutes(store keystore.Store, authn *dialectAuthn, backend audit.Backend, policy audit.PolicyRuleEvaluator) *routes {
	mux := http.NewServeMux()
	for _, d := range dialect.All {
		h := guarded(apikeyaudit.Chain(backend, policy, authn.wrap, d.New(store)))
		for _, p := range d.Patterns {
			mux.Handle(p, h)
		}
		mux.Handle("GET "+d.DocumentPath(), document(d.OpenAPI()))
	}
	return &routes{mux: mux}
}

func (rt *routes) before(kubernetes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := rt.mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		kubernetes.ServeHTTP(w, r)
	})
}

// guarded bounds a dialect request: body size, time, and a panic answers
// 500 instead of dropping the connection.
func guarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				klog.ErrorS(nil, "panic in a dialect handler", "path", r.URL.Path, "panic", p)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":"internal error"}`))
			}
		}()
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		// Handlers log the causes of 5xx answers through the context.
		ctx = logr.NewContext(ctx, ctrl.Log.WithName("dialect").WithValues("method", r.Method, "path", r.URL.Path))
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func document(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if len(doc) == 0 {
			http.NotFound(w, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}
