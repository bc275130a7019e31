package webhook

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// notInPast refuses to create a key that is dead on arrival. Updates may
// set a past expiresAt: that is how a key is retired at once.
func (v *apiKeyValidator) notInPast(key *keysv1.ApiKey, now time.Time) *field.Error {
	at := key.Spec.ExpiresAt
	if at == nil || at.After(now) {
		return nil
	}
	return field.Invalid(specPath.Child("expiresAt"), formatTime(at.Time), fmt.Sprintf(
		"must be in the future; set a later time, or leave spec.expiresAt out for the default lifetime of %s",
		v.defaultLifetime))
}

// withinLifetime refuses a key that would live longer than the cluster's
// or its namespace's limit, counted from start: the key's creation.
func (v *apiKeyValidator) withinLifetime(ctx context.Context, key *keysv1.ApiKey, start time.Time) (*field.Error, error) {
	at := key.Spec.ExpiresAt
	if at == nil {
		return nil, nil
	}
	limit, err := v.policy.limit(ctx, key)
	if err != nil || !limit.set() {
		return nil, err
	}
	latest := start.Add(limit.max)
	if !at.After(latest) {
		return nil, nil
	}
	return field.Invalid(specPath.Child("expiresAt"), formatTime(at.Time), fmt.Sprintf(
		"exceeds the maximum key lifetime of %s (%s), counted from the key's creation; set spec.expiresAt to %s or earlier",
		limit.max, limit.source, formatTime(latest.Truncate(time.Second)))), nil
}
