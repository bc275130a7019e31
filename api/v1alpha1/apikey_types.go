package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KeyName is the display name of a key as the REST dialects address it:
// free text, as the hub dialect's product allows ("CI Deploy (prod)",
// "Déploiement", "build #42"), of 1 to 128 characters, with no control
// characters (C0, DEL, C1) and no bidirectional-text controls, which could
// make one name display as another. The tenant-admin dialect creates only
// names of letters, digits, '-', '_' and '.', but shows and addresses any.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="!self.matches('[\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u061c]')",message="must not contain control characters (line breaks, tabs, NUL, bidirectional-text controls); any other text of up to 128 characters is fine, for example CI Deploy (prod)"
type KeyName string

// Permission is a scope a key grants, such as `invoices:read`,
// `tenant.apiKey:*`, `payments/read`, `billing@eu`, `urn:acme:invoices/read`
// or `*`: segments of letters, digits, '-' and '_', or a lone '*'
// wildcard, joined by ':', '.', '/' or '@' (internal/permission says what
// a wildcard spans).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="self.matches('^([*]|[A-Za-z0-9_-]+)([.:/@]([*]|[A-Za-z0-9_-]+))*$')",message="must be segments of letters, digits, '-' or '_' (or a lone '*') joined by ':', '.', '/' or '@', with no spaces, for example invoices:read, tenant.apiKey:*, payments/read, billing@eu or *"
type Permission string

// IPOrCIDR is an IPv4 or IPv6 address, or a CIDR block.
// +kubebuilder:validation:MinLength=2
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isIP(self) || isCIDR(self)",message="must be an IP address (192.0.2.10, 2001:db8::1) or a CIDR block (10.0.0.0/8, 2001:db8::/32)"
type IPOrCIDR string

// Audience names an API a key is made for, as a gateway states it: for
// example billing, reports.example.com or https://api.example.com/billing.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9._:/-]*$')",message="must start with a letter or digit and hold only letters, digits, '.', '_', ':', '/' and '-' (for example billing or https://api.example.com/billing)"
type Audience string

// TokenHash is the SHA-256 of a token, as `sha256:` followed by 64
// lower-case hex digits: what `apikey-operator hash` prints for a token
// read from stdin.
// +kubebuilder:validation:MinLength=71
// +kubebuilder:validation:MaxLength=71
// +kubebuilder:validation:XValidation:rule="self.matches('^sha256:[0-9a-f]{64}$')",message="must be sha256: followed by 64 lower-case hex digits, as printed by 'apikey-operator hash' (for example sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824)"
type TokenHash string

