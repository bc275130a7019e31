// Package leaktest is a local stand-in for a secret scanner that reports
// leaked tokens (GitHub's secret scanning partner program): a P-256 key
// pair generated for the test, its public half served on loopback in
// GitHub's key document shape, and signing as GitHub signs. The leak
// endpoint's unit tests, the envtest and hardening suites, the chart
// install test and the benchmark all report through it.
//
// It does not import internal/leak, so that package's own tests can use it.
package leaktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

// TB is the part of testing.TB the reporter uses, which GinkgoT() has too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Reporter is a reporter's key pair and key endpoint.
type Reporter struct {
	// ID is the key identifier reports carry.
	ID      string
	Private *ecdsa.PrivateKey
	// Server serves the key document at its root URL.
	Server  *httptest.Server
	fetches atomic.Int64
}

// NewReporter generates a key pair and serves its public half until the
// test ends.
func NewReporter(t TB) *Reporter {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	r := &Reporter{ID: base64.RawURLEncoding.EncodeToString(sum[:16]), Private: priv}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": r.ID,
		"key":            string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"is_current":     true,
	}}})
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(r.Server.Close)
	return r
}

// Fetches counts the key document's downloads.
func (r *Reporter) Fetches() int { return int(r.fetches.Load()) }

// Sign signs a body as GitHub does: ECDSA P-256 over SHA-256, ASN.1 DER,
// standard base64.
func (r *Reporter) Sign(t TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, r.Private, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// Finding is one token as a report lists it.
type Finding struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Report is the body of a report of the tokens, as found in a public file.
func Report(tokens ...string) []byte {
	fs := make([]Finding, 0, len(tokens))
	for _, tok := range tokens {
		fs = append(fs, Finding{Token: tok, Type: "apikey_operator_token", URL: "https://github.com/octo/repo/blob/abc/.env", Source: "content"})
	}
	b, _ := json.Marshal(fs)
	return b
}
