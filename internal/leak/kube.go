package leak

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
)

// maxLeaks bounds status.leaks; the oldest go first.
const maxLeaks = 8

// Kube reacts on ApiKeys: it records the report in status first (so the
// controller, woken by the spec edit that follows, says Leaked), then
// makes the namespace's reaction through the key's own means: spec.enabled,
// or the rotate and end-grace-period annotations the controller acts on.
type Kube struct {
	// Hashes finds the keys that verify with a hash: the process's one
	// index (internal/hashindex). Claimants, not Holders: a hash only
	// declared, not yet verifying, is no leak of a working key.
	Hashes *hashindex.Index
	// Client reads keys through the cache and writes.
	Client client.Client
	// Reader reads uncached: the Namespace's reaction, and a key again
	// after a write conflict.
	Reader   client.Reader
	Recorder recorder.EventRecorder
	// Default is the reaction of a namespace without the annotation.
	Default Reaction
	Log     logr.Logger
}

// Revoke acts on every key that verifies with the hash. Two keys can
// claim one hash only in a race the webhook lost (the verify index then
// resolves it to neither); both are acted on.
func (k *Kube) Revoke(ctx context.Context, s Sighting) (bool, error) {
	names, err := k.Hashes.Claimants(s.Hash)
	if err != nil {
		return false, fmt.Errorf("find keys by token hash: %w", err)
	}
	found := false
	for _, name := range names {
		key := &keysv1.ApiKey{}
		if err := k.Client.Get(ctx, name, key); err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted since the index saw it
			}
			return found, fmt.Errorf("read ApiKey %s: %w", name, err)
		}
		// The index follows the informer; the key read may be newer.
		if !slices.Contains(key.TokenHashes(), s.Hash) {
			continue
		}
		found = true
		if err := k.react(ctx, key, s); err != nil {
			return true, err
		}
	}
	return found, nil
}

// action is what is done to one key, as recorded in status.
type action string

const (
	actDisable  action = "disable"
	actRotate   action = "rotate"
	actEndGrace action = "endGracePeriod"
	actReport   action = "report"
)

func (k *Kube) react(ctx context.Context, key *keysv1.ApiKey, s Sighting) error {
	reaction := k.reaction(ctx, key.Namespace)
	act := decide(key, s.Hash, reaction)
	if err := k.record(ctx, key, s, act); err != nil {
		return err
	}
	if err := k.apply(ctx, key, act, s); err != nil {
		return err
	}
	k.Recorder.Eventf(key, nil, corev1.EventTypeWarning, keysv1.ReasonLeaked, "ReportLeak",
		"%s reported a token of this key (hash %s) found in public at %s (source %s); reaction: %s",
		s.Reporter, shortHash(s.Hash), orNone(s.URL), orNone(s.Source), act)
	k.Log.Info("leaked token reported", "reporter", s.Reporter, "namespace", key.Namespace, "apikey", key.Name,
		"hash", shortHash(s.Hash), "reaction", act)
	return nil
}

// decide picks the action: a token in its grace period is ended without
// touching the current one; rotation needs a token the operator mints.
func decide(key *keysv1.ApiKey, hash string, r Reaction) action {
	switch {
	case r == Report:
		return actReport
	case key.Status.Hash != hash:
		return actEndGrace
	case r == Rotate && !key.HashOnly():
		return actRotate
	}
	return actDisable
}

// reaction reads the namespace's annotation; a value that is not a
// reaction counts as the default, and is logged.
func (k *Kube) reaction(ctx context.Context, ns string) Reaction {
	n := &metav1.PartialObjectMetadata{}
	n.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := k.Reader.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		k.Log.Error(err, "read the namespace's leak reaction; using the default", "namespace", ns, "reaction", k.Default)
		return k.Default
	}
	v, ok := n.Annotations[keysv1.LeakReactionAnnotation]
	if !ok {
		return k.Default
	}
	r, err := ParseReaction(v)
	if err != nil {
		k.Log.Error(err, "the namespace's leak reaction annotation is not a reaction; using the default", "namespace", ns, "reaction", k.Default)
		return k.Default
	}
	return r
}

// record appends the report to status.leaks under optimistic locking, so
// a concurrent status write (the controller's) is never overwritten. A
// report already recorded (same hash, place and reaction) is not added twice.
func (k *Kube) record(ctx context.Context, key *keysv1.ApiKey, s Sighting, act action) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		for _, l := range key.Status.Leaks {
			if l.Hash == s.Hash && l.URL == s.URL && l.Source == s.Source && l.Reaction == string(act) {
				return nil
			}
		}
		before := key.DeepCopy()
		key.Status.Leaks = append(key.Status.Leaks, keysv1.LeakReport{
			Hash: s.Hash, Reporter: s.Reporter, URL: s.URL, Source: s.Source,
			ReportedAt: metav1.NewTime(s.At.UTC().Truncate(1e9)), Reaction: string(act),
		})
		if n := len(key.Status.Leaks); n > maxLeaks {
			key.Status.Leaks = key.Status.Leaks[n-maxLeaks:]
		}
		err := k.Client.Status().Patch(ctx, key, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("record the leak on ApiKey %s/%s: %w", key.Namespace, key.Name, err)
			}
			return nil
		}
		if gerr := k.Reader.Get(ctx, client.ObjectKeyFromObject(key), key); gerr != nil {
			return fmt.Errorf("read ApiKey %s/%s again: %w", key.Namespace, key.Name, gerr)
		}
		return err
	})
}

// apply makes the action's edit; each is idempotent, so a repeated or
// replayed report changes nothing more.
func (k *Kube) apply(ctx context.Context, key *keysv1.ApiKey, act action, s Sighting) error {
	stamp := strconv.FormatInt(s.At.UnixNano(), 10)
	var patch map[string]any
	switch act {
	case actReport:
		return nil
	case actDisable:
		if !key.IsEnabled() {
			return nil
		}
		patch = map[string]any{"spec": map[string]any{"enabled": false}}
	case actRotate:
		// Rotate and end every grace period in one edit: the leaked
		// token stops at once, a new one is minted into the Secret.
		patch = map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			keysv1.RotateAnnotation: stamp, keysv1.EndGracePeriodAnnotation: stamp}}}
	case actEndGrace:
		patch = map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			keysv1.EndGracePeriodAnnotation: stamp}}}
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := k.Client.Patch(ctx, key, client.RawPatch(types.MergePatchType, body)); err != nil {
		return fmt.Errorf("%s ApiKey %s/%s after a leak report: %w", act, key.Namespace, key.Name, err)
	}
	return nil
}

func shortHash(h string) string {
	if len(h) > 19 {
		return h[:19]
	}
	return h
}

func orNone(s string) string {
	if s == "" {
		return "(not given)"
	}
	return s
}
