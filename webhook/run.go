package webhook

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// run applies every check and reports all broken rules at once, as one
// Invalid error like the API server's own validation; the first error of
// the webhook itself (an API read that failed) wins over them.
func run(ctx context.Context, key *keysv1.ApiKey, checks ...check) error {
	var errs field.ErrorList
	for _, c := range checks {
		ferr, err := c(ctx)
		if err != nil {
			return err
		}
		if ferr != nil {
			errs = append(errs, ferr)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(apiKeyKind.GroupKind(), key.Name, errs)
}
