package webhook

import (
	"time"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The effective values of a key's optional fields are methods of the API
// type (api/v1alpha1/apikey_effective.go); what is here is the webhook's own.

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
