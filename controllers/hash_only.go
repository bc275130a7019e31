package controllers

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "k8s.io/api/core/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// declareHash makes a hash-only key (spec.tokenHash) verify the declared
// hash. There is no Secret and no plaintext: the hash is the whole token
// as far as the cluster knows. A new hash is a rotation: the previous one
// keeps verifying for rotation.gracePeriod, so a GitOps change can roll
// the clients over. A hash another key verifies with is refused, as a
// minted key's copied token is (one token, one key).
func (r *ApiKeyReconciler) declareHash(ctx context.Context, s *scope) error {
	key := s.key
	key.Status.SecretName, key.Status.KeyPrefix = "", ""
	want := string(key.Spec.TokenHash)
	if want == key.Status.Hash {
		return nil
	}
	taken, err := r.hashTaken(ctx, key, want)
	if err != nil {
		return err
	}
	if taken {
		// The previous hash stops too, as with a minted key whose Secret
		// was given a copied token: the key is off until its hash is its
		// own again.
		if key.Status.Hash != "" || !meta.IsStatusConditionPresentAndEqual(key.Status.Conditions, keysv1.ConditionReady, metav1.ConditionFalse) {
			r.event(key, corev1.EventTypeWarning, keysv1.ReasonTokenInUse, "Declare",
				"Refused spec.tokenHash: another ApiKey verifies with that token")
		}
		key.Status.Hash, key.Status.PreviousHashes = "", nil
		s.notReady(keysv1.ReasonTokenInUse,
			"another ApiKey already verifies with the token of spec.tokenHash, and a token belongs to one key only; make a new token and declare its hash (apikey-operator hash)")
		return nil
	}
	if key.Status.Hash == "" {
		r.event(key, corev1.EventTypeNormal, "Issued", "Declare", "The key verifies the token of hash %s declared in spec.tokenHash", shortHash(want))
	} else {
		retire(&key.Status, gracePeriod(key), s.stamp.Time)
		key.Status.LastRotatedAt = &s.stamp
		r.event(key, corev1.EventTypeNormal, "Rotated", "Rotate",
			"Rotated to the token of hash %s declared in spec.tokenHash; the previous token works for %s more", shortHash(want), gracePeriod(key))
	}
	// Declaring a hash the key had before (a rollback) makes it current
	// again rather than listing it twice.
	key.Status.PreviousHashes = slices.DeleteFunc(key.Status.PreviousHashes, func(p keysv1.PreviousHash) bool { return p.Hash == want })
	if len(key.Status.PreviousHashes) == 0 {
		key.Status.PreviousHashes = nil
	}
	key.Status.Hash = want
	key.Status.IssuedAt = &s.stamp
	return nil
}

// shortHash is the start of a hash, enough for a person to tell two apart.
func shortHash(h string) string {
	const n = len("sha256:") + 12
	if len(h) > n {
		return h[:n]
	}
	return h
}
