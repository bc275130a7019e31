package webhook

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// failurePolicy is Ignore, as for ApiKeyRoles: this webhook only warns,
// and with Fail a namespace could not be deleted (its consumers with it)
// while the operator is down or uninstalled.
// +kubebuilder:webhook:path=/validate-keys-apikey-operator-io-v1alpha1-apiconsumer,mutating=false,failurePolicy=ignore,sideEffects=None,groups=keys.apikey-operator.io,resources=apiconsumers,verbs=delete,versions=v1alpha1,name=vapiconsumer.keys.apikey-operator.io,admissionReviewVersions=v1,timeoutSeconds=5

// apiConsumerValidator allows every change to a consumer, and warns when
// a deletion stops keys: a key whose consumer is missing does not verify.
type apiConsumerValidator struct {
	cached client.Reader
}

func (v *apiConsumerValidator) ValidateCreate(context.Context, *keysv1.ApiConsumer) (admission.Warnings, error) {
	return nil, nil
}

func (v *apiConsumerValidator) ValidateUpdate(context.Context, *keysv1.ApiConsumer, *keysv1.ApiConsumer) (admission.Warnings, error) {
	return nil, nil
}

func (v *apiConsumerValidator) ValidateDelete(ctx context.Context, c *keysv1.ApiConsumer) (admission.Warnings, error) {
	users, err := keysNaming(ctx, v.cached, consumerIndex, c.Namespace, c.Name, "ApiConsumer")
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf("ApiConsumer %q is still named by %s (%s); they stop verifying until the consumer exists again",
		c.Name, countKeys(len(users)), listed(users, 96))}, nil
}

// keysNaming lists, sorted, the keys of a namespace whose reference (by
// the given index) names an object.
func keysNaming(ctx context.Context, cached client.Reader, index, namespace, name, kind string) ([]string, error) {
	keys := &keysv1.ApiKeyList{}
	if err := cached.List(ctx, keys, client.InNamespace(namespace), client.MatchingFields{index: name}); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list keys of %s %q: %w", kind, name, err))
	}
	names := make([]string, 0, len(keys.Items))
	for _, k := range keys.Items {
		names = append(names, k.Name)
	}
	slices.Sort(names)
	return names, nil
}
