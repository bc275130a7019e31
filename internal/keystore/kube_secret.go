package keystore

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
)

// createSecret writes the token into the key's Secret before the ApiKey
// exists, labelled so the controller finds it and takes its token as
// issued instead of minting another.
func (s *Kube) createSecret(ctx context.Context, key *keysv1.ApiKey, tok string) error {
	secret := keysecret.New(key, tok)
	err := s.Client.Create(ctx, secret)
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: a Secret named %q already exists in the namespace", ErrConflict, secret.Name)
	case err != nil:
		return writeError(err, string(key.Spec.Name))
	}
	return nil
}

// dropSecret removes the Secret of a key whose creation failed: by name,
// the one just written, never another key's Secret labelled with the
// same key name.
func (s *Kube) dropSecret(ctx context.Context, key *keysv1.ApiKey) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.SecretName()}}
	_ = client.IgnoreNotFound(s.Client.Delete(ctx, secret))
}

// ownSecret gives the Secret its owner reference at once, so it goes with
// the key even before the controller has seen it. The controller claims it
// anyway; a failure here is repaired there.
func (s *Kube) ownSecret(ctx context.Context, key *keysv1.ApiKey) {
	_ = keysecret.Own(ctx, s.Client, key)
}

// dropSecrets deletes the key's Secret now rather than leave it to the
// garbage collector, so the name can be used again at once. The label
// selector reaches only the Secrets the operator labelled for this key:
// never one it does not own, and without reading any. The owner reference
// still removes it if this fails.
func (s *Kube) dropSecrets(ctx context.Context, key *keysv1.ApiKey) {
	_ = s.Client.DeleteAllOf(ctx, &corev1.Secret{}, keysecret.Selector(key)...)
}
