package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// maxPreviousHashes bounds status.previousHashes; the oldest go first.
const maxPreviousHashes = 16

// The functions here decide a key's lifecycle from its object and the
// current time alone, so they are tested without a cluster.

// rotateRequested tells whether the rotate annotation holds a value the
// operator has not acted on yet.
func rotateRequested(key *keysv1.ApiKey) bool {
	v, ok := key.Annotations[keysv1.RotateAnnotation]
	return ok && v != key.Status.ObservedRotateAnnotation
}

// nextScheduledRotation is when rotation.period next falls due, or zero
// when the key has no period or no token yet.
func nextScheduledRotation(key *keysv1.ApiKey) time.Time {
	r := key.Spec.Rotation
	if r == nil || r.Period == nil || r.Period.Duration <= 0 {
		return time.Time{}
	}
	last := key.Status.LastRotatedAt
	if last == nil {
		last = key.Status.IssuedAt
	}
	if last == nil {
		return time.Time{}
	}
	return last.Add(r.Period.Duration)
}

// rotationDue tells whether the token must be replaced now.
func rotationDue(key *keysv1.ApiKey, now time.Time) bool {
	if key.Status.Hash == "" {
		return false
	}
	next := nextScheduledRotation(key)
	return rotateRequested(key) || (!next.IsZero() && !now.Before(next))
}

func gracePeriod(key *keysv1.ApiKey) time.Duration {
	if r := key.Spec.Rotation; r != nil && r.GracePeriod != nil {
		return r.GracePeriod.Duration
	}
	return 0
}

// retire moves the current hash into previousHashes for the grace period
// (or drops it when there is none) and keeps the list bounded.
func retire(status *keysv1.ApiKeyStatus, grace time.Duration, now time.Time) {
	if status.Hash == "" || grace <= 0 {
		return
	}
	status.PreviousHashes = append(status.PreviousHashes, keysv1.PreviousHash{
		Hash:       status.Hash,
		ValidUntil: metav1.NewTime(now.Add(grace)),
	})
	if n := len(status.PreviousHashes); n > maxPreviousHashes {
		status.PreviousHashes = status.PreviousHashes[n-maxPreviousHashes:]
	}
}

// prunePreviousHashes drops the hashes whose grace period has ended.
func prunePreviousHashes(status *keysv1.ApiKeyStatus, now time.Time) {
	kept := status.PreviousHashes[:0]
	for _, p := range status.PreviousHashes {
		if now.Before(p.ValidUntil.Time) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	status.PreviousHashes = kept
}

// requeueAfter is the time until the next instant the key changes by
// itself: expiry, a scheduled rotation, or the end of a grace period.
// Zero means nothing is scheduled.
func requeueAfter(key *keysv1.ApiKey, expiry, now time.Time) time.Duration {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(expiry)
	if now.Before(expiry) {
		consider(nextScheduledRotation(key))
	}
	for _, p := range key.Status.PreviousHashes {
		consider(p.ValidUntil.Time)
	}
	if next.IsZero() {
		return 0
	}
	return next.Sub(now)
}
