package verify

import (
	"context"
	"encoding/json"
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
)

// usage is when one key last verified. The verify path only stores a time
// and, once per flush, queues the key; the flusher writes status.
type usage struct {
	id      types.NamespacedName
	last    atomic.Int64 // Unix nanoseconds of the last valid verification
	queued  atomic.Bool
	flushed int64 // the last time written to status; the flusher's alone
	// counters are the namespace's verdict counters, resolved on first use.
	counters atomic.Pointer[[numCodes]prometheus.Counter]
}

// usageTracker holds the keys used since the last flush.
type usageTracker struct {
	mu      sync.Mutex
	pending []*usage
}

// touch records a use. It allocates nothing once the pending list has
// grown to the number of keys in use, and stores at most once a second
// per key so that busy keys do not bounce one cache line between cores.
func (t *usageTracker) touch(u *usage, now int64) {
	if now-u.last.Load() < int64(time.Second) {
		return
	}
	u.last.Store(now)
	if u.queued.Load() || !u.queued.CompareAndSwap(false, true) {
		return
	}
	t.mu.Lock()
	t.pending = append(t.pending, u)
	t.mu.Unlock()
}

// drain takes the queued keys.
func (t *usageTracker) drain() []*usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.pending
	t.pending = make([]*usage, 0, cap(out))
	return out
}

// flusher writes status.lastUsedAt for the keys used since its last run,
// once per interval (at least a minute), a few writes at a time: each is
// a merge patch of the status subresource holding only lastUsedAt, so it
// cannot undo what the controller writes.
type flusher struct {
	tracker  *usageTracker
	client   client.Client
	interval time.Duration
	workers  int
	log      logr.Logger
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
}

func (f *flusher) write(ctx context.Context, u *usage) {
	// Unqueue before reading the time: a use racing with this write queues
	// the key again for the next flush instead of being lost.
	u.queued.Store(false)
	last := u.last.Load()
	if last <= u.flushed {
		return
	}
	err := patchLastUsed(ctx, f.client, u.id, time.Unix(0, last))
	switch {
	case err == nil:
		u.flushed = last
	case apierrors.IsNotFound(err):
		// The key is gone; nothing to record.
	default:
		f.log.Error(err, "record lastUsedAt", "apikey", u.id.String())
		f.tracker.requeue(u)
	}
}

func (t *usageTracker) requeue(u *usage) {
	if u.queued.CompareAndSwap(false, true) {
		t.mu.Lock()
		t.pending = append(t.pending, u)
		t.mu.Unlock()
	}
}

type lastUsedPatch struct {
	Status struct {
		LastUsedAt metav1.Time `json:"lastUsedAt"`
	} `json:"status"`
}

func patchLastUsed(ctx context.Context, c client.Client, id types.NamespacedName, at time.Time) error {
	var p lastUsedPatch
	p.Status.LastUsedAt = metav1.NewTime(at.UTC().Truncate(time.Second))
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name}}
	return c.Status().Patch(ctx, key, client.RawPatch(types.MergePatchType, body))
}
