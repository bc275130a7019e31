// Package controllers holds the reconcilers of the operator: the ApiKey
// controller mints each key's token into a Secret and keeps the key's
// status (hash, prefix, dates, conditions).
package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// roleRefIndex indexes ApiKeys by the ApiKeyRole they name, so a role's
// arrival wakes exactly the keys that wait for it.
const (
	roleRefIndex = "spec.roleRef.name"
	// consumerRefIndex does the same for the ApiConsumer a key names,
	// and lets the consumer's reconciler count its keys.
	consumerRefIndex = "spec.consumerRef.name"
)

// notOwnedRetry is how often a key whose Secret name is taken by a Secret
// the operator does not own looks again: the operator does not watch
// Secrets it does not own, so it cannot be told when that one goes away.
const notOwnedRetry = time.Minute

// ApiKeyReconciler mints and rotates the token of each ApiKey.
type ApiKeyReconciler struct {
	client.Client
	// APIReader reads past the cache: the one metadata read of a Secret
	// the cache does not hold (see issue).
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock

	// DefaultLifetime is a key's life when spec.expiresAt is unset.
	DefaultLifetime time.Duration
	// TokenPrefix starts every minted token.
	TokenPrefix string
	// MaxConcurrentReconciles is the number of workers.
	MaxConcurrentReconciles int

	// Hashes tells which keys claim each token hash: the process's one
	// index, kept from the manager's ApiKey informer (internal/hashindex).
	Hashes *hashindex.Index
}

// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeys,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeys/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeyroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apiconsumers,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apiconsumers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one ApiKey's Secret and status in line with its spec.
// Status is written once, at the end, and only when it changed: a
// converged key costs no write.
func (r *ApiKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	key := &keysv1.ApiKey{}
	if err := r.Get(ctx, req.NamespacedName, key); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !key.DeletionTimestamp.IsZero() {
		// The Secret carries an owner reference: the garbage collector
		// removes it with the key.
		return ctrl.Result{}, nil
	}
	if wait := r.awaitingAPIServer(ctx, key); wait > 0 {
		// No status write either: the Secret's creation wakes the key.
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	original := key.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(original.Status, key.Status) {
			return
		}
		if perr := r.Status().Patch(ctx, key, client.MergeFrom(original)); perr != nil {
			err = errors.Join(err, fmt.Errorf("write status: %w", client.IgnoreNotFound(perr)))
		}
	}()
	return r.reconcile(ctx, key)
}

// scope is what one reconcile of one key works with.
type scope struct {
	key    *keysv1.ApiKey
	now    time.Time   // decisions use the exact time
	stamp  metav1.Time // recorded times are whole seconds, as the API stores them
	expiry time.Time
	ready  *metav1.Condition // set by the first step that finds the key not ready
}

