package verify

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	testclock "k8s.io/utils/clock/testing"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// t0 is the fixed "now" of the unit tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func mint(t testing.TB) string {
	t.Helper()
	tok, err := token.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiKey is an ApiKey as the controller leaves it once issued: status
// holds the token's hash and prefix, and the key expires in a day.
func apiKey(ns, name, tok string, mods ...func(*keysv1.ApiKey)) *keysv1.ApiKey {
	return testkit.IssuedKey(ns, name, tok, t0.Add(24*time.Hour), mods...)
}

// perms and ips build an ApiKey's permissions and allowedIPs.
var perms, ips = testkit.Perms, testkit.IPs

// fixture is a verify server without informers: tests feed the index the
// way the informer handlers do.
type fixture struct {
	srv   *Server
	ix    *Index
	clock *testclock.FakePassiveClock
	reg   *prometheus.Registry
}

func newFixture(t testing.TB, trusted ...string) *fixture {
	t.Helper()
	return newFixtureWithLog(t, logr.Discard(), trusted...)
}

func newFixtureWithLog(t testing.TB, log logr.Logger, trusted ...string) *fixture {
	t.Helper()
	f := &fixture{ix: NewIndex(), clock: testclock.NewFakePassiveClock(t0), reg: prometheus.NewRegistry()}
	ps, err := parseProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(f.ix, f.reg, f.clock, 5, 20)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &Server{opts: NewOptions(), index: f.ix, verifier: v, proxies: ps, log: log}
	f.srv.synced.Store(true)
	return f
}

// auth sends a forward-auth request from peer with the given headers.
func (f *fixture) auth(peer, target string, headers map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = peer
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	return w
}

// gatherText renders a registry in the Prometheus text format.
func gatherText(t interface {
	Helper()
	Fatal(...any)
}, reg *prometheus.Registry) []byte {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
