package keystore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/audit"
)

// EventRecorder is the part of an event recorder (k8s.io/client-go/tools/events)
// the store uses to tell, on the ApiKey, who changed it through a REST
// dialect.
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event reasons on ApiKeys written through a REST dialect.
const (
	ReasonCreatedByAPI = "CreatedThroughAPI"
	ReasonUpdatedByAPI = "UpdatedThroughAPI"
	ReasonDeletedByAPI = "DeletedThroughAPI"
)

// write is what a dialect write did so far, for its audit record: the
// operation, the key (as named in the request until it is found), the
// spec fields it sets, and whether it was carried out.
type write struct {
	op, ns, name string
	key          *keysv1.ApiKey
	changes      map[string]any
	done         bool
}

// record writes the audit annotations of a write, whatever its outcome,
// and once it is done an Event on the ApiKey naming the actor and where it
// called from. Changes hold spec fields only: never a token or a hash.
func (s *Kube) record(ctx context.Context, w *write, err error) {
	name := w.name
	if w.key != nil {
		name = w.key.Name
	}
	if err == nil && !w.done {
		// Nothing to write (an update that changes nothing).
		w.changes = nil
	}
	audit.Record(ctx, audit.Write{Operation: w.op, Namespace: w.ns, Name: name, Changes: w.changes}, err)
	if !w.done || s.Recorder == nil {
		return
	}
	op, key, changes := w.op, w.key, w.changes
	actor := access.CallerFrom(ctx).Name()
	from := ""
	if ip, ok := audit.SourceFrom(ctx); ok {
		from = " from " + ip.String()
	}
	what := ""
	if len(changes) > 0 {
		raw, _ := json.Marshal(changes)
		what = ": " + string(raw)
	}
	reason := map[string]string{"create": ReasonCreatedByAPI, "update": ReasonUpdatedByAPI, "delete": ReasonDeletedByAPI}[op]
	// Event notes are at most 1 KiB.
	note := truncate(fmt.Sprintf("%sd by %s%s through the REST API%s", op, actor, from, what), 990)
	s.Recorder.Eventf(key, nil, corev1.EventTypeNormal, reason, strings.ToUpper(op[:1])+op[1:], "%s", note)
}

// specChanges are the fields of after that differ from before, by JSON
// name, with after's values.
func specChanges(before, after *keysv1.ApiKeySpec) map[string]any {
	b, a := map[string]any{}, map[string]any{}
	rb, _ := json.Marshal(before)
	ra, _ := json.Marshal(after)
	_ = json.Unmarshal(rb, &b)
	_ = json.Unmarshal(ra, &a)
	out := map[string]any{}
	for k, v := range a {
		if ov, ok := b[k]; !ok || !jsonEqual(ov, v) {
			out[k] = v
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

func jsonEqual(x, y any) bool {
	rx, _ := json.Marshal(x)
	ry, _ := json.Marshal(y)
	return string(rx) == string(ry)
}
