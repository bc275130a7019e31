package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The quota types are their own file so that every kind with a quota
// (ApiKey, and a consumer whose keys share one) declares it alike: the
// same spec, the same status, the same bounds, counted by internal/quota.

// QuotaPeriod is a calendar period a quota refills at the start of, in
// UTC.
// +kubebuilder:validation:Enum=Hour;Day;Week;Month
type QuotaPeriod string

// The calendar periods: a week starts on Monday (ISO 8601).
const (
	QuotaPeriodHour  QuotaPeriod = "Hour"
	QuotaPeriodDay   QuotaPeriod = "Day"
	QuotaPeriodWeek  QuotaPeriod = "Week"
	QuotaPeriodMonth QuotaPeriod = "Month"
)

// QuotaSpec bounds the number of successful verifications: in total, or
// given back over time by a refill. A verification the quota refuses is
// answered QuotaExceeded, apart from a rate limit's RateLimited. Exact
// with --limits-redis-url; without Redis, exact with one verify replica
// and refused (QuotaUnavailable) with several (docs/limits.md).
// +kubebuilder:validation:XValidation:rule="!has(self.refill) || !has(self.refill.amount) || self.refill.amount <= self.limit",message="refill.amount must be at most limit: a quota never holds more than its limit"
type QuotaSpec struct {
	// limit is the number of successful verifications allowed: in total
	// without refill, and at most at once with one (what is not used is
	// not carried over beyond it).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000000
	Limit int64 `json:"limit"`

	// refill gives verifications back over time. Without it the quota is
	// spent once.
	// +optional
	Refill *QuotaRefill `json:"refill,omitempty"`
}

// QuotaRefill gives amount verifications back (up to the quota's limit)
// at every interval after the object's creation, or at the start of
// every calendar period in UTC: exactly one of interval and period.
// +kubebuilder:validation:XValidation:rule="has(self.interval) != has(self.period)",message="set exactly one of interval (a duration counted from the object's creation, such as 24h) and period (the start of each calendar Hour, Day, Week or Month, UTC)"
type QuotaRefill struct {
	// interval between refills, as a Go duration of 1m to 87600h (ten
	// years), counted from the object's creation; for example 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('87600h')",message="must be a duration from 1m to 87600h, such as 1h, 24h or 720h (shorter refills are a rate limit: use rateLimit)"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// period refills at the start of each calendar period, in UTC: Hour,
	// Day, Week (from Monday) or Month.
	// +optional
	Period QuotaPeriod `json:"period,omitempty"`

	// amount given back at each refill, up to limit. Default: limit, so
	// each refill resets the quota to full.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000000
	Amount int64 `json:"amount,omitempty"`
}

// QuotaStatus is what is left of a quota. The verify replicas write it
// with status.usage, about once a minute, never per request: with several
// replicas it is the newest count any of them saw, and may lag by that
// much. It is also where counting starts again when the counter is lost
// (a Redis flushed or restarted without persistence, a restarted replica
// without Redis), so a lost counter does not refill the quota.
type QuotaStatus struct {
	// limit the figures below count against (spec.quota.limit when they
	// were counted).
	// +optional
	Limit int64 `json:"limit"`

	// used is the number of successful verifications counted against the
	// quota that no refill has given back yet.
	// +optional
	Used int64 `json:"used"`

	// remaining is limit minus used, and never below 0.
	// +optional
	Remaining int64 `json:"remaining"`

	// countedAt is when a verify replica counted these figures.
	// +optional
	CountedAt *metav1.Time `json:"countedAt,omitempty"`

	// nextRefillAt is when the next refill gives verifications back;
	// unset without refill.
	// +optional
	NextRefillAt *metav1.Time `json:"nextRefillAt,omitempty"`
}

// The bounds of QuotaSpec's markers, as Go values (see apikey_bounds.go).
const (
	QuotaLimitMax    = 1000000000000
	QuotaIntervalMin = time.Minute
	QuotaIntervalMax = 87600 * time.Hour
)
