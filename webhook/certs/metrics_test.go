package certs

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The expiry gauge follows the rotator's current certificate, or the
// mounted file, and reports an unreadable file as a failed scrape of that
// metric rather than a made-up value.
func TestExpiryCollector(t *testing.T) {
	rot, err := New(Config{Hosts: []string{"svc.ns.svc"}, Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	want := rot.current.Load().serving.Leaf.NotAfter.Unix()
	if got := testutil.ToFloat64(NewExpiryCollector(rot, "")); int64(got) != want {
		t.Errorf("generated: %v, want %d", got, want)
	}

	dir := t.TempDir()
	a, err := newAuthority([]string{"svc.ns.svc"}, time.Now(), 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.serving.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(NewExpiryCollector(nil, file)); int64(got) != a.notAfter.Unix() {
		t.Errorf("mounted: %v, want %d", got, a.notAfter.Unix())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewExpiryCollector(nil, filepath.Join(dir, "missing.crt")))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "read webhook certificate") {
		t.Errorf("a missing file: %v", err)
	}
}
