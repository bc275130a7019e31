// Package eventbudget bounds the routine (Normal) events a process sends.
//
// Each event is one more write to the API server. At scale the routine
// ones cost the most: 10,000 keys applied at once meant 10,000 "Issued"
// events, the third write per key beside the Secret and the status, and
// client-go's broadcaster keeps every event it sent for minutes to find
// series (about 12 MiB at 10,000 keys). A burst of routine events past the
// budget is therefore not sent: what they said stays on the object itself
// (a key's status.issuedAt and the Ready condition's transition), and a
// counter says how many were held back. Warning events always go out:
// they are what a person has to act on.
package eventbudget

import (
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// Recorder sends every Warning event and the Normal events the budget
// allows; it is safe for concurrent use.
type Recorder struct {
	inner   recorder.EventRecorder
	limiter *rate.Limiter // nil: no budget
	dropped *prometheus.CounterVec
}

var _ recorder.EventRecorder = (*Recorder)(nil)

// New wraps inner with a budget of qps Normal events per second and bursts
// of burst; qps < 0 means no budget. dropped counts the events held back,
// by reason; nil counts nowhere.
func New(inner recorder.EventRecorder, qps float64, burst int, dropped *prometheus.CounterVec) *Recorder {
	r := &Recorder{inner: inner, dropped: dropped}
	if qps >= 0 {
		r.limiter = rate.NewLimiter(rate.Limit(qps), burst)
	}
	return r
}

// NewDroppedCounter is the counter New takes, registered on reg when reg
// is not nil; a process that builds the operator twice (tests) shares the
// one registered first.
func NewDroppedCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_events_dropped_total",
		Help: "Normal events not sent because more were due than --event-qps and --event-burst allow, by reason; what they said is in the object's status.",
	}, []string{"reason"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			return nil, err
		}
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
		return nil, err
	}
	return c, nil
}

// allow says whether an event of this type may go out now.
func (r *Recorder) allow(eventtype, reason string) bool {
	if eventtype != corev1.EventTypeNormal || r.limiter == nil || r.limiter.Allow() {
		return true
	}
	if r.dropped != nil {
		r.dropped.WithLabelValues(reason).Inc()
	}
	return false
}

// Eventf sends the event if the budget allows it.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if r.allow(eventtype, reason) {
		r.inner.Eventf(regarding, related, eventtype, reason, action, note, args...)
	}
}

// AnnotatedEventf sends the event if the budget allows it.
func (r *Recorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	if r.allow(eventtype, reason) {
		r.inner.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, note, args...)
	}
}
