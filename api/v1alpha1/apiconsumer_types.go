package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConsumerReference names an ApiConsumer in the ApiKey's namespace.
type ConsumerReference struct {
	// name of the ApiConsumer, in the same namespace as the ApiKey.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ApiConsumerSpec is what every key of one consumer (a customer, a team,
// an application holding several keys) shares.
type ApiConsumerSpec struct {
	// description for people: who the consumer is.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// rateLimit bounds the successful verifications of all the
	// consumer's keys together: every ApiKey whose spec.consumerRef names
	// this consumer takes from the same limit. A key's own
	// spec.rateLimit applies as well: a request must pass both.
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// quota bounds the successful verifications of all the consumer's
	// keys together, in total or per refill (docs/limits.md): every
	// ApiKey whose spec.consumerRef names this consumer spends from the
	// same quota. A key's own spec.quota applies as well. status.quota
	// shows what remains.
	// +optional
	Quota *QuotaSpec `json:"quota,omitempty"`
}

// ApiConsumerStatus is what the operator observed of a consumer.
type ApiConsumerStatus struct {
	// conditions: Ready tells whether the consumer's limits apply to its
	// keys.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// keys is the number of ApiKeys in this namespace whose
	// spec.consumerRef names the consumer.
	// +optional
	Keys int32 `json:"keys"`

	// quota is what remains of spec.quota, as the verify servers counted
	// it; written by them in batches (about once a minute), so it may
	// trail the true count by that much.
	// +optional
	Quota *QuotaStatus `json:"quota,omitempty"`
}

// ApiConsumer is one consumer of APIs (a customer, a team, an
// application) whose ApiKeys, in the same namespace, share its rate
// limit and quota: an ApiKey joins it through spec.consumerRef, and
// verifications name the consumer (X-ApiKey-Consumer, "consumer" in the
// JSON answer and ApiKeyReview status).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=akc,categories=apikeys
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.keys`
// +kubebuilder:printcolumn:name="Rate",type=integer,JSONPath=`.spec.rateLimit.requestsPerSecond`
// +kubebuilder:printcolumn:name="Burst",type=integer,priority=1,JSONPath=`.spec.rateLimit.burst`
// +kubebuilder:printcolumn:name="Quota Left",type=integer,priority=1,JSONPath=`.status.quota.remaining`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ApiConsumer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds what the consumer's keys share.
	// +required
	Spec ApiConsumerSpec `json:"spec"`

	// status is what the operator observed; written only by the operator.
	// +optional
	Status ApiConsumerStatus `json:"status,omitempty"`
}

// ApiConsumerList is a list of ApiConsumers.
// +kubebuilder:object:root=true
type ApiConsumerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApiConsumer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ApiConsumer{}, &ApiConsumerList{})
}
