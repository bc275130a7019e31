package apiserver

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Bounds of a review request.
const (
	maxReviewPermissions = 64
	maxReviewScope       = 32
	maxReviewScopeBytes  = 253
)

// reviewStorage serves apikeyreviews: create only, nothing stored, like
// TokenReview. It uses the same verify core as the gateways.
type reviewStorage struct {
	verifier *verify.Verifier
	// anyNamespace is --verify-any-namespace: a review naming no
	// namespace and no audience is refused without it.
	anyNamespace bool
}

var (
	_ rest.Storage              = (*reviewStorage)(nil)
	_ rest.Creater              = (*reviewStorage)(nil)
	_ rest.Scoper               = (*reviewStorage)(nil)
	_ rest.SingularNameProvider = (*reviewStorage)(nil)
)

func (r *reviewStorage) New() runtime.Object     { return &accessv1.ApiKeyReview{} }
func (r *reviewStorage) Destroy()                {}
func (r *reviewStorage) NamespaceScoped() bool   { return false }
func (r *reviewStorage) GetSingularName() string { return "apikeyreview" }

// Create answers a review. The response never carries the key.
func (r *reviewStorage) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	var req *accessv1.ApiKeyReview
	switch o := obj.(type) {
	case *review:
		req = o.external()
	case *accessv1.ApiKeyReview:
		// Server-side field management may hand over the versioned form
		// of the same object.
		req = o
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected an ApiKeyReview, got %T", obj))
	}
	ip, errs := validateReview(req, r.anyNamespace)
	if len(errs) > 0 {
		req.Spec.Key = ""
		return nil, apierrors.NewInvalid(accessv1.GroupVersion.WithKind("ApiKeyReview").GroupKind(), req.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	res := r.verifier.Verify(&verify.Request{
		Token: req.Spec.Key, Permissions: req.Spec.Permissions, IP: ip,
		Namespaces: req.Spec.Namespaces, Audiences: req.Spec.Audiences, AnyNamespace: r.anyNamespace,
	})
	out := &review{
		ObjectMeta: metav1.ObjectMeta{Name: req.Name, CreationTimestamp: metav1.Now()},
		Spec: accessv1.ApiKeyReviewSpec{
			IP: req.Spec.IP, Permissions: req.Spec.Permissions, Namespaces: req.Spec.Namespaces, Audiences: req.Spec.Audiences,
		},
		Status: accessv1.ApiKeyReviewStatus{Valid: res.Code == verify.Valid, Reason: res.Code.String()},
	}
	// The core leaves Key nil for a key outside the review's scope.
	if k := res.Key; k != nil && res.Code != verify.Malformed && res.Code != verify.NotFound {
		out.Status.ApiKey = &accessv1.ReviewedApiKey{
			Namespace: k.Namespace, Name: k.Name, KeyPrefix: k.KeyPrefix, Role: k.Role, Consumer: k.Consumer, Permissions: k.Permissions,
		}
		if !k.ExpiresAt.IsZero() {
			out.Status.ApiKey.ExpiresAt = &metav1.Time{Time: k.ExpiresAt}
		}
		out.Status.ApiKey.Usage = reviewedUsage(k, time.Now())
	}
	return out, nil
}

func validateReview(review *accessv1.ApiKeyReview, anyNamespace bool) (netip.Addr, field.ErrorList) {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if review.Spec.Key == "" {
		errs = append(errs, field.Required(spec.Child("key"), "the API key to review"))
	} else if len(review.Spec.Key) > token.MaxLen {
		errs = append(errs, field.TooLong(spec.Child("key"), "", token.MaxLen))
	}
	if len(review.Spec.Permissions) > maxReviewPermissions {
		errs = append(errs, field.TooMany(spec.Child("permissions"), len(review.Spec.Permissions), maxReviewPermissions))
	}
	errs = append(errs, validateScope(spec.Child("namespaces"), review.Spec.Namespaces)...)
	errs = append(errs, validateScope(spec.Child("audiences"), review.Spec.Audiences)...)
	if len(review.Spec.Namespaces) == 0 && len(review.Spec.Audiences) == 0 && !anyNamespace {
		errs = append(errs, field.Required(spec.Child("namespaces"),
			"name the namespaces (or audiences) whose keys the review accepts; a review naming neither is refused unless the server runs with --verify-any-namespace"))
	}
	var ip netip.Addr
	if review.Spec.IP != "" {
		a, err := netip.ParseAddr(review.Spec.IP)
		if err != nil {
			errs = append(errs, field.Invalid(spec.Child("ip"), review.Spec.IP, "must be an IPv4 or IPv6 address"))
		}
		ip = a
	}
	return ip, errs
}

func validateScope(path *field.Path, list []string) field.ErrorList {
	if len(list) > maxReviewScope {
		return field.ErrorList{field.TooMany(path, len(list), maxReviewScope)}
	}
	var errs field.ErrorList
	for i, v := range list {
		if v == "" || len(v) > maxReviewScopeBytes {
			errs = append(errs, field.Invalid(path.Index(i), v, "must have 1 to 253 characters"))
		}
	}
	return errs
}

// reviewedUsage is the key's recorded usage with its last-24-hours figures.
func reviewedUsage(k *verify.Key, now time.Time) *accessv1.ReviewedUsage {
	if k.Usage == nil && k.LastUsedAt.IsZero() {
		return nil
	}
	u := &accessv1.ReviewedUsage{}
	if k.Usage != nil {
		u.Allowed, u.Refused = k.Usage.Allowed, k.Usage.Refused
		u.AllowedLast24h, u.RefusedLast24h = k.Usage.Last24h(now)
	}
	if !k.LastUsedAt.IsZero() {
		u.LastUsedAt = &metav1.Time{Time: k.LastUsedAt}
	}
	return u
}
