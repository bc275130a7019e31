// Package rbac holds the RBAC markers of the API server process
// (`apikey-operator apiserver`), from which `make manifests` generates the
// ClusterRole in config/apiserver/role.yaml, and hack/chartgen the rules
// of the chart's Roles. It is a package of its own because controller-gen
// cannot load packages that import generated code.
//
// The calls behind each rule: internal/keystore writes ApiKeys, creates a
// new key's Secret, adds the key as its owner with a merge patch, and
// deletes it when the key cannot be created; it checks that a tenant's
// Namespace exists. internal/verify writes status.lastUsedAt with a merge
// patch of the status subresource. The cache watches ApiKeys, ApiKeyRoles,
// ApiConsumers (their shared limits) and Namespaces. The API server never reads a Secret.
//
// Delegated authentication and authorisation (TokenReview,
// SubjectAccessReview, the extension-apiserver-authentication ConfigMap in
// kube-system) come from the system:auth-delegator ClusterRoleBinding and
// the extension-apiserver-authentication-reader RoleBinding shipped beside
// the role (config/apiserver, the chart).
package rbac

// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeys,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeys/status,verbs=patch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apiconsumers/status,verbs=patch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeyroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apiconsumers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;patch;delete;deletecollection
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