func (r *ApiKeyReconciler) reconcile(ctx context.Context, key *keysv1.ApiKey) (ctrl.Result, error) {
	now := r.Clock.Now()
	s := &scope{key: key, now: now, stamp: metav1.NewTime(now.Truncate(time.Second))}
	s.expiry = key.EffectiveExpiry(r.DefaultLifetime)
	key.Status.ExpiresAt = ptrTime(metav1.NewTime(s.expiry.Truncate(time.Second)))
	key.Status.ObservedGeneration = key.Generation

	if key.HashOnly() {
		if err := r.declareHash(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	} else if err := r.ensureMinted(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.endGraceIfAsked(key)
	prunePreviousHashes(&key.Status, now)
	if err := r.checkRole(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkConsumer(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.setReady(s)

	if s.ready != nil && s.ready.Reason == keysv1.ReasonSecretTaken {
		return ctrl.Result{RequeueAfter: notOwnedRetry}, nil
	}
	return ctrl.Result{RequeueAfter: requeueAfter(key, s.expiry, now)}, nil
}

// ensureMinted keeps a minted key's Secret and rotates its token when due.
func (r *ApiKeyReconciler) ensureMinted(ctx context.Context, s *scope) error {
	s.key.Status.SecretName = s.key.SecretName()
	secret, err := r.ensureSecret(ctx, s)
	if err != nil || secret == nil {
		return err
	}
	return r.rotateIfDue(ctx, s, secret)
}

// ensureSecret makes sure the key's Secret exists, is owned by the key and
// holds a usable token, and records that token's hash. It returns nil
// when the key has no usable Secret; s.ready then says why.
func (r *ApiKeyReconciler) ensureSecret(ctx context.Context, s *scope) (*corev1.Secret, error) {
	key := s.key
	secret := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Status.SecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return r.issue(ctx, s)
	case err != nil:
		return nil, fmt.Errorf("get secret: %w", err)
	}
	if owner := metav1.GetControllerOf(secret); owner != nil && owner.UID != key.UID {
		s.notReady(keysv1.ReasonSecretTaken, fmt.Sprintf(
			"Secret %q belongs to %s %q; give this key another spec.secretName", secret.Name, owner.Kind, owner.Name))
		return nil, nil
	}
	if err := keysecret.Claim(ctx, r.Client, key, secret); err != nil {
		return nil, err
	}
	if err := r.recordToken(ctx, s, secret); err != nil {
		return nil, err
	}
	if s.ready != nil {
		return nil, nil
	}
	return secret, nil
}

// awaitingAPIServer tells how long to leave a new key's Secret to the API
// server that created the key (keysv1.TokenWriterAnnotation): it writes
// the token it answered with right after the key. Zero once the Secret is
// there, the key has a token, or the grace since the key's creation (not
// a time the annotation could name) has passed, as after a crash of the
// API server between its two writes.
func (r *ApiKeyReconciler) awaitingAPIServer(ctx context.Context, key *keysv1.ApiKey) time.Duration {
	if key.Annotations[keysv1.TokenWriterAnnotation] != keysv1.TokenWriterAPIServer || key.Status.Hash != "" || key.HashOnly() {
		return 0
	}
	wait := key.CreationTimestamp.Add(keysv1.TokenWriterGrace).Sub(r.Clock.Now())
	if wait <= 0 {
		return 0
	}
	err := r.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.SecretName()}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		return 0
	}
	return wait
}

// labelledOurs reads only the metadata of a Secret the cache does not
// hold, to tell the operator's own (labelled) from a foreign one.
func (r *ApiKeyReconciler) labelledOurs(ctx context.Context, secret *corev1.Secret) (bool, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), meta); err != nil {
		return false, fmt.Errorf("read secret metadata: %w", client.IgnoreNotFound(err))
	}
	return keysecret.IsOurs(meta), nil
}

