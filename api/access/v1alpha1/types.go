package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the aggregated API's group and version.
var GroupVersion = schema.GroupVersion{Group: "access.apikey-operator.io", Version: "v1alpha1"}

// Reasons an ApiKeyReview gives.
const (
	ReasonValid             = "Valid"
	ReasonMalformed         = "Malformed"
	ReasonNotFound          = "NotFound"
	ReasonExpired           = "Expired"
	ReasonDisabled          = "Disabled"
	ReasonIPNotAllowed      = "IPNotAllowed"
	ReasonMissingPermission = "MissingPermission"
	ReasonRateLimited       = "RateLimited"
	// ReasonQuotaExceeded: the key's quota (spec.quota), or its
	// ApiConsumer's, is spent until its next refill.
	// ReasonQuotaUnavailable: the key or its consumer has a quota this
	// server cannot count (several replicas and no Redis).
	ReasonQuotaExceeded    = "QuotaExceeded"
	ReasonQuotaUnavailable = "QuotaUnavailable"
	// ReasonWrongNamespace and ReasonWrongAudience: the key exists but is
	// outside the namespaces or audiences the review names.
	ReasonWrongNamespace = "WrongNamespace"
	ReasonWrongAudience  = "WrongAudience"
)

// ApiKeyReview checks an API key: create one with spec.key and read the
// verdict in status. Nothing is stored.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type ApiKeyReview struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the key to check and the request it is used for.
	Spec ApiKeyReviewSpec `json:"spec"`
	// status is the verdict.
	// +optional
	Status ApiKeyReviewStatus `json:"status,omitempty"`
}

// ApiKeyReviewSpec is the key and the request to check it for.
type ApiKeyReviewSpec struct {
	// key is the API key as presented. It is never stored, logged or
	// returned.
	Key string `json:"key"`
	// namespaces whose keys the review accepts: the key's namespace must
	// be one of them. At most 32.
	// +optional
	// +listType=atomic
	Namespaces []string `json:"namespaces,omitempty"`
	// audiences the review accepts: when set, or when the key has
	// spec.audiences, the key must carry one of them. At most 32. A review
	// naming no namespace and no audience is refused unless the server
	// runs with --verify-any-namespace.
	// +optional
	// +listType=atomic
	Audiences []string `json:"audiences,omitempty"`
	// ip is the client's address, checked against the key's allowedIPs.
	// +optional
	IP string `json:"ip,omitempty"`
	// permissions the request needs; every one must be granted.
	// +optional
	// +listType=atomic
	Permissions []string `json:"permissions,omitempty"`
}

// ApiKeyReviewStatus is the verdict.
type ApiKeyReviewStatus struct {
	// valid is true when the key may make the request.
	Valid bool `json:"valid"`
	// reason is Valid, Malformed, NotFound, WrongNamespace, WrongAudience,
	// Expired, Disabled, IPNotAllowed, MissingPermission, RateLimited,
	// QuotaExceeded or QuotaUnavailable.
	Reason string `json:"reason"`
	// apiKey identifies the key the token belongs to; set when it is known
	// and inside the namespaces and audiences the review names.
	// +optional
	ApiKey *ReviewedApiKey `json:"apiKey,omitempty"`
}

// ReviewedApiKey is what a review tells about the key.
type ReviewedApiKey struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	KeyPrefix string `json:"keyPrefix"`
	// +optional
	Role string `json:"role,omitempty"`
	// consumer is the ApiConsumer the key belongs to (its
	// spec.consumerRef), whose rate limit all its keys share.
	// +optional
	Consumer string `json:"consumer,omitempty"`
	// permissions are the key's effective permissions: its role's and its own.
	// +optional
	// +listType=atomic
	Permissions []string `json:"permissions,omitempty"`
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// usage is the key's usage as its status last recorded it (written
	// about once a minute, summed over every verify replica).
	// +optional
	Usage *ReviewedUsage `json:"usage,omitempty"`
}

// ReviewedUsage counts a key's verifications.
type ReviewedUsage struct {
	// allowed and refused are the totals since counting began.
	Allowed int64 `json:"allowed"`
	Refused int64 `json:"refused"`
	// allowedLast24h and refusedLast24h are those of the last 24 hours.
	AllowedLast24h int64 `json:"allowedLast24h"`
	RefusedLast24h int64 `json:"refusedLast24h"`
	// lastUsedAt is when the key last verified, to within a minute.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`
}

// AddToScheme registers ApiKeyReview for clients.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ApiKeyReview{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
