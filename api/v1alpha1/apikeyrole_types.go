package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApiKeyRoleSpec is a named set of permissions that keys share.
type ApiKeyRoleSpec struct {
	// description for people: what the role is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// permissions every key with this role grants, such as invoices:read,
	// tenant.apiKey:* or *.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Permissions []Permission `json:"permissions,omitempty"`

	// audiences of every key with this role that names none of its own
	// (spec.audiences of the ApiKey wins when set): such keys verify only
	// where the gateway names one of them, as spec.audiences of ApiKey
	// explains. Empty: the role adds no audience.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Audiences []Audience `json:"audiences,omitempty"`
}

// ApiKeyRole is a set of permissions that ApiKeys in the same namespace
// refer to through spec.roleRef.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=apikeys
// +kubebuilder:printcolumn:name="Permissions",type=string,JSONPath=`.spec.permissions`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ApiKeyRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the role's permissions.
	// +required
	Spec ApiKeyRoleSpec `json:"spec"`
}

// ApiKeyRoleList is a list of ApiKeyRoles.
// +kubebuilder:object:root=true
type ApiKeyRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApiKeyRole `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ApiKeyRole{}, &ApiKeyRoleList{})
}