// recordToken makes status follow the token in the Secret.
func (r *ApiKeyReconciler) recordToken(ctx context.Context, s *scope, secret *corev1.Secret) error {
	key := s.key
	value := string(secret.Data[keysv1.SecretKeyField])
	hash := token.Hash(value)
	if hash == key.Status.Hash {
		return nil
	}
	if err := token.WellFormed(value); err != nil {
		// A Secret without a usable token must not leave an older hash
		// verifying: the key is off until the Secret is fixed or deleted.
		key.Status.Hash, key.Status.KeyPrefix = "", ""
		s.notReady(keysv1.ReasonSecretInvalid, fmt.Sprintf(
			"Secret %q has no usable token under data key %q (%d to %d printable characters without spaces); delete the Secret to mint a new key",
			secret.Name, keysv1.SecretKeyField, token.MinLen, token.MaxLen))
		return nil
	}
	taken, err := r.tokenTaken(ctx, key, secret, hash)
	if err != nil {
		return err
	}
	if taken {
		// One token, one key: a token copied from another key (another
		// tenant's, say) is never adopted, and the key's older token
		// stops too, as with an unusable Secret.
		key.Status.Hash, key.Status.KeyPrefix = "", ""
		s.notReady(keysv1.ReasonTokenInUse, fmt.Sprintf(
			"the token in Secret %q belongs to another ApiKey, and a token belongs to one key only; delete the Secret to mint a new token, or put another token in it",
			secret.Name))
		return nil
	}
	switch {
	case key.Status.Hash == "":
		// The Secret was written but status was not (a restart between
		// the two): take the token as issued.
		r.event(key, corev1.EventTypeNormal, "Issued", "Issue", "Issued key %s into Secret %s", token.DisplayPrefix(value), secret.Name)
	case rotationDue(key, s.now):
		// A rotation wrote the Secret and stopped before status: finish it
		// with the token already there rather than minting another.
		r.finishRotation(s, hash, value)
		return nil
	default:
		r.event(key, corev1.EventTypeNormal, "SecretAdopted", "Adopt",
			"The token in Secret %s was replaced; the key now verifies with %s and the old token no longer works", secret.Name, token.DisplayPrefix(value))
	}
	key.Status.Hash = hash
	key.Status.KeyPrefix = token.DisplayPrefix(value)
	key.Status.IssuedAt = &s.stamp
	key.Status.ObservedRotateAnnotation = key.Annotations[keysv1.RotateAnnotation]
	return nil
}

// tokenTaken tells whether another ApiKey, in any namespace the operator
// serves, verifies with the token whose hash is given. A refusal is
// remembered on the Secret (TokenInUseAnnotation), so the key stays
// refused with that token after the other key is deleted: otherwise a
// tenant could copy a token and wait for its owner to let go of it.
func (r *ApiKeyReconciler) tokenTaken(ctx context.Context, key *keysv1.ApiKey, secret *corev1.Secret, hash string) (bool, error) {
	if secret.Annotations[keysv1.TokenInUseAnnotation] == hash {
		return true, nil
	}
	if taken, err := r.hashTaken(ctx, key, hash); err != nil || !taken {
		return false, err
	}
	before := secret.DeepCopy()
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, keysv1.TokenInUseAnnotation, hash)
	if err := r.Patch(ctx, secret, client.MergeFrom(before)); err != nil {
		return false, fmt.Errorf("mark secret's token as in use: %w", err)
	}
	r.event(key, corev1.EventTypeWarning, keysv1.ReasonTokenInUse, "Adopt",
		"Refused the token in Secret %s: another ApiKey uses it", secret.Name)
	return true, nil
}

// hashTaken tells whether another ApiKey, in any namespace the operator
// serves, verifies with the token whose hash is given.
func (r *ApiKeyReconciler) hashTaken(ctx context.Context, key *keysv1.ApiKey, hash string) (bool, error) {
	claimants, err := r.Hashes.Claimants(hash)
	if err != nil {
		return false, err
	}
	self := client.ObjectKeyFromObject(key)
	return slices.ContainsFunc(claimants, func(n types.NamespacedName) bool { return n != self }), nil
}

