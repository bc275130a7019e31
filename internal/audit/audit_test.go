package audit

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
)

type sink struct{ got []*auditinternal.Event }

func (s *sink) ProcessEvents(events ...*auditinternal.Event) bool {
	s.got = append(s.got, events...)
	return true
}
func (s *sink) Run(<-chan struct{}) error { return nil }
func (s *sink) Shutdown()                 {}
func (s *sink) String() string            { return "test" }

// Scrub passes events on without their bodies, and leaves the caller's
// event as it was (the audit filter reuses it).
func TestScrubDropsBodies(t *testing.T) {
	inner := &sink{}
	b := Scrub(inner)
	e := &auditinternal.Event{AuditID: "1", RequestObject: &runtime.Unknown{Raw: []byte(`{"spec":{"key":"ak_x"}}`)}, ResponseObject: &runtime.Unknown{Raw: []byte(`{}`)}}
	b.ProcessEvents(e)
	if len(inner.got) != 1 || inner.got[0].RequestObject != nil || inner.got[0].ResponseObject != nil || inner.got[0].AuditID != "1" {
		t.Fatalf("scrubbed event: %+v", inner.got)
	}
	if e.RequestObject == nil || e.ResponseObject == nil {
		t.Fatal("Scrub changed the caller's event")
	}
	if Scrub(nil) != nil {
		t.Fatal("Scrub(nil) must stay nil: no auditing")
	}
}

func TestRecordAnnotates(t *testing.T) {
	ctx := audit.WithAuditContext(context.Background())
	audit.AuditContextFrom(ctx).Init(audit.RequestAuditConfig{Level: auditinternal.LevelMetadata}, nil)
	Record(ctx, Write{Operation: "update", Namespace: "ns", Name: "k", Changes: map[string]any{"enabled": false}}, errors.New("conflict"))
	got := audit.AuditContextFrom(ctx).GetEventAnnotations()
	want := map[string]string{OperationAnnotation: "update", ApiKeyAnnotation: "ns/k", OutcomeAnnotation: "failure: conflict", ChangesAnnotation: `{"enabled":false}`}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
