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

// Limits of a dialect request. Writes have their own, shorter deadline
// (Options.WriteTimeout).
const (
	maxBodyBytes   = 1 << 20
	requestTimeout = 60 * time.Second
	// retryAfter is the Retry-After of a 503: kube-apiserver was not
	// reachable in time, and a retry at once would most likely fail too.
	retryAfter = "5"
)

// routes sends the dialects' paths to their handlers ahead of the
// Kubernetes filter chain, whose errors are Kubernetes Status objects:
// the dialects authenticate and authorise themselves (through the same
// delegated authenticator and authorizer) to answer in their own shapes.
type routes struct {
	mux *http.ServeMux
}

func dialectRoutes(store keystore.Store, authn *dialectAuthn, backend audit.Backend, policy audit.PolicyRuleEvaluator, writeTimeout time.Duration) *routes {
	mux := http.NewServeMux()
	for _, d := range dialect.All {
		h := guarded(apikeyaudit.Chain(backend, policy, authn.wrap, d.New(store)), writeTimeout)
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

// guarded bounds a dialect request: body size, time (writeTimeout for a
// write: its calls to kube-apiserver end there, and the store answers
// 503), Retry-After on every 503, and a panic answers 500 instead of
// dropping the connection.
func guarded(next http.Handler, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = &retryAfterWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				klog.ErrorS(nil, "panic in a dialect handler", "path", r.URL.Path, "panic", p)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":"internal error"}`))
			}
		}()
		timeout := requestTimeout
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			timeout = writeTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		// Handlers log the causes of 5xx answers through the context.
		ctx = logr.NewContext(ctx, ctrl.Log.WithName("dialect").WithValues("method", r.Method, "path", r.URL.Path))
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// retryAfterWriter adds Retry-After to a 503 that has none, whichever
// dialect wrote it, so every dialect's shape stays its own.
type retryAfterWriter struct{ http.ResponseWriter }

func (w *retryAfterWriter) WriteHeader(code int) {
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *retryAfterWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