// issue mints a token into a new Secret.
func (r *ApiKeyReconciler) issue(ctx context.Context, s *scope) (*corev1.Secret, error) {
	key := s.key
	value, err := token.Mint(r.TokenPrefix)
	if err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	secret := keysecret.New(key, value)
	if key.Status.Hash == "" && key.Annotations[keysv1.TokenWriterAnnotation] == keysv1.TokenWriterAPIServer &&
		key.Annotations[keysv1.CreateRequestAnnotation] != "" {
		// The REST create that made this key never wrote its Secret (a
		// crash, TokenWriterGrace): no answer carries this token, and a
		// retry of that create may replace it.
		metav1.SetMetaDataAnnotation(&secret.ObjectMeta, keysv1.UndeliveredAnnotation, keysv1.UndeliveredValue)
	}
	if err := r.Create(ctx, secret); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create secret: %w", err)
		}
		ours, err := r.labelledOurs(ctx, secret)
		if err != nil {
			return nil, err
		}
		if ours {
			// The API server wrote this key's Secret and the cache has
			// not seen it yet: come back when it has, and take its token.
			return nil, fmt.Errorf("secret %s/%s exists but is not in the cache yet", secret.Namespace, secret.Name)
		}
		// A Secret the operator does not own: never take it over.
		s.notReady(keysv1.ReasonSecretTaken, fmt.Sprintf(
			"Secret %q exists and is not managed by apikey-operator; delete it or give this key another spec.secretName", secret.Name))
		return nil, nil
	}
	prefix := token.DisplayPrefix(value)
	if key.Status.Hash != "" {
		r.event(key, corev1.EventTypeWarning, "SecretRecreated", "Recreate",
			"Secret %s was deleted; minted a new key %s, the old token no longer works", secret.Name, prefix)
	} else {
		r.event(key, corev1.EventTypeNormal, "Issued", "Issue", "Issued key %s into Secret %s", prefix, secret.Name)
	}
	key.Status.Hash = token.Hash(value)
	key.Status.KeyPrefix = prefix
	key.Status.IssuedAt = &s.stamp
	key.Status.ObservedRotateAnnotation = key.Annotations[keysv1.RotateAnnotation]
	return secret, nil
}

// rotateIfDue replaces the token when the rotate annotation changed or the
// rotation period has passed. The Secret is written first: if the operator
// stops before status, the next reconcile finds the new token in the
// Secret and finishes the rotation with it (see recordToken).
func (r *ApiKeyReconciler) rotateIfDue(ctx context.Context, s *scope, secret *corev1.Secret) error {
	if !rotationDue(s.key, s.now) || !s.now.Before(s.expiry) {
		return nil
	}
	value, err := token.Mint(r.TokenPrefix)
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	secret.Data[keysv1.SecretKeyField] = []byte(value)
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("write rotated token to secret: %w", err)
	}
	r.finishRotation(s, token.Hash(value), value)
	return nil
}

func (r *ApiKeyReconciler) finishRotation(s *scope, hash, value string) {
	key := s.key
	retire(&key.Status, gracePeriod(key), s.stamp.Time)
	key.Status.Hash = hash
	key.Status.KeyPrefix = token.DisplayPrefix(value)
	key.Status.IssuedAt = &s.stamp
	key.Status.LastRotatedAt = &s.stamp
	key.Status.ObservedRotateAnnotation = key.Annotations[keysv1.RotateAnnotation]
	r.event(key, corev1.EventTypeNormal, "Rotated", "Rotate",
		"Rotated to key %s; the previous token works for %s more", key.Status.KeyPrefix, gracePeriod(key))
}

// endGraceIfAsked drops every previous hash when the end-grace-period
// annotation changed: the rotated-out tokens stop verifying at once (the
// verify index follows status). It runs after a rotation, so the same
// edit can rotate and end the grace period of the token just replaced.
func (r *ApiKeyReconciler) endGraceIfAsked(key *keysv1.ApiKey) {
	v := key.Annotations[keysv1.EndGracePeriodAnnotation]
	if v == key.Status.ObservedEndGracePeriodAnnotation {
		return
	}
	if n := len(key.Status.PreviousHashes); n > 0 {
		r.event(key, corev1.EventTypeNormal, "GracePeriodEnded", "EndGracePeriod",
			"Ended the grace period of %d previous token(s) as asked by %s; only the current token %s verifies", n, keysv1.EndGracePeriodAnnotation, key.Status.KeyPrefix)
	}
	key.Status.PreviousHashes = nil
	key.Status.ObservedEndGracePeriodAnnotation = v
}

