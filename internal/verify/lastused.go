package verify

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

// usage is what this replica saw of one key: when it last verified, and
// how often it was allowed and refused. The verify path only adds to
// counters and, once per flush, queues the key; the flusher writes the
// difference since its last write into status.
type usage struct {
	id   types.NamespacedName
	last atomic.Int64 // Unix nanoseconds of the last valid verification
	// allowed and refused only grow (since this replica began tracking
	// the key): the per-key metric reads them, the flusher writes their
	// growth since its last write.
	allowed, refused atomic.Int64
	queued           atomic.Bool
	// counters are the namespace's verdict counters, resolved on first use.
	counters atomic.Pointer[[numCodes]prometheus.Counter]

	// quota is the key's quota counter, for status.quota; nil without.
	quota atomic.Pointer[quotaRef]

	// The flusher's alone: what is already in status.
	flushed                        int64 // lastUsedAt
	flushedAllowed, flushedRefused int64
	flushedQuota                   quota.State
}

// quotaRef is a key's quota counter and the definition it counts by.
type quotaRef struct {
	c quota.Counter
	q quota.Quota
}

func (u *usage) setQuota(c quota.Counter, q quota.Quota) {
	if c == nil {
		u.quota.Store(nil)
		return
	}
	u.quota.Store(&quotaRef{c: c, q: q})
}

// usageTracker holds the keys used since the last flush.
type usageTracker struct {
	mu      sync.Mutex
	pending []*usage
}

// record counts one verdict on a known key. It allocates nothing once the
// pending list has grown to the number of keys in use. The time is stored
// at most once a second per key so that busy keys do not bounce one more
// cache line between cores.
func (t *usageTracker) record(u *usage, valid bool, now int64) {
	if valid {
		u.allowed.Add(1)
		if now-u.last.Load() >= int64(time.Second) {
			u.last.Store(now)
		}
	} else {
		u.refused.Add(1)
	}
	t.requeue(u)
}

// drain takes the queued keys.
func (t *usageTracker) drain() []*usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.pending
	t.pending = make([]*usage, 0, cap(out))
	return out
}

func (t *usageTracker) requeue(u *usage) {
	if u.queued.Load() || !u.queued.CompareAndSwap(false, true) {
		return
	}
	t.mu.Lock()
	t.pending = append(t.pending, u)
	t.mu.Unlock()
}

// flusher writes status.lastUsedAt and status.usage for the keys used
// since its last run, once per interval (at least a minute), a few writes
// at a time. Every replica adds its own counts: each write reads the key,
// adds this replica's growth since its last write, and patches status with
// the resourceVersion it read, so two replicas writing at once conflict
// and the loser adds again onto the winner's figures instead of
// overwriting them. The patch holds only lastUsedAt and usage, so it
// cannot undo what the controller writes.
type flusher struct {
	tracker *usageTracker
	client  client.Client
	// reader reads the key again after a conflict, bypassing a cache that
	// may not have seen the other replica's write yet; default client.
	reader   client.Reader
	interval time.Duration
	workers  int
	log      logr.Logger
	now      func() time.Time
	// consumers lists the ApiConsumers with a quota, whose status.quota
	// the flusher writes too (consumerquota.go); nil for none.
	consumers func() []consumerQuota
	// consumerFlushed is the count last written of each consumer quota
	// counter: the flush loop's alone.
	consumerFlushed map[quota.Counter]quota.State
}

func (f *flusher) run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Last writes on the way out, bounded so shutdown stays quick.
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			f.flush(final)
			cancel()
			return
		case <-t.C:
			f.flush(ctx)
		}
	}
}

// flush writes one batch: every key queued since the last flush.
func (f *flusher) flush(ctx context.Context) {
	batch := f.tracker.drain()
	work := make(chan *usage)
	var wg sync.WaitGroup
	for range max(1, f.workers) {
		wg.Go(func() {
			for u := range work {
				f.write(ctx, u)
			}
		})
	}
	for _, u := range batch {
		work <- u
	}
	close(work)
	wg.Wait()
	f.flushConsumers(ctx)
}

// delta is what one replica adds to a key's status in one write.
type delta struct {
	last             int64 // 0: no valid verification since the last write
	allowed, refused int64
	// quota is this replica's newest count of the key's quota, when it
	// is newer than what it wrote last; written only if it is newer than
	// status.quota too (quota.State.Newer), so replicas writing in any
	// order leave the newest count any of them saw.
	quota *quotaCount
}

type quotaCount struct {
	st quota.State
	q  quota.Quota
}

func (f *flusher) write(ctx context.Context, u *usage) {
	// Unqueue before reading the counters: a use racing with this write
	// queues the key again for the next flush instead of being lost.
	u.queued.Store(false)
	d := delta{allowed: u.allowed.Load() - u.flushedAllowed, refused: u.refused.Load() - u.flushedRefused}
	if last := u.last.Load(); last > u.flushed {
		d.last = last
	}
	if ref := u.quota.Load(); ref != nil {
		if st, ok := ref.c.Last(); ok && (u.flushedQuota.At == 0 || st.Newer(&u.flushedQuota)) {
			d.quota = &quotaCount{st: st, q: ref.q}
		}
	}
	if d == (delta{}) {
		return
	}
	err := f.apply(ctx, u.id, d)
	switch {
	case err == nil, apierrors.IsNotFound(err):
		// Written, or the key is gone and there is nothing to record.
		u.flushed = max(u.flushed, d.last)
		u.flushedAllowed += d.allowed
		u.flushedRefused += d.refused
		if d.quota != nil {
			u.flushedQuota = d.quota.st
		}
	default:
		f.log.Error(err, "record usage and lastUsedAt", "apikey", u.id.String())
		f.tracker.requeue(u)
	}
}

