// Package v1alpha1 is the aggregated API access.apikey-operator.io: an
// ApiKeyReview asks whether an API key is valid for a request, the way a
// TokenReview asks about a Kubernetes token. It is served by the
// operator's API server through an APIService, not by a CRD.
//
// +kubebuilder:object:generate=true
// +kubebuilder:skip
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=io.apikey-operator.access.v1alpha1
// +groupName=access.apikey-operator.io
package v1alpha1