// checkRole marks the key not ready while its role is missing.
func (r *ApiKeyReconciler) checkRole(ctx context.Context, s *scope) error {
	ref := s.key.Spec.RoleRef
	if ref == nil {
		return nil
	}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: ref.Name}, &keysv1.ApiKeyRole{})
	switch {
	case apierrors.IsNotFound(err):
		s.notReady(keysv1.ReasonRoleNotFound, fmt.Sprintf(
			"ApiKeyRole %q does not exist in namespace %q; create it or change spec.roleRef", ref.Name, s.key.Namespace))
	case err != nil:
		return fmt.Errorf("get role: %w", err)
	}
	return nil
}

// checkConsumer marks the key not ready while its consumer is missing:
// the verify path refuses it then (a key that outlived its consumer would
// otherwise escape the consumer's shared limits).
func (r *ApiKeyReconciler) checkConsumer(ctx context.Context, s *scope) error {
	ref := s.key.Spec.ConsumerRef
	if ref == nil {
		return nil
	}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: ref.Name}, &keysv1.ApiConsumer{})
	switch {
	case apierrors.IsNotFound(err):
		s.notReady(keysv1.ReasonConsumerNotFound, fmt.Sprintf(
			"ApiConsumer %q does not exist in namespace %q, and a key does not verify without its consumer; create it or change spec.consumerRef", ref.Name, s.key.Namespace))
	case err != nil:
		return fmt.Errorf("get consumer: %w", err)
	}
	return nil
}

func (s *scope) notReady(reason, message string) {
	if s.ready == nil {
		s.ready = &metav1.Condition{Type: keysv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message}
	}
}

// setReady writes the Ready condition: the first problem found, else
// expiry, else disabled, else ready.
func (r *ApiKeyReconciler) setReady(s *scope) {
	key := s.key
	if !s.now.Before(s.expiry) {
		if !meta.IsStatusConditionPresentAndEqual(key.Status.Conditions, keysv1.ConditionReady, metav1.ConditionFalse) ||
			meta.FindStatusCondition(key.Status.Conditions, keysv1.ConditionReady).Reason != keysv1.ReasonExpired {
			if s.ready == nil {
				r.event(key, corev1.EventTypeNormal, "Expired", "Expire", "Key %s expired at %s", key.Status.KeyPrefix, s.expiry.UTC().Format(time.RFC3339))
			}
		}
		s.notReady(keysv1.ReasonExpired, fmt.Sprintf("The key expired at %s; set a later spec.expiresAt to use it again", s.expiry.UTC().Format(time.RFC3339)))
	}
	if !key.IsEnabled() {
		if leak := currentLeak(key); leak != nil {
			s.notReady(keysv1.ReasonLeaked, fmt.Sprintf(
				"The key was disabled because %s reported its token found in public (%s) at %s; rotate the key (or declare a new spec.tokenHash), then set spec.enabled to true",
				leak.Reporter, orUnknown(leak.URL), leak.ReportedAt.UTC().Format(time.RFC3339)))
		}
		s.notReady(keysv1.ReasonDisabled, "The key is disabled; set spec.enabled to true to use it again")
	}
	cond := s.ready
	if cond == nil {
		cond = &metav1.Condition{Type: keysv1.ConditionReady, Status: metav1.ConditionTrue, Reason: keysv1.ReasonIssued,
			Message: fmt.Sprintf("The key verifies; its token is in Secret %q under data key %q", key.Status.SecretName, keysv1.SecretKeyField)}
		if key.HashOnly() {
			cond.Message = "The key verifies the token whose hash is spec.tokenHash; the operator holds no Secret and no plaintext for it"
		}
	}
	cond.ObservedGeneration = key.Generation
	meta.SetStatusCondition(&key.Status.Conditions, *cond)
}

