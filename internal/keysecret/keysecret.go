// Package keysecret owns what a key's Secret is: its name, the labels
// the operator's cache selects it by, its owner, and how it is built,
// claimed and selected. The controller and the Kubernetes-backed key
// store both write a key's Secret; they do it through here, so the two
// can never disagree on which Secret is a key's.
package keysecret

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Labels are the labels of a key's Secret: the operator's mark, which its
// cache selects Secrets by, and the key's name.
func Labels(key *keysv1.ApiKey) map[string]string {
	return map[string]string{keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: key.Name}
}

// New is the key's Secret holding token: in the key's namespace, named
// key.SecretName(), labelled, and owned by the key when it has a UID (the
// controller and the store both write it after the key exists, so a
// Secret holding a token never lacks its owner).
func New(key *keysv1.ApiKey, token string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.SecretName()},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{keysv1.SecretKeyField: []byte(token)},
	}
	setOwnership(key, s)
	return s
}

// Token is the token a Secret holds, as written.
func Token(s *corev1.Secret) string { return string(s.Data[keysv1.SecretKeyField]) }

// Claim puts the operator's labels and the key's owner reference on a
// Secret that lacks them, with one merge patch; none when nothing lacks.
func Claim(ctx context.Context, c client.Writer, key *keysv1.ApiKey, s *corev1.Secret) error {
	before := s.DeepCopy()
	setOwnership(key, s)
	if equality.Semantic.DeepEqual(before.ObjectMeta, s.ObjectMeta) {
		return nil
	}
	if err := c.Patch(ctx, s, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("claim secret %s: %w", s.Name, err)
	}
	return nil
}

// Selector selects the Secrets the operator labelled for the key, and
// nothing else: never a Secret it does not own.
func Selector(key *keysv1.ApiKey) []client.DeleteAllOfOption {
	return []client.DeleteAllOfOption{client.InNamespace(key.Namespace), client.MatchingLabels(Labels(key))}
}

// IsOurs tells whether an object's labels mark it as the operator's.
func IsOurs(o metav1.Object) bool {
	return o.GetLabels()[keysv1.ManagedByLabel] == keysv1.ManagedByValue
}

func setOwnership(key *keysv1.ApiKey, s *corev1.Secret) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	for k, v := range Labels(key) {
		s.Labels[k] = v
	}
	if key.UID != "" && metav1.GetControllerOf(s) == nil {
		s.OwnerReferences = append(s.OwnerReferences, *ownerRef(key))
	}
}

func ownerRef(key *keysv1.ApiKey) *metav1.OwnerReference {
	return metav1.NewControllerRef(key, keysv1.GroupVersion.WithKind("ApiKey"))
}

// OnlyDelivered tells whether the change from old to new only removed the
// Secret's keysv1.UndeliveredAnnotation: nothing the controller acts on.
func OnlyDelivered(old, new client.Object) bool {
	o, ok1 := old.(*corev1.Secret)
	n, ok2 := new.(*corev1.Secret)
	if !ok1 || !ok2 {
		return false
	}
	if _, had := o.Annotations[keysv1.UndeliveredAnnotation]; !had {
		return false
	}
	if _, has := n.Annotations[keysv1.UndeliveredAnnotation]; has {
		return false
	}
	without := maps.Clone(o.Annotations)
	delete(without, keysv1.UndeliveredAnnotation)
	sameAnnotations := len(without) == 0 && len(n.Annotations) == 0 || equality.Semantic.DeepEqual(without, n.Annotations)
	return sameAnnotations && equality.Semantic.DeepEqual(o.Data, n.Data) && equality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		equality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences) && o.Type == n.Type
}
