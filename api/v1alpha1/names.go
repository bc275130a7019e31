package v1alpha1

// Names fixed by the design: tests outside this repository depend on them.
const (
	// SecretKeyField is the Secret data key that holds the plaintext token.
	SecretKeyField = "api-key"

	// ManagedByLabel and ManagedByValue mark every Secret the operator owns;
	// the operator's cache selects Secrets by this label.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "apikey-operator"

	// ApiKeyLabel names the ApiKey that owns a Secret.
	ApiKeyLabel = "keys.apikey-operator.io/apikey"

	// RotateAnnotation on an ApiKey asks for a rotation whenever its value
	// changes (for example `kubectl annotate ak my-key keys.apikey-operator.io/rotate=$(date +%s) --overwrite`).
	RotateAnnotation = "keys.apikey-operator.io/rotate"
)

// Condition types and reasons of ApiKey.status.conditions.
const (
	ConditionReady = "Ready"

	ReasonIssued        = "KeyIssued"
	ReasonExpired       = "Expired"
	ReasonDisabled      = "Disabled"
	ReasonRoleNotFound  = "RoleNotFound"
	ReasonSecretInvalid = "SecretInvalid"
	ReasonSecretTaken   = "SecretNotOwned"
)
