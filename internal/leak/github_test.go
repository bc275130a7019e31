package leak

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// fakeRevoker knows a set of hashes and records what it was asked.
// Acting on keys is tested on a real kube-apiserver (envtest_test.go);
// this tests the protocol.
type fakeRevoker struct {
	mu    sync.Mutex
	known map[string]bool
	seen  []Sighting
	fail  bool
}

func (f *fakeRevoker) Revoke(_ context.Context, s Sighting) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, s)
	if f.fail {
		return false, context.DeadlineExceeded
	}
	return f.known[s.Hash], nil
}

type harness struct {
	reporter *Reporter
	revoker  *fakeRevoker
	handler  *GitHub
	reg      *prometheus.Registry
	logs     *bytes.Buffer
	leaked   string // a token the revoker knows
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	leaked, _ := token.Mint("ak")
	h := &harness{reporter: NewReporter(t), revoker: &fakeRevoker{known: map[string]bool{token.Hash(leaked): true}},
		reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, leaked: leaked}
	var mu sync.Mutex
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		h.logs.WriteString(prefix + args + "\n")
	}, funcr.Options{Verbosity: 10})
	o := NewOptions()
	o.MaxBodyBytes = 64 << 10
	g, err := NewGitHub(o, Deps{Keys: &HTTPKeySet{URL: h.reporter.Server.URL}, Revoker: h.revoker, Registerer: h.reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h.handler = g
	return h
}

func (h *harness) post(body []byte, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, GitHubPath, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec
}

func (h *harness) signed(t *testing.T, body []byte) map[string]string {
	return map[string]string{GitHubKeyIDHeader: h.reporter.ID, GitHubSignatureHeader: h.reporter.Sign(t, body)}
}

func report(t *testing.T, tokens ...string) []byte {
	t.Helper()
	var fs []Finding
	for _, tok := range tokens {
		fs = append(fs, Finding{Token: tok, Type: "apikey_operator_token", URL: "https://github.com/octo/repo/blob/abc/config.env", Source: "content"})
	}
	b, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedReportLabelsEachTokenByHash(t *testing.T) {
	h := newHarness(t)
	unknown, _ := token.Mint("ak")
	body := report(t, h.leaked, unknown, "not-a-token")
	rec := h.post(body, h.signed(t, body))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var answer []Feedback
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatal(err)
	}
	want := []Feedback{
		{TokenHash: strings.TrimPrefix(token.Hash(h.leaked), "sha256:"), TokenType: "apikey_operator_token", Label: TruePositive},
		{TokenHash: strings.TrimPrefix(token.Hash(unknown), "sha256:"), TokenType: "apikey_operator_token", Label: FalsePositive},
		{TokenHash: strings.TrimPrefix(token.Hash("not-a-token"), "sha256:"), TokenType: "apikey_operator_token", Label: FalsePositive},
	}
	if len(answer) != len(want) {
		t.Fatalf("answer %+v, want %+v", answer, want)
	}
	for i := range want {
		if answer[i] != want[i] {
			t.Errorf("answer[%d] = %+v, want %+v", i, answer[i], want[i])
		}
	}
	// The revoker saw both well-formed tokens, by hash only; the
	// malformed string was never looked up.
	if len(h.revoker.seen) != 2 || h.revoker.seen[0].Hash != token.Hash(h.leaked) || h.revoker.seen[0].Reporter != "github" ||
		h.revoker.seen[0].URL != "https://github.com/octo/repo/blob/abc/config.env" || h.revoker.seen[0].Source != "content" {
		t.Fatalf("revoker saw %+v", h.revoker.seen)
	}
	if got := testutil.ToFloat64(h.handler.metrics.tokens.WithLabelValues("github", TruePositive)); got != 1 {
		t.Errorf("true positives counted %v, want 1", got)
	}
	if strings.Contains(rec.Body.String(), h.leaked) || strings.Contains(h.logs.String(), h.leaked) {
		t.Fatal("the answer or the logs hold the reported token")
	}
}

func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	h := newHarness(t)
	body := report(t, h.leaked)
	good := h.signed(t, body)
	other := NewReporter(t)
	tampered := bytes.Replace(body, []byte("content"), []byte("commit!"), 1)
	big := append([]byte(`[{"token":"`), bytes.Repeat([]byte("a"), 70<<10)...)
	big = append(big, []byte(`"}]`)...)
	malformed := []byte(`{"token":"` + h.leaked + `"}`)

	cases := []struct {
		name    string
		method  string
		body    []byte
		headers map[string]string
		status  int
		result  result
	}{
		{"unsigned", http.MethodPost, body, nil, 401, resultUnsigned},
		{"no signature", http.MethodPost, body, map[string]string{GitHubKeyIDHeader: h.reporter.ID}, 401, resultUnsigned},
		{"no key identifier", http.MethodPost, body, map[string]string{GitHubSignatureHeader: good[GitHubSignatureHeader]}, 401, resultUnsigned},
		{"tampered body", http.MethodPost, tampered, good, 401, resultBadSig},
		{"signed by another key under our reporter's identifier", http.MethodPost, body,
			map[string]string{GitHubKeyIDHeader: h.reporter.ID, GitHubSignatureHeader: other.Sign(t, body)}, 401, resultBadSig},
		{"unknown key identifier", http.MethodPost, body,
			map[string]string{GitHubKeyIDHeader: "no-such-key", GitHubSignatureHeader: good[GitHubSignatureHeader]}, 401, resultBadSig},
		{"huge key identifier", http.MethodPost, body,
			map[string]string{GitHubKeyIDHeader: strings.Repeat("k", 4096), GitHubSignatureHeader: good[GitHubSignatureHeader]}, 401, resultBadSig},
		{"signature not base64", http.MethodPost, body,
			map[string]string{GitHubKeyIDHeader: h.reporter.ID, GitHubSignatureHeader: "!!!"}, 401, resultBadSig},
		{"oversized", http.MethodPost, big, h.signed(t, big), 413, resultTooLarge},
		{"signed but not an array", http.MethodPost, malformed, h.signed(t, malformed), 400, resultMalformed},
		{"GET", http.MethodGet, nil, nil, 405, resultMethod},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, GitHubPath, bytes.NewReader(c.body))
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, rec.Code, c.status, rec.Body)
		}
		if got := testutil.ToFloat64(h.handler.metrics.requests.WithLabelValues("github", string(c.result))); got < 1 {
			t.Errorf("%s: not counted as %s", c.name, c.result)
		}
		if strings.Contains(rec.Body.String(), h.leaked) {
			t.Errorf("%s: the answer holds the token", c.name)
		}
	}
	if len(h.revoker.seen) != 0 {
		t.Fatalf("a refused request reached the revoker: %+v", h.revoker.seen)
	}
	if strings.Contains(h.logs.String(), h.leaked) {
		t.Fatal("the logs hold the token")
	}
}

