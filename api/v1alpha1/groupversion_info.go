// Package v1alpha1 holds the ApiKey and ApiKeyRole types of the
// keys.apikey-operator.io API group. It imports no logic: the controller,
// webhook and API server read these types, never the other way round.
//
// +kubebuilder:object:generate=true
// +groupName=keys.apikey-operator.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the ApiKey API.
	GroupVersion = schema.GroupVersion{Group: "keys.apikey-operator.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this group with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
