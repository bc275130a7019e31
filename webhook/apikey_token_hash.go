package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// hashFree refuses a spec.tokenHash that is malformed, or that another
// key, in any namespace, declares or verifies with: one token belongs to
// one key. The answer names neither that key nor its namespace, which may
// be another tenant's. It tells the caller only that the hash is in use,
// and a hash is something only a holder of the token (or a reader of that
// key's status) can know. The cache can lag a write by milliseconds; the
// controller refuses the later of two keys that both pass here
// (TokenInUse), and verify resolves a hash claimed twice to neither key.
func (v *apiKeyValidator) hashFree(ctx context.Context, key *keysv1.ApiKey) (*field.Error, error) {
	path := specPath.Child("tokenHash")
	hash := string(key.Spec.TokenHash)
	if _, err := token.ParseHash(hash); err != nil {
		return field.Invalid(path, hash, err.Error()+"; print it with 'apikey-operator hash' from the token on stdin"), nil
	}
	// Holders, not Claimants: a hash declared by a key the controller has
	// not yet recorded is taken as well.
	holders, err := v.hashes.Holders(hash)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("find keys by token hash: %w", err))
	}
	for _, other := range holders {
		if other.Namespace == key.Namespace && other.Name == key.Name {
			continue
		}
		return field.Invalid(path, hash, "is the hash of a token another ApiKey already declares or verifies with; a token belongs to one key only, across the cluster: make a new token and declare its hash"), nil
	}
	return nil, nil
}

// noRotateAnnotation refuses a new value of the rotate annotation on a
// hash-only key: the operator cannot mint a token it must not know. Such
// a key rotates when a new spec.tokenHash is declared.
func noRotateAnnotation(old, key *keysv1.ApiKey) *field.Error {
	v, ok := key.Annotations[keysv1.RotateAnnotation]
	if !ok || (old != nil && old.Annotations[keysv1.RotateAnnotation] == v) {
		return nil
	}
	return field.Forbidden(field.NewPath("metadata", "annotations").Key(keysv1.RotateAnnotation),
		"a key with spec.tokenHash has no token the operator could replace; rotate it by declaring the hash of a new token in spec.tokenHash (the previous one verifies for rotation.gracePeriod)")
}
