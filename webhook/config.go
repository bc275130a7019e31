package webhook

import (
	"time"

	"k8s.io/utils/clock"

	"github.com/apikey-operator/apikey-operator/internal/hashindex"
)

// MaxKeyLifetimeAnnotation on a Namespace caps the lifetime of the keys in
// it, as a Go duration (for example 720h). It can only tighten the
// operator's --max-key-lifetime, never loosen it: a namespace is a tenant,
// and a tenant must not be able to lift the cluster's policy.
const MaxKeyLifetimeAnnotation = "keys.apikey-operator.io/max-key-lifetime"

// Config is what the webhooks decide with.
type Config struct {
	// DefaultLifetime is a key's life when spec.expiresAt is unset: the
	// same value the controller uses (--default-key-lifetime).
	DefaultLifetime time.Duration
	// MaxLifetime caps every key's life, counted from its creation
	// (--max-key-lifetime). Zero: no cluster-wide cap.
	MaxLifetime time.Duration
	// Clock tells the time; nil means the real clock.
	Clock clock.PassiveClock
	// Hashes finds keys by token hash: the process's one index
	// (internal/hashindex), shared with the controller. Required.
	Hashes *hashindex.Index
}

func (c Config) clock() clock.PassiveClock {
	if c.Clock == nil {
		return clock.RealClock{}
	}
	return c.Clock
}
