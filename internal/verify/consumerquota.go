package verify

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

// consumerQuota is one ApiConsumer's quota counter, for the flusher.
type consumerQuota struct {
	id types.NamespacedName
	c  quota.Counter
	q  quota.Quota
}

// consumerQuotas lists the consumers that have a quota. The flusher calls
// it once per flush; consumers are few next to keys, so it walks them all
// rather than queue the used ones from the verify path.
func (ix *Index) consumerQuotas() []consumerQuota {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out []consumerQuota
	for id, c := range ix.consumers {
		if c.quota != nil {
			out = append(out, consumerQuota{id: id, c: c.quota, q: c.quotaDef})
		}
	}
	return out
}

// flushConsumers writes status.quota of each consumer whose count this
// replica saw grow since its last write, as for keys (quotaStatusOf): a
// replica writes only a count newer than the status holds. A consumer's
// status is the controller's otherwise (conditions, keys), which it
// writes by a patch of those fields alone.
func (f *flusher) flushConsumers(ctx context.Context) {
	if f.consumers == nil {
		return
	}
	live := f.consumers()
	flushed := make(map[quota.Counter]quota.State, len(live))
	for _, cq := range live {
		last, seen := f.consumerFlushed[cq.c]
		if seen {
			flushed[cq.c] = last
		}
		st, ok := cq.c.Last()
		if !ok || (seen && !st.Newer(&last)) {
			continue
		}
		count := &quotaCount{st: st, q: cq.q}
		err := patchStatus(ctx, f, cq.id, func(c *keysv1.ApiConsumer) (any, bool) {
			qs := quotaStatusOf(c.Spec.Quota, c.Status.Quota, count)
			var p consumerQuotaPatch
			p.Metadata.ResourceVersion = c.ResourceVersion
			p.Status.Quota = qs
			return p, qs != nil
		})
		if err != nil && !apierrors.IsNotFound(err) {
			// Kept for the next flush: the count only grows.
			f.log.Error(err, "record the consumer's quota", "apiconsumer", cq.id.String())
			continue
		}
		flushed[cq.c] = st
	}
	// Counters of consumers gone or changed are forgotten.
	f.consumerFlushed = flushed
}

type consumerQuotaPatch struct {
	Metadata struct {
		// ResourceVersion makes the merge patch conditional, as for keys.
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Status struct {
		Quota *keysv1.QuotaStatus `json:"quota"`
	} `json:"status"`
}
