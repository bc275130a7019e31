package keystore

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
)

// createSecret writes the token into the key's Secret, owned by the key
// (created just before) and marked as the API server's, so the controller
// wakes for it and takes its token as issued instead of minting another.
// With undelivered, the Secret says its token has not been answered yet
// (keysv1.UndeliveredAnnotation) until markDelivered.
func (s *Kube) createSecret(ctx context.Context, key *keysv1.ApiKey, tok string, undelivered bool) error {
	newSecret := func() *corev1.Secret {
		secret := keysecret.New(key, tok)
		metav1.SetMetaDataAnnotation(&secret.ObjectMeta, keysv1.TokenWriterAnnotation, keysv1.TokenWriterAPIServer)
		if undelivered {
			metav1.SetMetaDataAnnotation(&secret.ObjectMeta, keysv1.UndeliveredAnnotation, keysv1.UndeliveredValue)
		}
		return secret
	}
	secret := newSecret()
	err := s.Client.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) && s.dropLeftovers(ctx, key) == nil {
		err = s.Client.Create(ctx, newSecret())
	}
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: a Secret named %q already exists in the namespace", ErrConflict, secret.Name)
	case err != nil:
		return writeError(err, string(key.Spec.Name))
	}
	return nil
}

// dropLeftovers deletes the Secrets labelled for the key's name, which a
// key of the same name deleted earlier left (the garbage collector has not
// removed them yet, or a crash or a timed-out write did not), and tells
// whether that worked. It is safe only here: the key was just created,
// so no other key holds this name, and a Secret labelled with it belongs
// to none that lives; a Secret the operator does not label is never
// touched, and keeps answering 409.
func (s *Kube) dropLeftovers(ctx context.Context, key *keysv1.ApiKey) error {
	return s.Client.DeleteAllOf(ctx, &corev1.Secret{}, keysecret.Selector(key)...)
}

// dropKey removes a key whose Secret could not be written, so the create
// leaves nothing behind: this key only (the UID precondition), even when
// the request's own deadline has passed. If this fails too, the key stays,
// visible by its name, and the controller mints its token after the grace.
func (s *Kube) dropKey(key *keysv1.ApiKey) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	uid := key.UID
	_ = client.IgnoreNotFound(s.Client.Delete(ctx, key.DeepCopy(), client.Preconditions{UID: &uid}))
}

// cleanupTimeout bounds the undo of a half-done write, which runs after
// the request's own context may have ended.
const cleanupTimeout = 5 * time.Second

// dropSecrets deletes the key's Secret now rather than leave it to the
// garbage collector, so the name can be used again at once. The label
// selector reaches only the Secrets the operator labelled for this key:
// never one it does not own, and without reading any. The owner reference
// still removes it if this fails.
func (s *Kube) dropSecrets(ctx context.Context, key *keysv1.ApiKey) {
	_ = s.Client.DeleteAllOf(ctx, &corev1.Secret{}, keysecret.Selector(key)...)
}
