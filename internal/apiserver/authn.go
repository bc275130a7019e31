package apiserver

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// dialectAuthn authenticates a dialect request: an API key (Authorization:
// Bearer, X-API-Key, or Basic with the key as password) through the verify
// core, else a Kubernetes identity through the delegated authenticator
// (TokenReview, client certificate, front-proxy headers). It never
// answers: it records the caller, or why there is none, in the context,
// and the dialect answers in its own shape.
type dialectAuthn struct {
	verifier   *verify.Verifier
	kubernetes authenticator.Request
}

func (a *dialectAuthn) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(a.authenticate(r)))
	})
}

func (a *dialectAuthn) authenticate(r *http.Request) context.Context {
	ctx := r.Context()
	if key, explicit := presentedKey(r); key != "" && (explicit || !looksLikeJWT(key)) {
		caller, failure := a.byKey(key, clientIP(r))
		switch {
		case caller != nil:
			return access.WithCaller(ctx, caller)
		case explicit || token.Shape(key) || failure.Err != access.ErrInvalidCredentials:
			// Plainly meant as an API key: do not send it on to a
			// TokenReview, where it would leave this process.
			return access.WithFailure(ctx, failure)
		}
	}
	if a.kubernetes == nil {
		return ctx
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
// headers that can hold nothing but an API key.
func presentedKey(r *http.Request) (key string, explicit bool) {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	if _, password, ok := r.BasicAuth(); ok {
		return password, true
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(bearer), false
	}
	return "", false
}

// looksLikeJWT tells a Kubernetes service-account token (a JWT) from an
// API key, so it goes to TokenReview without counting as a failed key in
// the brute-force guard.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

func (a *dialectAuthn) byKey(key string, ip netip.Addr) (*access.Caller, *access.Failure) {
	// Any namespace: an API-key caller acts only inside its own namespace
	// (internal/access), so its key is accepted wherever it lives.
	res := a.verifier.Verify(&verify.Request{Token: key, IP: ip, AnyNamespace: true})
	switch res.Code {
	case verify.Valid:
		k := res.Key
		return &access.Caller{
			User: &user.DefaultInfo{Name: "apikey:" + k.Namespace + "/" + k.Name, Groups: []string{access.APIKeyGroup}},
			Key:  &access.KeyCaller{Namespace: k.Namespace, Name: k.Name, Permissions: k.Permissions},
		}, nil
	case verify.IPNotAllowed:
		return nil, &access.Failure{Err: access.ErrIPNotAllowed}
	case verify.RateLimited:
		return nil, &access.Failure{Err: access.ErrRateLimited, RetryAfter: res.RetryAfter}
	}
	return nil, &access.Failure{Err: access.ErrInvalidCredentials}
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
