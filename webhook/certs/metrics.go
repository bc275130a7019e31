package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var expiryDesc = prometheus.NewDesc("apikey_webhook_certificate_expiration_timestamp_seconds",
	"When the admission webhook's serving certificate expires, as a Unix timestamp: generated certificates are replaced two thirds into their life, mounted ones (cert-manager) must be renewed by their issuer before this.",
	nil, nil)

// ExpiryCollector reports the serving certificate's expiry at each scrape,
// so a renewed certificate shows at once and a missing one shows as no
// sample (which the alert's absent() sees).
type ExpiryCollector struct {
	notAfter func() (time.Time, error)
}

// NewExpiryCollector reads the expiry from the rotator when it generates
// the certificates, else from certFile (re-read at each scrape: the file
// is replaced by its issuer, and a scrape every few seconds costs nothing).
func NewExpiryCollector(rot *Rotator, certFile string) *ExpiryCollector {
	if rot != nil {
		return &ExpiryCollector{notAfter: func() (time.Time, error) { return rot.current.Load().serving.Leaf.NotAfter, nil }}
	}
	return &ExpiryCollector{notAfter: func() (time.Time, error) { return fileNotAfter(certFile) }}
}

func (c *ExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *ExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	at, err := c.notAfter()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(expiryDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(at.Unix()))
}

// fileNotAfter is the expiry of the first certificate in a PEM file: the
// leaf, by the convention of tls.crt.
func fileNotAfter(path string) (time.Time, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read webhook certificate: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("webhook certificate " + path + " holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse webhook certificate %s: %w", path, err)
	}
	return cert.NotAfter, nil
}
