// Package metricsauth guards the metrics endpoint of every process: HTTPS,
// and each request authenticated by a TokenReview and authorised by a
// SubjectAccessReview (get on the non-resource URL /metrics), through
// controller-runtime's filter, as kubebuilder's scaffold serves metrics.
// Metrics name keys and namespaces and count verdicts: not for whoever
// reaches the pod.
//
// Two promises of the API server hold here too (docs/security.md):
//   - a bearer token with the API-key shape never goes to TokenReview, so
//     a key sent to the wrong port never leaves the process for
//     kube-apiserver's audit log; it is refused with 401 at once;
//   - callers without a known token cannot drive unbounded TokenReview
//     load: at most MaxInFlight requests are past this filter at once,
//     the rest get 429 (a scraper asks once per interval; the delegated
//     authenticator caches answers for a minute).
package metricsauth

import (
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// MaxInFlight is how many metrics requests may wait on authentication,
// authorisation and the scrape at once.
const MaxInFlight = 16

// Filter is a metricsserver.FilterProvider: controller-runtime's
// authentication and authorisation filter behind the two guards above.
func Filter(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
	inner, err := filters.WithAuthenticationAndAuthorization(cfg, hc)
	if err != nil {
		return nil, err
	}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		h, err := inner(log, next)
		if err != nil {
			return nil, err
		}
		return guard(h), nil
	}, nil
}

func guard(next http.Handler) http.Handler {
	slots := make(chan struct{}, MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token.Shape(bearer(r)) {
			http.Error(w, "Unauthorized: an API key is not a Kubernetes token", http.StatusUnauthorized)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too many requests", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer is the request's bearer token, the scheme matched without regard
// to case, as the authenticator behind it matches it.
func bearer(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}
