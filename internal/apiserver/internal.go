package apiserver

import (
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
)

// review is the internal version of ApiKeyReview that the generic server
// decodes into and stores hand. With one served version it is the same
// shape; it is a type of its own so that every Go type in the scheme has
// one GroupVersionKind, which OpenAPI and server-side field management
// need.
type review accessv1.ApiKeyReview

func (r *review) GetObjectKind() schema.ObjectKind { return &r.TypeMeta }

func (r *review) DeepCopyObject() runtime.Object {
	c := review(*(*accessv1.ApiKeyReview)(r).DeepCopy())
	return &c
}

func (r *review) external() *accessv1.ApiKeyReview { return (*accessv1.ApiKeyReview)(r) }

func addInternal(s *runtime.Scheme) error {
	s.AddKnownTypeWithName(schema.GroupVersionKind{Group: accessv1.GroupVersion.Group, Version: runtime.APIVersionInternal, Kind: "ApiKeyReview"}, &review{})
	if err := s.AddConversionFunc((*accessv1.ApiKeyReview)(nil), (*review)(nil), func(a, b any, _ conversion.Scope) error {
		*b.(*review) = review(*a.(*accessv1.ApiKeyReview))
		return nil
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*review)(nil), (*accessv1.ApiKeyReview)(nil), func(a, b any, _ conversion.Scope) error {
		*b.(*accessv1.ApiKeyReview) = accessv1.ApiKeyReview(*a.(*review))
		return nil
	})
}