// RoleReference names an ApiKeyRole in the ApiKey's namespace.
type RoleReference struct {
	// name of the ApiKeyRole, in the same namespace as the ApiKey.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RotationSpec replaces a key's token on a schedule. The previous token
// keeps working for gracePeriod after each rotation, so clients can pick
// up the new one from the Secret.
// +kubebuilder:validation:XValidation:rule="!has(self.gracePeriod) || !has(self.period) || duration(self.gracePeriod) < duration(self.period)",message="gracePeriod must be shorter than period: the old token must stop working before the next rotation"
type RotationSpec struct {
	// period between automatic rotations, as a Go duration (for example
	// 720h for thirty days). Leave it out to rotate only on request, through
	// the keys.apikey-operator.io/rotate annotation.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s such as 90s, 15m or 720h"
	Period *metav1.Duration `json:"period,omitempty"`

	// gracePeriod during which the previous token still verifies after a
	// rotation, as a Go duration (for example 24h). Default: 0, the old
	// token stops working at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 0s, 30m or 24h"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// RateLimitSpec limits how often a key, or all the keys of a consumer
// together, may be verified successfully. Where the count is kept (each
// verify replica's share, or Redis for the whole cluster) is the
// operator's configuration: docs/limits.md.
type RateLimitSpec struct {
	// requestsPerSecond the key may sustain.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	RequestsPerSecond int32 `json:"requestsPerSecond"`

	// burst is the most requests allowed at once. Default: requestsPerSecond.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst int32 `json:"burst,omitempty"`
}

// ApiKeySpec is the desired state of an API key.
// +kubebuilder:validation:XValidation:rule="!has(self.tokenHash) || !has(self.secretName)",message="tokenHash and secretName exclude each other: a key with a declared tokenHash has no Secret; drop one of them"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenHash) || !has(self.rotation) || !has(self.rotation.period)",message="a key with tokenHash rotates when you declare a new tokenHash, not on a schedule: drop rotation.period (keep rotation.gracePeriod for how long the previous hash still verifies)"
// +kubebuilder:validation:XValidation:rule="has(self.tokenHash) == has(oldSelf.tokenHash)",message="a key cannot switch between a minted token (no tokenHash) and a declared tokenHash; create a new ApiKey for the other kind"
type ApiKeySpec struct {
	// name of the key as the REST dialects show and address it: any text
	// of up to 128 characters without control characters, for example
	// "CI Deploy (prod)". Default: metadata.name. Unique within the
	// namespace, compared exactly (case and every byte), whichever dialect
	// or tool made the key.
	// +optional
	Name KeyName `json:"name,omitempty"`

	// description for people: what the key is for and who holds it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// roleRef names an ApiKeyRole in this namespace whose permissions the
	// key also grants. The key is not Ready while the role is missing.
	// +optional
	RoleRef *RoleReference `json:"roleRef,omitempty"`

	// consumerRef names an ApiConsumer in this namespace that the key
	// belongs to: all the consumer's keys share its rate limit, on top of
	// the key's own, and verifications name the consumer. The key does
	// not verify while the consumer is missing (Ready is False with
	// reason ConsumerNotFound), so deleting a consumer stops its keys.
	// +optional
	ConsumerRef *ConsumerReference `json:"consumerRef,omitempty"`

	// permissions the key grants in addition to its role's, such as
	// invoices:read, tenant.apiKey:* or *.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Permissions []Permission `json:"permissions,omitempty"`

	// allowedIPs are the addresses and CIDR blocks, IPv4 or IPv6, the key
	// may be used from. Empty: any address.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	AllowedIPs []IPOrCIDR `json:"allowedIPs,omitempty"`

	// audiences are the APIs the key is made for. A key with audiences
	// verifies only where the gateway names one of them (?audience=,
	// "audiences" in the verify body or ApiKeyReview), so a key made for
	// the billing API does not open the reports API; a gateway naming
	// audiences accepts only keys carrying one. Empty: the key carries its
	// role's audiences (spec.audiences of the ApiKeyRole), if any;
	// without those it verifies where the gateway names its namespace and
	// no audience.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Audiences []Audience `json:"audiences,omitempty"`

	// expiresAt is the instant the key stops working (RFC 3339). Default:
	// creation plus the operator's default lifetime (one year).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// enabled keys verify; a disabled key keeps its token but is refused
	// until enabled again. Default: true.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// secretName is the Secret, in this namespace, that receives the
	// token under the data key `api-key`. Default: metadata.name.
	// Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a valid Secret name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="secretName is immutable; create a new ApiKey to use another Secret"
	SecretName string `json:"secretName,omitempty"`

	// tokenHash declares the key's token by its hash instead of having the
	// operator mint one: the operator then creates no Secret and never
	// sees the plaintext, which stays wherever the key was made
	// (`apikey-operator hash` prints the hash of a token read from
	// stdin). Changing it rotates the key: the previous hash still
	// verifies for rotation.gracePeriod. A hash belongs to one key across
	// the cluster. Excludes secretName and rotation.period; a key cannot
	// gain or lose it after creation.
	// +optional
	TokenHash TokenHash `json:"tokenHash,omitempty"`

	// rotation replaces the token on a schedule.
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`

	// rateLimit bounds how often the key may be verified successfully.
	// With spec.consumerRef, the consumer's rate limit applies too: a
	// request must pass both.
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// quota bounds how many times the key may be verified successfully,
	// in total or per refill (docs/limits.md); status.quota shows what
	// remains.
	// +optional
	Quota *QuotaSpec `json:"quota,omitempty"`
}

// PreviousHash is the hash of a rotated-out token that still verifies
// until validUntil.
type PreviousHash struct {
	// hash of the previous token, sha256:<hex>.
	// +required
	// +kubebuilder:validation:MaxLength=71
	Hash string `json:"hash"`

	// validUntil is the end of the rotation's grace period.
	// +required
	ValidUntil metav1.Time `json:"validUntil"`
}

// KeyUsage counts the verifications of a key's tokens: each verify replica
// adds what it saw since its last write, about once a minute, so the
// figures lag by up to that much. Unknown and malformed tokens belong to no
// key and are not counted here.
type KeyUsage struct {
	// allowed is the number of successful verifications since since.
	// +optional
	Allowed int64 `json:"allowed"`

	// refused is the number of refused verifications of the key's tokens
	// (disabled, expired, address not allowed, permission missing, rate
	// limited, wrong namespace or audience) since since.
	// +optional
	Refused int64 `json:"refused"`

	// since is when counting began.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// hourly holds the counts of the last 24 hours, one entry per clock
	// hour (UTC) with verifications, oldest first; their sum is the
	// last-24-hours figure.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=25
	Hourly []HourlyUsage `json:"hourly,omitempty"`
}

// HourlyUsage is one hour's verifications of a key.
type HourlyUsage struct {
	// hour is the start of the clock hour (UTC).
	// +required
	Hour metav1.Time `json:"hour"`

	// allowed verifications in that hour.
	// +optional
	Allowed int64 `json:"allowed"`

	// refused verifications in that hour.
	// +optional
	Refused int64 `json:"refused"`
}

// Last24h sums the hourly counts of the 24 hours before now.
func (u *KeyUsage) Last24h(now time.Time) (allowed, refused int64) {
	if u == nil {
		return 0, 0
	}
	from := now.Add(-24 * time.Hour)
	for _, h := range u.Hourly {
		if !h.Hour.Time.Before(from.Truncate(time.Hour)) {
			allowed += h.Allowed
			refused += h.Refused
		}
	}
	return allowed, refused
}

// LeakReport records that a secret scanner reported one of the key's
// tokens as found in public (docs/leaks.md). It names the token by hash,
// never by value.
type LeakReport struct {
	// hash of the reported token, sha256:<hex>.
	// +required
	// +kubebuilder:validation:MaxLength=71
	Hash string `json:"hash"`

	// reporter is who reported it, for example github.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Reporter string `json:"reporter"`

	// url is where the token was found, as the reporter said (may be empty).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`

	// source is the kind of place it was found (content, commit, issue_comment, npm, ...).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Source string `json:"source,omitempty"`

	// reportedAt is when the report arrived.
	// +required
	ReportedAt metav1.Time `json:"reportedAt"`

	// reaction is what the operator did: disable, rotate, endGracePeriod or report.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Reaction string `json:"reaction"`
}

// ApiKeyStatus is what the operator observed and did. It never holds the
// token itself: only its hash and a short, non-secret prefix.
type ApiKeyStatus struct {
	// conditions: Ready tells whether the key verifies now, and if not, why.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// hash of the current token, sha256:<hex>.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	Hash string `json:"hash,omitempty"`

	// keyPrefix is the token's first, non-secret characters, for people
	// to recognise a key (for example ak_3xAmPl).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	KeyPrefix string `json:"keyPrefix,omitempty"`

	// previousHashes still verify during a rotation's grace period.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	PreviousHashes []PreviousHash `json:"previousHashes,omitempty"`

	// secretName is the Secret that holds the token.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName,omitempty"`

	// issuedAt is when the current token was first seen in its Secret.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is the effective expiry: spec.expiresAt, or creation plus
	// the default lifetime.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lastRotatedAt is when the token was last replaced by a rotation.
	// +optional
	LastRotatedAt *metav1.Time `json:"lastRotatedAt,omitempty"`

	// lastUsedAt is when the key last verified, to within a minute.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`

	// usage counts the key's verifications, summed over every verify
	// replica and written with lastUsedAt, about once a minute.
	// +optional
	Usage *KeyUsage `json:"usage,omitempty"`

	// quota is what remains of spec.quota, written by the verify
	// replicas with usage, about once a minute.
	// +optional
	Quota *QuotaStatus `json:"quota,omitempty"`

	// leaks are the latest reports of the key's tokens found in public,
	// newest last. While the current token is among them and the key is
	// disabled, Ready is False with reason Leaked.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Leaks []LeakReport `json:"leaks,omitempty"`

	// observedRotateAnnotation is the value of the
	// keys.apikey-operator.io/rotate annotation that was last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ObservedRotateAnnotation string `json:"observedRotateAnnotation,omitempty"`

	// observedEndGracePeriodAnnotation is the value of the
	// keys.apikey-operator.io/end-grace-period annotation that was last
	// acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ObservedEndGracePeriodAnnotation string `json:"observedEndGracePeriodAnnotation,omitempty"`
}

// ApiKey is an API key. The operator mints its token into a Secret and
// keeps only the token's hash in status.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: it labels the key's Secret, and label values are at most 63 characters"
// +kubebuilder:resource:shortName=ak,categories=apikeys
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.status.keyPrefix`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Role",type=string,priority=1,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Quota Left",type=integer,priority=1,JSONPath=`.status.quota.remaining`
// +kubebuilder:printcolumn:name="Consumer",type=string,priority=1,JSONPath=`.spec.consumerRef.name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ApiKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the key.
	// +required
	Spec ApiKeySpec `json:"spec"`

	// status is what the operator observed; written only by the operator.
	// +optional
	Status ApiKeyStatus `json:"status,omitempty"`
}

// ApiKeyList is a list of ApiKeys.
// +kubebuilder:object:root=true
type ApiKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApiKey `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ApiKey{}, &ApiKeyList{})
}