func (r *ApiKeyReconciler) event(key *keysv1.ApiKey, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(key, nil, eventType, reason, action, note, args...)
	}
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// SetupWithManager registers the controller: it watches ApiKeys, the
// Secrets they own, and the roles they name. It refuses a reconciler
// without its dependencies rather than run one that would quietly skip
// the metadata read or the events; internal/operator.Build fills them.
func (r *ApiKeyReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	var missing []string
	for name, nil_ := range map[string]bool{"Client": r.Client == nil, "APIReader": r.APIReader == nil, "Recorder": r.Recorder == nil, "Hashes": r.Hashes == nil} {
		if nil_ {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("apikey reconciler: %s must be set (build it with internal/operator.Build)", strings.Join(missing, ", "))
	}
	if r.MaxConcurrentReconciles < 1 {
		return fmt.Errorf("apikey reconciler: MaxConcurrentReconciles must be at least 1, not %d", r.MaxConcurrentReconciles)
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &keysv1.ApiKey{}, roleRefIndex, func(o client.Object) []string {
		if ref := o.(*keysv1.ApiKey).Spec.RoleRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index keys by role: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &keysv1.ApiKey{}, consumerRefIndex, indexConsumerRef); err != nil {
		return fmt.Errorf("index keys by consumer: %w", err)
	}
	if err := (&apiConsumerReconciler{Client: r.Client}).setup(mgr, r.MaxConcurrentReconciles); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&keysv1.ApiKey{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// A Secret's creation never needs a reconcile: the controller
		// created it and has just written the status that goes with it,
		// or the key's own event (its creation, or the restart's initial
		// list) brings the key anyway. Waking the key for it would cost a
		// reconcile per key, and a second status write whenever the cache
		// has not yet seen the first.
		// The exception: a Secret the API server wrote after its key,
		// which the key waits for (awaitingAPIServer).
		// Nor does the API server's mark of a delivered token (the removal
		// of keysv1.UndeliveredAnnotation, one per REST create).
		Owns(&corev1.Secret{}, builder.WithPredicates(predicate.Funcs{CreateFunc: func(e event.CreateEvent) bool {
			return e.Object.GetAnnotations()[keysv1.TokenWriterAnnotation] == keysv1.TokenWriterAPIServer
		}, UpdateFunc: func(e event.UpdateEvent) bool {
			return !keysecret.OnlyDelivered(e.ObjectOld, e.ObjectNew)
		}})).
		Watches(&keysv1.ApiKeyRole{}, handler.EnqueueRequestsFromMapFunc(r.keysOfRole),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return false }})).
		// A consumer's arrival or departure changes its keys' Ready; an
		// edit of its limits does not.
		Watches(&keysv1.ApiConsumer{}, handler.EnqueueRequestsFromMapFunc(r.keysOfConsumer),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return false }})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("apikey").
		Complete(r)
}

// keysOfRole lists the keys that name a role.
func (r *ApiKeyReconciler) keysOfRole(ctx context.Context, role client.Object) []ctrl.Request {
	return r.keysNaming(ctx, roleRefIndex, role)
}

// keysOfConsumer lists the keys that name a consumer.
func (r *ApiKeyReconciler) keysOfConsumer(ctx context.Context, consumer client.Object) []ctrl.Request {
	return r.keysNaming(ctx, consumerRefIndex, consumer)
}

func (r *ApiKeyReconciler) keysNaming(ctx context.Context, index string, obj client.Object) []ctrl.Request {
	keys := &keysv1.ApiKeyList{}
	if err := r.List(ctx, keys, client.InNamespace(obj.GetNamespace()), client.MatchingFields{index: obj.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list keys naming an object", "index", index, "name", obj.GetName())
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(keys.Items))
	for _, k := range keys.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&k)})
	}
	return reqs
}

// currentLeak is the latest leak report of the key's current token.
func currentLeak(key *keysv1.ApiKey) *keysv1.LeakReport {
	for i := len(key.Status.Leaks) - 1; i >= 0; i-- {
		if l := &key.Status.Leaks[i]; l.Hash == key.Status.Hash && l.Hash != "" {
			return l
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "place not given"
	}
	return s
}
