package keystore

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/apikey-operator/apikey-operator/internal/access"
)

// NamespaceExists answers true, whatever the truth, to a caller without
// rights in the namespace: the operation that follows is then refused as
// forbidden, as it is for a namespace that exists, so unknown and
// forbidden look alike (issue 11).
func (s *Kube) NamespaceExists(ctx context.Context, namespace string) (bool, error) {
	if s.Authorizer != nil && access.CallerFrom(ctx) != nil && !s.Authorizer.MayKnowNamespace(ctx, namespace) {
		return true, nil
	}
	return s.namespaceExists(ctx, namespace)
}

func (s *Kube) namespaceExists(ctx context.Context, namespace string) (bool, error) {
	err := s.Cache.Get(ctx, client.ObjectKey{Name: namespace}, &corev1.Namespace{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, nil
}

// authorize checks the caller, then that the namespace exists.
func (s *Kube) authorize(ctx context.Context, sc access.Scopes, ns string, v access.Verb) error {
	if err := s.Authorizer.Authorize(ctx, sc, ns, v); err != nil {
		return err
	}
	ok, err := s.namespaceExists(ctx, ns)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrNamespaceNotFound, ns)
	}
	return nil
}
