package v1alpha1

import "time"

// The effective values of a key's optional fields: what the controller,
// the webhook, the key store, verify and the plugin all read, whether or
// not the admission webhook defaulted them (keys created while it was
// off). Each reads only the object's own fields, so api/ stays free of
// logic that needs anything else.

// DisplayName is spec.name, or metadata.name.
func (k *ApiKey) DisplayName() string {
	if k.Spec.Name != "" {
		return string(k.Spec.Name)
	}
	return k.Name
}

// HashOnly tells whether the key declares its token's hash
// (spec.tokenHash) instead of having a token minted into a Secret.
func (k *ApiKey) HashOnly() bool { return k.Spec.TokenHash != "" }

// SecretName is the Secret the key's token belongs in: spec.secretName,
// or metadata.name.
func (k *ApiKey) SecretName() string {
	if k.Spec.SecretName != "" {
		return k.Spec.SecretName
	}
	return k.Name
}

// IssuedSecretName is the Secret that holds the key's token now: the one
// the controller recorded in status, else SecretName. The two differ only
// before the first issue (the webhook keeps spec.secretName once issued).
func (k *ApiKey) IssuedSecretName() string {
	if k.Status.SecretName != "" {
		return k.Status.SecretName
	}
	return k.SecretName()
}

// IsEnabled is spec.enabled, true when unset.
func (k *ApiKey) IsEnabled() bool {
	return k.Spec.Enabled == nil || *k.Spec.Enabled
}

// EffectiveExpiry is when the key stops verifying: spec.expiresAt, or its
// creation plus defaultLifetime (--default-key-lifetime). The controller
// decides with it and records the result in status.expiresAt.
func (k *ApiKey) EffectiveExpiry(defaultLifetime time.Duration) time.Time {
	if k.Spec.ExpiresAt != nil {
		return k.Spec.ExpiresAt.Time
	}
	return k.CreationTimestamp.Add(defaultLifetime)
}

// Expiry is the expiry as readers that do not know the default lifetime
// see it: spec.expiresAt, else what the controller recorded in
// status.expiresAt; false when neither is set yet.
func (k *ApiKey) Expiry() (time.Time, bool) {
	switch {
	case k.Spec.ExpiresAt != nil:
		return k.Spec.ExpiresAt.Time, true
	case k.Status.ExpiresAt != nil:
		return k.Status.ExpiresAt.Time, true
	}
	return time.Time{}, false
}
