package leak

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
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Reporter is a local stand-in for GitHub: a key pair generated for the
// test, its public half served in GitHub's key document shape.
type Reporter struct {
	ID      string
	Private *ecdsa.PrivateKey
	Server  *httptest.Server
	Fetches int
}

func NewReporter(t testing.TB) *Reporter {
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
		r.Fetches++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(r.Server.Close)
	return r
}

// Sign signs a body as GitHub does: ECDSA P-256 over SHA-256, ASN.1, base64.
func (r *Reporter) Sign(t testing.TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, r.Private, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func newTestRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
