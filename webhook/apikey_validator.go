package webhook

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
)

// +kubebuilder:webhook:path=/validate-keys-apikey-operator-io-v1alpha1-apikey,mutating=false,failurePolicy=fail,sideEffects=None,groups=keys.apikey-operator.io,resources=apikeys,verbs=create;update,versions=v1alpha1,name=vapikey.keys.apikey-operator.io,admissionReviewVersions=v1,timeoutSeconds=10

// apiKeyValidator checks the rules about a key that the CRD's CEL rules
// cannot: those that need the clock, the key's Namespace, other keys, its
// role or the Secret it names.
type apiKeyValidator struct {
	defaultLifetime time.Duration
	policy          lifetimePolicy
	clock           clock.PassiveClock
	// cached reads keys through the manager's indexes; live reads roles
	// and Secrets uncached, so a role applied just before its key counts,
	// and Secrets the operator does not cache are seen at all.
	cached client.Reader
	// hashes finds the keys that hold a token hash.
	hashes *hashindex.Index
	live   client.Reader
}

var specPath = field.NewPath("spec")

// check is one rule: a field error for the user, or an error of the
// webhook itself.
type check func(ctx context.Context) (*field.Error, error)

// ValidateCreate counts the key's life from now rather than from
// creationTimestamp, which the API server has set by now: the two are the
// same instant to within the request's latency, and the defaulter, which
// runs before creationTimestamp exists, counts from now too.
func (v *apiKeyValidator) ValidateCreate(ctx context.Context, key *keysv1.ApiKey) (admission.Warnings, error) {
	now := v.clock.Now()
	checks := []check{
		func(context.Context) (*field.Error, error) { return v.notInPast(key, now), nil },
		func(ctx context.Context) (*field.Error, error) { return v.withinLifetime(ctx, key, now) },
		func(ctx context.Context) (*field.Error, error) { return v.uniqueName(ctx, key) },
		func(ctx context.Context) (*field.Error, error) { return v.roleExists(ctx, key) },
		func(ctx context.Context) (*field.Error, error) { return v.consumerExists(ctx, key) },
	}
	if key.HashOnly() {
		checks = append(checks,
			func(ctx context.Context) (*field.Error, error) { return v.hashFree(ctx, key) },
			func(context.Context) (*field.Error, error) { return noRotateAnnotation(nil, key), nil })
	} else {
		checks = append(checks, func(ctx context.Context) (*field.Error, error) { return v.secretFree(ctx, key) })
	}
	return nil, run(ctx, key, checks...)
}

// ValidateUpdate checks only what changed: a key that met the rules when
// they were written is not blocked from unrelated edits by a later,
// stricter policy.
func (v *apiKeyValidator) ValidateUpdate(ctx context.Context, old, key *keysv1.ApiKey) (admission.Warnings, error) {
	if key.DeletionTimestamp != nil {
		return nil, nil // never stand in the way of finalizers and cleanup
	}
	checks := []check{func(context.Context) (*field.Error, error) { return secretNameKept(old, key), nil }}
	if !key.Spec.ExpiresAt.Equal(old.Spec.ExpiresAt) {
		checks = append(checks, func(ctx context.Context) (*field.Error, error) {
			return v.withinLifetime(ctx, key, key.CreationTimestamp.Time)
		})
	}
	if key.DisplayName() != old.DisplayName() {
		checks = append(checks, func(ctx context.Context) (*field.Error, error) { return v.uniqueName(ctx, key) })
	}
	if key.HashOnly() {
		if key.Spec.TokenHash != old.Spec.TokenHash {
			checks = append(checks, func(ctx context.Context) (*field.Error, error) { return v.hashFree(ctx, key) })
		}
		checks = append(checks, func(context.Context) (*field.Error, error) { return noRotateAnnotation(old, key), nil })
	}
	if err := run(ctx, key, checks...); err != nil {
		return nil, err
	}
	warnings, err := v.roleWarning(ctx, key)
	if err != nil {
		return nil, err
	}
	more, err := v.consumerWarning(ctx, key)
	return append(warnings, more...), err
}

func (v *apiKeyValidator) ValidateDelete(context.Context, *keysv1.ApiKey) (admission.Warnings, error) {
	return nil, nil
}
