package metricsauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// fakeKube answers TokenReviews (every token is user "scraper") and
// SubjectAccessReviews (allowed for get /metrics), counting the
// TokenReviews and keeping the tokens they carried.
type fakeKube struct {
	reviews atomic.Int32
	hold    chan struct{} // when non-nil, TokenReviews wait until it is closed
	seen    sync.Map      // tokens TokenReview was asked about
}

func (f *fakeKube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
		f.reviews.Add(1)
		var tr authenticationv1.TokenReview
		_ = json.Unmarshal(body, &tr)
		f.seen.Store(tr.Spec.Token, true)
		if f.hold != nil {
			<-f.hold
		}
		tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "scraper"}}
		_ = json.NewEncoder(w).Encode(&tr)
	case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
		var sar authorizationv1.SubjectAccessReview
		_ = json.Unmarshal(body, &sar)
		sar.Status.Allowed = sar.Spec.NonResourceAttributes != nil && sar.Spec.NonResourceAttributes.Path == "/metrics"
		_ = json.NewEncoder(w).Encode(&sar)
	default:
		http.NotFound(w, r)
	}
}

func serve(t *testing.T, kube *fakeKube) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(kube)
	t.Cleanup(api.Close)
	cfg := &rest.Config{Host: api.URL, QPS: -1} // as the operator runs (--kube-api-qps)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Filter(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := f(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "# HELP up") }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// An API key sent to the metrics port is refused without a TokenReview,
// whatever the case of "Bearer"; a Kubernetes token goes through.
func TestAPIKeyNeverReachesTokenReview(t *testing.T) {
	kube := &fakeKube{}
	srv := serve(t, kube)
	key, err := token.Mint(token.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"Bearer " + key, "bearer " + key, "BEARER  " + key} {
		if got := get(t, srv.URL, auth); got != http.StatusUnauthorized {
			t.Errorf("%.8s…: %d, want 401", auth, got)
		}
	}
	if n := kube.reviews.Load(); n != 0 {
		t.Fatalf("%d TokenReviews for an API key, want none", n)
	}
	kube.seen.Range(func(k, _ any) bool { t.Errorf("TokenReview saw %q", k); return true })
	if got := get(t, srv.URL, "Bearer sha256~kubernetes-token"); got != http.StatusOK {
		t.Errorf("a Kubernetes token: %d, want 200", got)
	}
	if n := kube.reviews.Load(); n != 1 {
		t.Errorf("%d TokenReviews for a Kubernetes token, want 1", n)
	}
	if got := get(t, srv.URL, ""); got != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", got)
	}
}

// At most MaxInFlight requests wait on TokenReview; the next is answered
// 429 at once, and the endpoint serves again once they are done.
func TestBoundsTokenReviewsInFlight(t *testing.T) {
	kube := &fakeKube{hold: make(chan struct{})}
	srv := serve(t, kube)
	var wg sync.WaitGroup
	codes := make(chan int, MaxInFlight)
	for i := range MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- get(t, srv.URL, fmt.Sprintf("Bearer unknown-%d", i)) // distinct: no cache hit
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for kube.reviews.Load() < MaxInFlight {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d TokenReviews arrived", kube.reviews.Load(), MaxInFlight)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := get(t, srv.URL, "Bearer one-too-many"); got != http.StatusTooManyRequests {
		t.Errorf("request %d: %d, want 429", MaxInFlight+1, got)
	}
	if n := kube.reviews.Load(); n != MaxInFlight {
		t.Errorf("%d TokenReviews, want %d: the request beyond the bound reached kube-apiserver", n, MaxInFlight)
	}
	close(kube.hold)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a held request ended %d, want 200", c)
		}
	}
	if got := get(t, srv.URL, "Bearer after"); got != http.StatusOK {
		t.Errorf("after the held requests: %d, want 200", got)
	}
}
