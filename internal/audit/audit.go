// Package audit records the REST dialects' writes as Kubernetes audit
// events (audit.k8s.io/v1 Event) through k8s.io/apiserver's audit options
// and backends (--audit-log-path, --audit-policy-file, --audit-webhook-*),
// so existing audit pipelines take them in: who (the Kubernetes user, or
// apikey:<namespace>/<name> with the calling key's prefix), from where
// (sourceIPs), what changed (annotations) and the outcome (responseStatus
// and an annotation).
//
// Invariant: no event carries a token or a hash. Events hold no request or
// response bodies whatever the policy asks (Scrub drops them: a create
// response holds the new token, an ApiKeyReview request the key under
// review), and the annotations name fields, never secrets.
package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/sets"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Annotations on the audit events of dialect writes.
const (
	// OperationAnnotation is create, update, rotate or delete.
	OperationAnnotation = "keys.apikey-operator.io/operation"
	// ApiKeyAnnotation is the ApiKey written, <namespace>/<name>.
	ApiKeyAnnotation = "keys.apikey-operator.io/apikey"
	// ChangesAnnotation is a JSON object of the fields set and their new
	// values (spec fields only; never a token or hash).
	ChangesAnnotation = "keys.apikey-operator.io/changes"
	// OutcomeAnnotation is "success", or "failure: <reason>".
	OutcomeAnnotation = "keys.apikey-operator.io/outcome"
	// ActorKeyAnnotation is the calling key, <namespace>/<name>
	// (prefix <prefix>), when an API key made the call.
	ActorKeyAnnotation = "keys.apikey-operator.io/actor-key"
)

// Write is one dialect write, for the audit event and the ApiKey's Event.
type Write struct {
	Operation       string // create, update, rotate, delete
	Namespace, Name string
	// Changes are the spec fields set, by their JSON name, with their new
	// values. The caller never puts a token or a hash here.
	Changes map[string]any
}

// Record annotates the request's audit event with the write and its
// outcome. Without an audit context (auditing off) it does nothing.
func Record(ctx context.Context, w Write, err error) {
	kv := []string{OperationAnnotation, w.Operation, ApiKeyAnnotation, w.Namespace + "/" + w.Name, OutcomeAnnotation, Outcome(err)}
	if len(w.Changes) > 0 {
		if raw, jerr := json.Marshal(w.Changes); jerr == nil {
			kv = append(kv, ChangesAnnotation, string(raw))
		}
	}
	audit.AddAuditAnnotations(ctx, kv...)
}

// Outcome is "success" or "failure: <err>".
func Outcome(err error) string {
	if err == nil {
		return "success"
	}
	return "failure: " + err.Error()
}

// Actor annotates the request's audit event with the calling key.
func Actor(ctx context.Context, namespace, name, prefix string) {
	audit.AddAuditAnnotation(ctx, ActorKeyAnnotation, namespace+"/"+name+" (prefix "+prefix+")")
}

type sourceKey struct{}

// WithSource remembers the client's address for the ApiKey's Event.
func WithSource(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, sourceKey{}, ip)
}

// SourceFrom is the client's address, if known.
func SourceFrom(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(sourceKey{}).(netip.Addr)
	return ip, ok && ip.IsValid()
}

// Chain audits requests that bypass the generic server's handler chain
// (the REST dialects): it opens the audit context and the request info
// around authenticate, which must put the caller in the context with
// request.WithUser, and records the event around next as the generic
// chain's WithAudit does. With no backend it is authenticate(next).
func Chain(backend audit.Backend, policy audit.PolicyRuleEvaluator, authenticate func(http.Handler) http.Handler, next http.Handler) http.Handler {
	if backend == nil || policy == nil {
		return authenticate(next)
	}
	h := genericapifilters.WithAudit(next, backend, policy, nil)
	h = authenticate(h)
	// No API prefixes: every dialect path is a non-resource URL, audited
	// with its HTTP method as the verb (a tenant path such as
	// /api/{tenant}/admin/apiKeys is not Kubernetes' /api group).
	h = genericapifilters.WithRequestInfo(h, &request.RequestInfoFactory{APIPrefixes: sets.NewString(), GrouplessAPIPrefixes: sets.NewString()})
	h = genericapifilters.WithAuditInit(h)
	return genericapifilters.WithRequestReceivedTimestamp(h)
}

// Scrub wraps a backend so that no event carries a request or response
// body, whatever level the policy sets: the bodies of this server's
// requests can hold tokens (a create response, an ApiKeyReview request).
func Scrub(b audit.Backend) audit.Backend {
	if b == nil {
		return nil
	}
	return scrubbed{b}
}

type scrubbed struct{ audit.Backend }

func (s scrubbed) ProcessEvents(events ...*auditinternal.Event) bool {
	out := make([]*auditinternal.Event, len(events))
	for i, e := range events {
		// The event must not be changed (the caller reuses it): a
		// shallow copy without the bodies.
		c := *e
		c.RequestObject, c.ResponseObject = nil, nil
		out[i] = &c
	}
	return s.Backend.ProcessEvents(out...)
}

func (s scrubbed) String() string { return "scrubbed<" + s.Backend.String() + ">" }
