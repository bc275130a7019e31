package apiserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/apikey-operator/apikey-operator/internal/access"
	apikeyaudit "github.com/apikey-operator/apikey-operator/internal/audit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// dialectAuthn authenticates a dialect request: an API key (Authorization:
// Bearer, X-API-Key, or Basic with the key as password) through the verify
// core, else a Kubernetes identity through the delegated authenticator
// (TokenReview, client certificate, front-proxy headers). It never
// answers: it records the caller, or why there is none, in the context,
// and the dialect answers in its own shape.
//
// The order matters for two promises. A token with the API-key shape, or
// sent where only an API key can be, never goes to TokenReview (it would
// leave this process and land in kube-apiserver's audit log). A bearer
// token without that shape (a JWT, OpenShift's sha256~, EKS, GKE, static
// or bootstrap tokens) reaches TokenReview before the brute-force guard
// charges anything, so failed API-key guesses from a NAT neighbour never
// throttle a Kubernetes user; it is charged only once neither the index
// nor TokenReview knows it.
type dialectAuthn struct {
	verifier   *verify.Verifier
	kubernetes authenticator.Request
	// reviews bounds the TokenReviews in flight: the dialects are served
	// before the generic server's max-in-flight filter, and a bearer token
	// nobody knows costs a TokenReview (the delegated authenticator caches
	// answers, for successes and failures alike).
	reviews chan struct{}
}

// maxTokenReviews is how many TokenReviews the dialects wait on at once;
// beyond it a request is answered as rate-limited.
const maxTokenReviews = 32

func newDialectAuthn(v *verify.Verifier, kubernetes authenticator.Request) *dialectAuthn {
	return &dialectAuthn{verifier: v, kubernetes: kubernetes, reviews: make(chan struct{}, maxTokenReviews)}
}

func (a *dialectAuthn) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := a.authenticate(r)
		// The audit filter and the ApiKey's Events name the caller and
		// where it called from.
		ctx = apikeyaudit.WithSource(ctx, clientIP(r))
		caller := access.CallerFrom(ctx)
		if caller != nil && caller.User != nil {
			ctx = request.WithUser(ctx, caller.User)
			if k := caller.Key; k != nil {
				apikeyaudit.Actor(ctx, k.Namespace, k.Name, k.Prefix)
			}
		} else {
			ctx = request.WithUser(ctx, &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}})
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *dialectAuthn) authenticate(r *http.Request) context.Context {
	ctx := r.Context()
	key, explicit := presentedKey(r)
	ip := clientIP(r)
	switch {
	case key == "":
		return a.byKubernetes(ctx, r)
	case explicit || token.Shape(key):
		caller, failure, _ := a.byKey(key, ip, false)
		return withResult(ctx, caller, failure)
	}
	// A bearer token without the API-key shape: a caller-chosen secret of
	// a key, or a Kubernetes token. The index answers for free.
	if caller, failure, known := a.byKey(key, ip, true); known {
		return withResult(ctx, caller, failure)
	}
	ctx = a.byKubernetes(ctx, r)
	if err := access.Authenticated(ctx); err == nil || errors.Is(err, access.ErrRateLimited) {
		return ctx
	}
	// Neither an API key nor a Kubernetes token: now it is a failure.
	if ok, retry := a.verifier.Charge(ip); !ok {
		return access.WithFailure(r.Context(), &access.Failure{Err: access.ErrRateLimited, RetryAfter: retry})
	}
	return access.WithFailure(r.Context(), &access.Failure{Err: access.ErrInvalidCredentials})
}

func withResult(ctx context.Context, caller *access.Caller, failure *access.Failure) context.Context {
	if caller != nil {
		return access.WithCaller(ctx, caller)
	}
	return access.WithFailure(ctx, failure)
}

// byKubernetes runs the delegated authenticator, at most maxTokenReviews
// at once when it may cost a TokenReview.
func (a *dialectAuthn) byKubernetes(ctx context.Context, r *http.Request) context.Context {
	if a.kubernetes == nil {
		return ctx
	}
	if r.Header.Get("Authorization") != "" {
		select {
		case a.reviews <- struct{}{}:
			defer func() { <-a.reviews }()
		default:
			return access.WithFailure(ctx, &access.Failure{Err: access.ErrRateLimited, RetryAfter: time.Second})
		}
	}
	resp, ok, err := a.kubernetes.AuthenticateRequest(r)
	switch {
	case err != nil:
		return access.WithFailure(ctx, &access.Failure{Err: access.ErrInvalidCredentials})
	case !ok || resp.User == nil || resp.User.GetName() == user.Anonymous:
		return ctx
	}
	return access.WithCaller(ctx, &access.Caller{User: resp.User})
}

// presentedKey finds an API key in the request. explicit is true for the
// headers that can hold nothing but an API key. The Bearer scheme is
// matched without regard to case, as HTTP and kube-apiserver do.
func presentedKey(r *http.Request) (key string, explicit bool) {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	if _, password, ok := r.BasicAuth(); ok {
		return password, true
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:]), false
	}
	return "", false
}

// byKey verifies an API key. known tells whether the token belongs to a
// key at all; with uncharged, a token that does not is not counted by the
// brute-force guard (the caller decides).
func (a *dialectAuthn) byKey(key string, ip netip.Addr, uncharged bool) (*access.Caller, *access.Failure, bool) {
	// Any namespace: an API-key caller acts only inside its own namespace
	// (internal/access), so its key is accepted wherever it lives.
	res := a.verifier.Verify(&verify.Request{Token: key, IP: ip, AnyNamespace: true, Uncharged: uncharged})
	known := res.Key != nil || res.Code == verify.WrongAudience
	switch res.Code {
	case verify.Valid:
		k := res.Key
		return &access.Caller{
			User: &user.DefaultInfo{Name: "apikey:" + k.Namespace + "/" + k.Name, Groups: []string{access.APIKeyGroup}},
			Key:  &access.KeyCaller{Namespace: k.Namespace, Name: k.Name, Prefix: k.KeyPrefix, Permissions: k.Permissions},
		}, nil, true
	case verify.IPNotAllowed:
		return nil, &access.Failure{Err: access.ErrIPNotAllowed}, true
	case verify.RateLimited, verify.QuotaExceeded, verify.QuotaUnavailable:
		// The dialects know one "slow down" answer; a spent quota is one
		// (with Retry-After until its refill, when it has one).
		return nil, &access.Failure{Err: access.ErrRateLimited, RetryAfter: max(res.RetryAfter, time.Second)}, true
	}
	return nil, &access.Failure{Err: access.ErrInvalidCredentials}, known
}

// clientIP is the peer's address. The REST dialects are reached directly
// on the Service, so no forwarding header is trusted here.
func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
