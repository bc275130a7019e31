package webhook

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// failurePolicy is Ignore here, unlike the ApiKey webhooks: this one never
// refuses anything, and with Fail a namespace could not be deleted (its
// roles with it) while the operator is down or uninstalled.
// +kubebuilder:webhook:path=/validate-keys-apikey-operator-io-v1alpha1-apikeyrole,mutating=false,failurePolicy=ignore,sideEffects=None,groups=keys.apikey-operator.io,resources=apikeyroles,verbs=update;delete,versions=v1alpha1,name=vapikeyrole.keys.apikey-operator.io,admissionReviewVersions=v1,timeoutSeconds=5

// apiKeyRoleValidator allows every change to a role, and warns when one
// takes permissions away from keys that use the role.
type apiKeyRoleValidator struct {
	cached client.Reader
}

func (v *apiKeyRoleValidator) ValidateCreate(context.Context, *keysv1.ApiKeyRole) (admission.Warnings, error) {
	return nil, nil
}

func (v *apiKeyRoleValidator) ValidateUpdate(ctx context.Context, old, role *keysv1.ApiKeyRole) (admission.Warnings, error) {
	removed := removedPermissions(old.Spec.Permissions, role.Spec.Permissions)
	if len(removed) == 0 {
		return nil, nil
	}
	users, err := v.keysUsing(ctx, role)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf("ApiKeyRole %q no longer grants %s; keys that use the role lose what their own spec.permissions do not grant (%s: %s)",
		role.Name, listed(removed, 64), countKeys(len(users)), listed(users, 80))}, nil
}

func (v *apiKeyRoleValidator) ValidateDelete(ctx context.Context, role *keysv1.ApiKeyRole) (admission.Warnings, error) {
	users, err := v.keysUsing(ctx, role)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf("ApiKeyRole %q is still used by %s (%s); they are not Ready until the role exists again",
		role.Name, countKeys(len(users)), listed(users, 96))}, nil
}

// keysUsing lists, sorted, the keys of the role's namespace that name it.
func (v *apiKeyRoleValidator) keysUsing(ctx context.Context, role *keysv1.ApiKeyRole) ([]string, error) {
	return keysNaming(ctx, v.cached, roleIndex, role.Namespace, role.Name, "ApiKeyRole")
}

func removedPermissions(old, now []keysv1.Permission) []string {
	var removed []string
	for _, p := range old {
		if !slices.Contains(now, p) {
			removed = append(removed, string(p))
		}
	}
	return removed
}

func countKeys(n int) string {
	if n == 1 {
		return "1 ApiKey"
	}
	return fmt.Sprintf("%d ApiKeys", n)
}
