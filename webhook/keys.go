package webhook

import (
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The effective values of a key's optional fields, as the controller and
// the REST dialects read them when the webhook has not defaulted them
// (keys created while the webhook was off).

// keyName is spec.name, or metadata.name.
func keyName(key *keysv1.ApiKey) string {
	if key.Spec.Name != "" {
		return string(key.Spec.Name)
	}
	return key.Name
}

// secretNameOf is spec.secretName, or metadata.name.
func secretNameOf(key *keysv1.ApiKey) string {
	if key.Spec.SecretName != "" {
		return key.Spec.SecretName
	}
	return key.Name
}

// observedSecretName is the Secret a stored key writes to: spec.secretName,
// else the one the controller recorded, else metadata.name.
func observedSecretName(key *keysv1.ApiKey) string {
	if key.Spec.SecretName != "" {
		return key.Spec.SecretName
	}
	if key.Status.SecretName != "" {
		return key.Status.SecretName
	}
	return key.Name
}

// lifeStart is when a key's lifetime is counted from: its creation, or now
// for a key being created (the API server sets creationTimestamp after
// admission).
func lifeStart(key *keysv1.ApiKey, now time.Time) time.Time {
	if key.CreationTimestamp.IsZero() {
		return now
	}
	return key.CreationTimestamp.Time
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