// conflictRetries bounds the read-add-write rounds of one write; what is
// not written is kept for the next flush.
const conflictRetries = 5

// apply adds d to the key's status under optimistic concurrency.
func (f *flusher) apply(ctx context.Context, id types.NamespacedName, d delta) error {
	return patchStatus(ctx, f, id, func(key *keysv1.ApiKey) (any, bool) { return usagePatchOf(key, d, f.now()), true })
}

// patchStatus reads the object, and merge-patches its status with what
// patchOf makes of it (nothing when it answers false); after a conflict,
// again from a fresh read into a new object, so that nothing of the
// stale one is left.
func patchStatus[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, f *flusher, id types.NamespacedName, patchOf func(PT) (any, bool)) error {
	reader := client.Reader(f.client)
	var err error
	for range conflictRetries {
		obj := PT(new(T))
		if err = reader.Get(ctx, id, obj); err != nil {
			return err
		}
		patch, ok := patchOf(obj)
		if !ok {
			return nil
		}
		body, merr := json.Marshal(patch)
		if merr != nil {
			return merr
		}
		err = f.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
		if !apierrors.IsConflict(err) {
			return err
		}
		if f.reader != nil {
			reader = f.reader
		}
	}
	return errors.Join(errors.New("another writer kept changing it"), err)
}

type usagePatch struct {
	Metadata struct {
		// ResourceVersion makes the merge patch conditional: it fails
		// with 409 Conflict if the key changed since it was read.
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Status struct {
		LastUsedAt *metav1.Time        `json:"lastUsedAt,omitempty"`
		Usage      *keysv1.KeyUsage    `json:"usage"`
		Quota      *keysv1.QuotaStatus `json:"quota,omitempty"`
	} `json:"status"`
}

// usagePatchOf adds d to the key's usage as read, at now: the totals, the
// current hour's entry, and lastUsedAt when d's is later. Hours older than
// a day are dropped.
func usagePatchOf(key *keysv1.ApiKey, d delta, now time.Time) usagePatch {
	var p usagePatch
	p.Metadata.ResourceVersion = key.ResourceVersion
	u := key.Status.Usage.DeepCopy()
	if u == nil {
		u = &keysv1.KeyUsage{Since: &metav1.Time{Time: now.UTC().Truncate(time.Second)}}
	}
	u.Allowed += d.allowed
	u.Refused += d.refused
	hour := metav1.NewTime(now.UTC().Truncate(time.Hour))
	from := hour.Add(-23 * time.Hour)
	u.Hourly = slices.DeleteFunc(u.Hourly, func(h keysv1.HourlyUsage) bool { return h.Hour.Time.Before(from) })
	i := slices.IndexFunc(u.Hourly, func(h keysv1.HourlyUsage) bool { return h.Hour.Equal(&hour) })
	if i < 0 {
		u.Hourly = append(u.Hourly, keysv1.HourlyUsage{Hour: hour})
		slices.SortFunc(u.Hourly, func(a, b keysv1.HourlyUsage) int { return a.Hour.Compare(b.Hour.Time) })
		i = slices.IndexFunc(u.Hourly, func(h keysv1.HourlyUsage) bool { return h.Hour.Equal(&hour) })
	}
	u.Hourly[i].Allowed += d.allowed
	u.Hourly[i].Refused += d.refused
	p.Status.Usage = u
	p.Status.Quota = quotaStatusOf(key.Spec.Quota, key.Status.Quota, d.quota)
	if d.last != 0 {
		at := metav1.NewTime(time.Unix(0, d.last).UTC().Truncate(time.Second))
		if key.Status.LastUsedAt == nil || key.Status.LastUsedAt.Before(&at) {
			p.Status.LastUsedAt = &at
		}
	}
	return p
}

// quotaStatusOf is status.quota (now: status) after this replica's count
// c, or nil when the status already holds as new a count (another
// replica's, or the same) under the same limit.
func quotaStatusOf(spec *keysv1.QuotaSpec, status *keysv1.QuotaStatus, c *quotaCount) *keysv1.QuotaStatus {
	if c == nil || spec == nil {
		return nil
	}
	st := c.st
	if cur, ok := quota.SeedOf(status, &c.q); ok && status.Limit == st.Limit && !st.Newer(&cur) {
		return nil
	}
	out := &keysv1.QuotaStatus{Limit: st.Limit, Used: st.Used, Remaining: st.Remaining(),
		CountedAt: &metav1.Time{Time: time.Unix(0, st.At).UTC().Truncate(time.Second)}}
	if !st.NextRefill.IsZero() {
		out.NextRefillAt = &metav1.Time{Time: st.NextRefill.UTC()}
	}
	return out
}
