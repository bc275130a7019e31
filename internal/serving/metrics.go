package serving

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/metricsauth"
)

// Metrics is the metrics endpoint as controller-runtime's metrics server
// serves it: /metrics from gatherer; with secure, over HTTPS with a
// self-signed certificate (as kube-controller-manager does) behind
// internal/metricsauth (TokenReview, SubjectAccessReview, and its
// guards). HTTP/1.1 only: a scraper needs nothing more, and HTTP/2
// brings the rapid-reset class of attacks (CVE-2023-44487).
func Metrics(addr string, secure bool, gatherer prometheus.Gatherer, cfg *rest.Config, hc *http.Client, conns *connlimit.Options, log logr.Logger) (*Server, error) {
	var handler http.Handler = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	s := &Server{Name: connlimit.MetricsEndpoint, Address: addr, Connections: conns, Log: log}
	if secure {
		filter, err := metricsauth.Filter(cfg, hc)
		if err != nil {
			return nil, fmt.Errorf("metrics authentication and authorization: %w", err)
		}
		if handler, err = filter(log.WithValues("path", "/metrics"), handler); err != nil {
			return nil, fmt.Errorf("metrics authentication and authorization: %w", err)
		}
		cert, key, err := certutil.GenerateSelfSignedCertKeyWithFixtures("localhost", []net.IP{{127, 0, 0, 1}}, nil, "")
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate for the metrics endpoint: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate for the metrics endpoint: %w", err)
		}
		s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	s.Handler = mux
	return s, nil
}
