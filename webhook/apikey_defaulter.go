package webhook

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// +kubebuilder:webhook:path=/mutate-keys-apikey-operator-io-v1alpha1-apikey,mutating=true,failurePolicy=fail,sideEffects=None,groups=keys.apikey-operator.io,resources=apikeys,verbs=create;update,versions=v1alpha1,name=mapikey.keys.apikey-operator.io,admissionReviewVersions=v1,timeoutSeconds=10

// apiKeyDefaulter writes a key's defaults into the object, so the object
// itself shows when the key dies and how the REST dialects name it.
type apiKeyDefaulter struct {
	defaultLifetime time.Duration
	policy          lifetimePolicy
	clock           clock.PassiveClock
}

func (d *apiKeyDefaulter) Default(ctx context.Context, key *keysv1.ApiKey) error {
	// metadata.name is empty here when the key is created with
	// generateName; the effective name then stays metadata.name.
	if key.Spec.Name == "" && key.Name != "" {
		key.Spec.Name = keysv1.KeyName(key.Name)
	}
	if key.Spec.Enabled == nil {
		key.Spec.Enabled = ptr.To(true)
	}
	if key.Spec.ExpiresAt == nil {
		expiry, err := d.defaultExpiry(ctx, key)
		if err != nil {
			return err
		}
		key.Spec.ExpiresAt = &expiry
	}
	return nil
}

// defaultExpiry is the key's effective expiry (ApiKey.EffectiveExpiry:
// creation plus the lifetime) with the default lifetime shortened to the
// lifetime limit when there is a stricter one: a key left to its defaults
// is never refused. Counting from creation on update too means dropping
// spec.expiresAt from a manifest restores the same instant the controller
// would use, instead of granting another year. A key being created has no
// creationTimestamp yet (the API server sets it after admission): its
// life starts now.
func (d *apiKeyDefaulter) defaultExpiry(ctx context.Context, key *keysv1.ApiKey) (metav1.Time, error) {
	lifetime := d.defaultLifetime
	limit, err := d.policy.limit(ctx, key)
	if err != nil {
		return metav1.Time{}, err
	}
	if limit.set() && limit.max < lifetime {
		lifetime = limit.max
	}
	started := *key
	started.CreationTimestamp = metav1.NewTime(lifeStart(key, d.clock.Now()))
	return metav1.NewTime(started.EffectiveExpiry(lifetime).Truncate(time.Second)), nil
}
