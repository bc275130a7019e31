package eventbudget

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// sent records what reaches the wrapped recorder.
type sent struct{ reasons []string }

func (s *sent) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	s.reasons = append(s.reasons, reason)
}

func (s *sent) AnnotatedEventf(_, _ runtime.Object, _ map[string]string, _, reason, _, _ string, _ ...any) {
	s.reasons = append(s.reasons, reason)
}

func TestBudgetHoldsBackNormalEventsPastTheBurstOnly(t *testing.T) {
	inner := &sent{}
	dropped, err := NewDroppedCounter(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := New(inner, 0, 2, dropped) // two at once, no refill
	for range 3 {
		r.Eventf(nil, nil, corev1.EventTypeNormal, "Issued", "Issue", "issued")
	}
	r.Eventf(nil, nil, corev1.EventTypeWarning, "SecretRecreated", "Recreate", "recreated")
	r.AnnotatedEventf(nil, nil, nil, corev1.EventTypeNormal, "Rotated", "Rotate", "rotated")
	r.AnnotatedEventf(nil, nil, nil, corev1.EventTypeWarning, "TokenInUse", "Adopt", "in use")

	want := []string{"Issued", "Issued", "SecretRecreated", "TokenInUse"}
	if len(inner.reasons) != len(want) {
		t.Fatalf("sent %v, want %v", inner.reasons, want)
	}
	for i := range want {
		if inner.reasons[i] != want[i] {
			t.Fatalf("sent %v, want %v", inner.reasons, want)
		}
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("Issued")); got != 1 {
		t.Errorf("dropped Issued = %v, want 1", got)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("Rotated")); got != 1 {
		t.Errorf("dropped Rotated = %v, want 1", got)
	}
}

func TestNegativeQPSSendsEveryEvent(t *testing.T) {
	inner := &sent{}
	r := New(inner, -1, 0, nil)
	for range 1000 {
		r.Eventf(nil, nil, corev1.EventTypeNormal, "Issued", "Issue", "issued")
	}
	if len(inner.reasons) != 1000 {
		t.Fatalf("sent %d of 1000 events", len(inner.reasons))
	}
}

func TestTheCounterIsSharedWhenRegisteredTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewDroppedCounter(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDroppedCounter(reg)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("a second registration made a second counter")
	}
}
