package v1alpha1

// The bounds and patterns the validation markers of ApiKey declare, as Go
// values for code that checks a request before it becomes an object (the
// key store, internal/keystore, so a REST dialect can answer in its own
// shape and nothing is written). controller-gen reads only the markers,
// which cannot name a constant: each value here sits beside its marker's
// literal, and internal/keystore's TestStoreAndCRDAgree puts one table of
// inputs to both the store and a real kube-apiserver with the CRD, and
// fails where they judge differently. Lengths count characters, as
// OpenAPI's maxLength does, not bytes.
const (
	// KeyName: +kubebuilder:validation:MaxLength, and the characters its
	// CEL rule refuses anywhere in a name (C0 and C1 controls, DEL, the
	// bidirectional-text controls); any other text is a name.
	KeyNameMaxLength = 128
	KeyNameForbidden = `[\x00-\x1f\x7f-\x9f\x{061c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]`

	// Permission: +kubebuilder:validation:MaxLength and the CEL pattern.
	PermissionMaxLength = 128
	PermissionPattern   = `^([*]|[A-Za-z0-9_-]+)([.:/@]([*]|[A-Za-z0-9_-]+))*$`

	// IPOrCIDR: MinLength and MaxLength. The longest address or block
	// isIP/isCIDR accept is 49 characters (an IPv6 address written with
	// a dotted IPv4 tail, plus /128), since Kubernetes' CEL refuses IPv6
	// zones and IPv4-mapped IPv6 addresses.
	IPOrCIDRMinLength = 2
	IPOrCIDRMaxLength = 49

	// ApiKeySpec fields: description's MaxLength, MaxItems of permissions
	// and allowedIPs.
	DescriptionMaxLength = 1024
	PermissionsMaxItems  = 64
	AllowedIPsMaxItems   = 100
)