func TestReplayIsRefusedEvenWithAnotherValidSignature(t *testing.T) {
	h := newHarness(t)
	body := report(t, h.leaked)
	sig := h.signed(t, body)
	if rec := h.post(body, sig); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := h.post(body, sig); rec.Code != http.StatusConflict {
		t.Fatalf("same request again: %d, want 409", rec.Code)
	}
	// A fresh signature of the same body (ECDSA signs with fresh
	// randomness), and the malleated twin (r, n-s) of the first one.
	if rec := h.post(body, h.signed(t, body)); rec.Code != http.StatusConflict {
		t.Fatalf("re-signed body: %d, want 409", rec.Code)
	}
	if rec := h.post(body, map[string]string{GitHubKeyIDHeader: h.reporter.ID, GitHubSignatureHeader: malleate(t, sig[GitHubSignatureHeader])}); rec.Code != http.StatusConflict {
		t.Fatalf("malleated signature: %d, want 409", rec.Code)
	}
	if len(h.revoker.seen) != 1 {
		t.Fatalf("the revoker acted %d times, want once", len(h.revoker.seen))
	}
}

// malleate turns a valid ECDSA signature (r, s) into (r, n-s), also valid.
func malleate(t *testing.T, sigB64 string) string {
	raw, _ := base64.StdEncoding.DecodeString(sigB64)
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(raw, &sig); err != nil {
		t.Fatal(err)
	}
	sig.S = new(big.Int).Sub(elliptic.P256().Params().N, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

func TestAFailedRevocationLetsTheRetryThrough(t *testing.T) {
	h := newHarness(t)
	h.revoker.fail = true
	body := report(t, h.leaked)
	if rec := h.post(body, h.signed(t, body)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("failing revoker: %d, want 503", rec.Code)
	}
	h.revoker.fail = false
	if rec := h.post(body, h.signed(t, body)); rec.Code != http.StatusOK {
		t.Fatalf("retry: %d, want 200", rec.Code)
	}
}

func TestUnknownKeyIdentifiersDoNotHammerTheReporter(t *testing.T) {
	r := NewReporter(t)
	now := time.Unix(1_700_000_000, 0)
	ks := &HTTPKeySet{URL: r.Server.URL, Now: func() time.Time { return now }}
	for range 50 {
		if _, err := ks.PublicKey(context.Background(), "made-up"); err != ErrUnknownKey {
			t.Fatalf("made-up identifier: %v", err)
		}
	}
	if _, err := ks.PublicKey(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if r.Fetches() != 1 {
		t.Fatalf("%d fetches for 50 unknown identifiers within a minute, want 1", r.Fetches())
	}
	now = now.Add(2 * time.Minute)
	_, _ = ks.PublicKey(context.Background(), "made-up")
	if r.Fetches() != 2 {
		t.Fatalf("%d fetches after a minute, want 2 (a rotated key is picked up)", r.Fetches())
	}
}

func TestKeySetRefusesKeysThatAreNotP256(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if _, err := parsePublicKey(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))); err == nil {
		t.Fatal("accepted a P-384 key")
	}
	if _, err := parsePublicKey("not pem"); err == nil {
		t.Fatal("accepted a non-PEM key")
	}
}

// The cached keys are trusted for MaxAge only: a key the reporter
// withdrew stops verifying at the next fetch. A failed fetch answers an
// error (the report gets 503, the reporter retries) and is not retried
// before MinRefetch.
func TestKeySetCacheExpiresAndFailuresAreNotRetriedAtOnce(t *testing.T) {
	r := NewReporter(t)
	now := time.Unix(1_700_000_000, 0)
	withdrawn := false
	down := false
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case down:
			http.Error(w, "down", http.StatusBadGateway)
		case withdrawn:
			_, _ = w.Write([]byte(`{"public_keys":[]}`))
		default:
			resp, err := http.Get(r.Server.URL)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(w, resp.Body)
		}
	}))
	t.Cleanup(keys.Close)
	ks := &HTTPKeySet{URL: keys.URL, MaxAge: 10 * time.Minute, MinRefetch: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()
	if _, err := ks.PublicKey(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	withdrawn = true
	now = now.Add(9 * time.Minute)
	if _, err := ks.PublicKey(ctx, r.ID); err != nil {
		t.Fatalf("within MaxAge: %v", err)
	}
	if r.Fetches() != 1 {
		t.Fatalf("%d fetches within MaxAge, want 1", r.Fetches())
	}
	now = now.Add(2 * time.Minute)
	if _, err := ks.PublicKey(ctx, r.ID); err != ErrUnknownKey {
		t.Fatalf("a withdrawn key after MaxAge: %v, want ErrUnknownKey", err)
	}
	withdrawn, down = false, true
	now = now.Add(2 * time.Minute)
	if _, err := ks.PublicKey(ctx, r.ID); err == nil || err == ErrUnknownKey {
		t.Fatalf("a failed fetch: %v, want the fetch's error", err)
	}
	down = false
	now = now.Add(30 * time.Second)
	if _, err := ks.PublicKey(ctx, r.ID); err == nil || err == ErrUnknownKey {
		t.Fatalf("within MinRefetch of a failed fetch: %v, want the same error, no new fetch", err)
	}
	now = now.Add(31 * time.Second)
	if _, err := ks.PublicKey(ctx, r.ID); err != nil {
		t.Fatalf("after MinRefetch: %v", err)
	}
}
