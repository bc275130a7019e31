package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// uniqueName refuses a display name another key of the namespace has: the
// tenant-admin dialect addresses keys by it. The cache can lag a write by
// milliseconds, so two keys created at the same instant may both pass.
// A key whose display name is its object name is found by that name; the
// index holds only the others (indexKeyName), so it costs nothing for the
// keys whose spec.name the defaulter copied from metadata.name.
func (v *apiKeyValidator) uniqueName(ctx context.Context, key *keysv1.ApiKey) (*field.Error, error) {
	name := key.DisplayName()
	keys := &keysv1.ApiKeyList{}
	if err := v.cached.List(ctx, keys, client.InNamespace(key.Namespace), client.MatchingFields{keyNameIndex: name}); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list keys named %q: %w", name, err))
	}
	same := &keysv1.ApiKey{}
	switch err := v.cached.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: name}, same); {
	case err == nil:
		if same.DisplayName() == name {
			keys.Items = append(keys.Items, *same)
		}
	case !apierrors.IsNotFound(err):
		return nil, apierrors.NewInternalError(fmt.Errorf("read key %q: %w", name, err))
	}
	for _, other := range keys.Items {
		if other.Name == key.Name {
			continue
		}
		return field.Invalid(specPath.Child("name"), name, fmt.Sprintf(
			"is already the name of ApiKey %q in namespace %q; key names must be unique in a namespace because the REST API addresses keys by them: choose another spec.name",
			other.Name, key.Namespace)), nil
	}
	return nil, nil
}

// roleExists refuses a new key whose role is missing: a typo there would
// leave the key never Ready.
func (v *apiKeyValidator) roleExists(ctx context.Context, key *keysv1.ApiKey) (*field.Error, error) {
	missing, err := v.roleMissing(ctx, key)
	if err != nil || !missing {
		return nil, err
	}
	return field.Invalid(specPath.Child("roleRef", "name"), key.Spec.RoleRef.Name, fmt.Sprintf(
		"ApiKeyRole %q does not exist in namespace %q; create the role first, or fix spec.roleRef.name",
		key.Spec.RoleRef.Name, key.Namespace)), nil
}

// roleWarning only warns on update: the role may be on its way (GitOps
// tools apply in any order), and the key's Ready condition says the rest.
func (v *apiKeyValidator) roleWarning(ctx context.Context, key *keysv1.ApiKey) (admission.Warnings, error) {
	missing, err := v.roleMissing(ctx, key)
	if err != nil || !missing {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf(
		"ApiKeyRole %q does not exist in namespace %q: the key is not Ready until it does; create the role or fix spec.roleRef.name",
		key.Spec.RoleRef.Name, key.Namespace)}, nil
}

func (v *apiKeyValidator) roleMissing(ctx context.Context, key *keysv1.ApiKey) (bool, error) {
	ref := key.Spec.RoleRef
	if ref == nil {
		return false, nil
	}
	return v.missing(ctx, apiKeyRoleKind, key.Namespace, ref.Name)
}

// consumerExists refuses a new key whose consumer is missing: the key
// would never be Ready, and never verify.
func (v *apiKeyValidator) consumerExists(ctx context.Context, key *keysv1.ApiKey) (*field.Error, error) {
	missing, err := v.consumerMissing(ctx, key)
	if err != nil || !missing {
		return nil, err
	}
	return field.Invalid(specPath.Child("consumerRef", "name"), key.Spec.ConsumerRef.Name, fmt.Sprintf(
		"ApiConsumer %q does not exist in namespace %q; create the consumer first, or fix spec.consumerRef.name",
		key.Spec.ConsumerRef.Name, key.Namespace)), nil
}

// consumerWarning only warns on update, as roleWarning does.
func (v *apiKeyValidator) consumerWarning(ctx context.Context, key *keysv1.ApiKey) (admission.Warnings, error) {
	missing, err := v.consumerMissing(ctx, key)
	if err != nil || !missing {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf(
		"ApiConsumer %q does not exist in namespace %q: the key is not Ready and does not verify until it does; create the consumer or fix spec.consumerRef.name",
		key.Spec.ConsumerRef.Name, key.Namespace)}, nil
}

// consumerMissing reads the consumer in the key's own namespace only: a
// reference cannot name another namespace, so a tenant cannot join (and
// spend the limits of) another tenant's consumer.
func (v *apiKeyValidator) consumerMissing(ctx context.Context, key *keysv1.ApiKey) (bool, error) {
	ref := key.Spec.ConsumerRef
	if ref == nil {
		return false, nil
	}
	return v.missing(ctx, apiConsumerKind, key.Namespace, ref.Name)
}

// missing tells whether an object of the key's namespace is absent,
// reading only its metadata, uncached.
func (v *apiKeyValidator) missing(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (bool, error) {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	err := v.live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, apierrors.NewInternalError(fmt.Errorf("read %s %q: %w", gvk.Kind, name, err))
	}
	return false, nil
}

// secretFree refuses a new key whose Secret name is taken by a Secret the
// operator does not manage for this key: the controller would otherwise
// be pointed at someone else's Secret. The read is uncached and
// metadata-only: the operator caches only its own Secrets, and has no
// reason to see any Secret's data here.
func (v *apiKeyValidator) secretFree(ctx context.Context, key *keysv1.ApiKey) (*field.Error, error) {
	name := key.SecretName()
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := v.live.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, apierrors.NewInternalError(fmt.Errorf("read Secret %q: %w", name, err))
	case managedFor(secret, key.Name):
		return nil, nil
	}
	return field.Invalid(specPath.Child("secretName"), name, fmt.Sprintf(
		"Secret %q already exists in namespace %q and apikey-operator does not manage it for this key; choose another spec.secretName, or delete that Secret",
		name, key.Namespace)), nil
}

// managedFor tells whether a Secret is the operator's, written for a key
// of this name (one left by an earlier key of the same name, say, that
// the garbage collector has not removed yet).
func managedFor(secret *metav1.PartialObjectMetadata, keyName string) bool {
	l := secret.Labels
	if l[keysv1.ManagedByLabel] != keysv1.ManagedByValue || l[keysv1.ApiKeyLabel] != keyName {
		return false
	}
	owner := metav1.GetControllerOfNoCopy(secret)
	return owner == nil || (owner.Kind == apiKeyKind.Kind && owner.Name == keyName)
}

// secretNameKept makes spec.secretName immutable in the cases the CRD's
// CEL rule cannot see: set where it was unset, or unset where it was set.
// What must not change is the Secret the stored key writes to: the one
// its spec names, else the one that holds its token (IssuedSecretName).
func secretNameKept(old, key *keysv1.ApiKey) *field.Error {
	was := old.Spec.SecretName
	if was == "" {
		was = old.IssuedSecretName()
	}
	if key.SecretName() == was {
		return nil
	}
	return field.Invalid(specPath.Child("secretName"), key.Spec.SecretName, fmt.Sprintf(
		"is immutable: this key's token is in Secret %q; set spec.secretName to %q, or create a new ApiKey to use another Secret",
		was, was))
}
