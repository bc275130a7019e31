package apiserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// TestTokenReviewsAreBounded: unauthenticated callers cannot make the
// dialects wait on more than maxTokenReviews TokenReviews at once; the
// rest are answered as rate-limited without one (issue 11). The real
// TokenReview path is in authn_order_test.go.
func TestTokenReviewsAreBounded(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	kube := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		calls.Add(1)
		<-release
		return nil, false, errors.New("invalid bearer token")
	})
	v, err := verify.NewVerifier(verify.NewIndex(), prometheus.NewRegistry(), nil, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := newDialectAuthn(v, kube)
	request := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/v1/api-keys", nil)
		r.Header.Set("Authorization", "Bearer sha256~some-kubernetes-token-that-is-no-jwt")
		return r
	}
	var wg sync.WaitGroup
	for range maxTokenReviews {
		wg.Go(func() { a.authenticate(request()) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < maxTokenReviews && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := access.Authenticated(a.authenticate(request())); !errors.Is(got, access.ErrRateLimited) {
		t.Errorf("request beyond the bound: %v, want rate-limited", got)
	}
	if calls.Load() != maxTokenReviews {
		t.Errorf("%d TokenReviews, want %d", calls.Load(), maxTokenReviews)
	}
	close(release)
	wg.Wait()
	if got := access.Authenticated(a.authenticate(request())); !errors.Is(got, access.ErrInvalidCredentials) {
		t.Errorf("once the reviews finished: %v, want invalid credentials", got)
	}
}
