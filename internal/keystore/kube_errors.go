package keystore

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// writeError maps an API error of a write to the store's errors.
func writeError(err error, name string) error {
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %q", ErrConflict, name)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return &InvalidError{Field: "request", Reason: apiMessage(err)}
	case apierrors.IsForbidden(err):
		// Admission (the webhook's rules) refused the change.
		return &InvalidError{Field: "request", Reason: apiMessage(err)}
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: the key changed meanwhile; try again", ErrUnavailable)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Message
	}
	return err.Error()
}
