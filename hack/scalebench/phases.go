package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// setupWorkers is the parallelism of the benchmark's own, untimed writes.
const setupWorkers = 16

// parallel runs f(0..n-1) on w goroutines and returns the first error.
func parallel(n, w int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, w)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (b *bench) createNamespaces(ctx context.Context, names ...string) error {
	return parallel(len(names), setupWorkers, func(i int) error {
		return b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i]}})
	})
}

func nsName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

// rawLimit writes, per key, what the controller writes: the Secret with
// the token (labelled, owned by the key) and the key's status, as one
// merge patch. The keys exist before the clock starts, as they do for the
// controller; the client has no rate limit. It runs with the controller's
// worker count, then with each count of --raw-sweep on fewer keys, to show
// where the server saturates.
func (b *bench) rawLimit(ctx context.Context) error {
	names := rawNamespaces()
	if err := b.createNamespaces(ctx, names...); err != nil {
		return err
	}
	// The controller phase watches keys become Ready; the same watch runs
	// here, so that both phases carry its load.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if _, err := b.watchReady(wctx, b.rawKeys); err != nil {
		return err
	}
	points := append([]int{b.workers}, b.sweep...)
	for round, w := range points {
		n := b.rawKeys
		if round > 0 {
			n = b.rawKeys / 2
		}
		rate, err := b.rawRun(ctx, names, round, w, n)
		if err != nil {
			return err
		}
		if round == 0 {
			b.r.rawRate = rate
		}
		b.r.rawSweep = append(b.r.rawSweep, rawPoint{workers: w, keys: n, rate: rate})
	}
	stopWatch()
	return b.deleteRaw(ctx, names)
}

func rawNamespaces() []string {
	var names []string
	for i := range 20 {
		names = append(names, nsName("raw", i))
	}
	return names
}

// rawAgain measures the raw limit once more after the controller phases,
// with the controller stopped: the machine's load drifts, and the ratio
// is taken against the mean of both runs.
func (b *bench) rawAgain(ctx context.Context) error {
	names := rawNamespaces()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if _, err := b.watchReady(wctx, b.rawKeys); err != nil {
		return err
	}
	rate, err := b.rawRun(ctx, names, len(b.sweep)+1, b.workers, b.rawKeys)
	if err != nil {
		return err
	}
	b.r.rawRateAfter = rate
	stopWatch()
	return b.deleteRaw(ctx, names)
}

// deleteRaw removes the raw objects. No garbage collector runs here (no
// kube-controller-manager): they are deleted explicitly so they do not
// weigh on what follows.
func (b *bench) deleteRaw(ctx context.Context, names []string) error {
	for _, ns := range names {
		if err := b.c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns)); err != nil {
			return err
		}
		if err := b.c.DeleteAllOf(ctx, &keysv1.ApiKey{}, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	return nil
}

// rawRun times n keys written by w workers and returns keys/s.
func (b *bench) rawRun(ctx context.Context, names []string, round, w, n int) (float64, error) {
	keys := make([]*keysv1.ApiKey, n)
	if err := parallel(n, setupWorkers, func(i int) error {
		keys[i] = &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: names[i%len(names)], Name: fmt.Sprintf("key-%d-%04d", round, i)}}
		return b.c.Create(ctx, keys[i])
	}); err != nil {
		return 0, err
	}
	before, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(n, w, func(i int) error {
		key := keys[i]
		tok, err := token.Mint(token.DefaultPrefix)
		if err != nil {
			return err
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels:          map[string]string{keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: key.Name},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(key, keysv1.GroupVersion.WithKind("ApiKey"))}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{keysv1.SecretKeyField: []byte(tok)},
		}
		if err := b.c.Create(ctx, secret); err != nil {
			return fmt.Errorf("create secret: %w", err)
		}
		original := key.DeepCopy()
		setIssued(key, tok)
		return b.c.Status().Patch(ctx, key, client.MergeFrom(original))
	})
	if err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	after, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return 0, err
	}
	writes := total(diff(after, before))
	if round == 0 {
		b.r.rawSeconds, b.r.rawWrites = secs, writes
	}
	logf("raw, %d workers: %d keys (Secret create + status patch) in %.1fs: %.0f keys/s, %.0f writes/s", w, n, secs, float64(n)/secs, writes/secs)
	return float64(n) / secs, nil
}

// setIssued fills the status as the controller does for a new key.
func setIssued(key *keysv1.ApiKey, tok string) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	exp := metav1.NewTime(now.Add(365 * 24 * time.Hour))
	key.Status.Hash = token.Hash(tok)
	key.Status.KeyPrefix = token.DisplayPrefix(tok)
	key.Status.IssuedAt = &now
	key.Status.ExpiresAt = &exp
	key.Status.SecretName = key.Name
	key.Status.ObservedGeneration = key.Generation
	meta.SetStatusCondition(&key.Status.Conditions, metav1.Condition{
		Type: keysv1.ConditionReady, Status: metav1.ConditionTrue, Reason: keysv1.ReasonIssued, ObservedGeneration: key.Generation,
		Message: fmt.Sprintf("The key verifies; its token is in Secret %q under data key %q", key.Name, keysv1.SecretKeyField)})
}

// idle measures the controller's and the API server's RSS with no keys:
// the fixed cost the per-key figures are taken against.
func (b *bench) idle(ctx context.Context) error {
	args, _, err := b.apiserverArgs()
	if err != nil {
		return err
	}
	for _, proc := range []struct {
		args          []string
		rss, anon, ws *float64
		what          string
	}{
		{b.controllerArgs(), &b.r.idleController, &b.r.idleControllerAnon, &b.r.wsIdleController, "controller"},
		{args, &b.r.idleAPIServer, &b.r.idleAPIServerAnon, &b.r.wsIdleAPIServer, "API server"},
	} {
		p, err := startProc(b.log, b.operator, proc.args...)
		if err != nil {
			return err
		}
		if _, err := b.waitMetrics(ctx, p); err != nil {
			p.stop()
			return err
		}
		time.Sleep(5 * time.Second)
		*proc.rss, err = p.rssMedian(3)
		*proc.anon, _ = p.rssSplit()
		*proc.ws = p.workingSet()
		p.saveProfile(ctx, strings.ReplaceAll(proc.what, " ", "")+"-0")
		p.stop()
		if err != nil {
			return err
		}
		logf("%s RSS with no keys: %.1f MiB (anon %.1f MiB); working set %.1f MiB", proc.what, *proc.rss, *proc.anon, *proc.ws)
	}
	return nil
}

// waitMetrics waits until the process serves its metrics: its caches
// have synced and it is running.
func (b *bench) waitMetrics(ctx context.Context, p *operatorProc) (time.Duration, error) {
	url := p.metricsURL()
	for {
		if _, err := scrape(ctx, b.scraper, url, "go_goroutines"); err == nil {
			return time.Since(p.started), nil
		}
		if p.exited() {
			return 0, fmt.Errorf("the process exited")
		}
		if time.Since(p.started) > 2*time.Minute {
			return 0, fmt.Errorf("no metrics 2 minutes after start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminKey is the key the REST list is called with: the first key of the
// first namespace, with every permission in its namespace.
const adminKey = "key-0000"

// createKeys creates the keys with no controller running, so that all of
// them are there when it starts.
func (b *bench) createKeys(ctx context.Context) error {
	var names []string
	for i := range b.namespaces {
		names = append(names, nsName("scale", i))
	}
	if err := b.createNamespaces(ctx, names...); err != nil {
		return err
	}
	per := b.keys / b.namespaces
	start := time.Now()
	err := parallel(b.keys, setupWorkers, func(i int) error {
		key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: names[i/per], Name: fmt.Sprintf("key-%04d", i%per)}}
		if key.Name == adminKey {
			key.Spec.Permissions = []keysv1.Permission{"*"}
		}
		return b.c.Create(ctx, key)
	})
	logf("created %d ApiKeys in %d namespaces in %.1fs", b.keys, b.namespaces, time.Since(start).Seconds())
	if err != nil {
		return err
	}
	before, err := b.etcdStored(ctx, etcdKeys)
	b.r.keysBefore = before[etcdKeys]
	return err
}

// readyWatch counts Ready ApiKeys from a watch of its own.
type readyWatch struct {
	mu         sync.Mutex
	ready      map[string]bool
	first, all time.Time
	want       int
}

func (b *bench) watchReady(ctx context.Context, want int) (*readyWatch, error) {
	c, err := cache.New(b.env.Config, cache.Options{Scheme: operator.Scheme(), DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &keysv1.ApiKey{})
	if err != nil {
		return nil, err
	}
	w := &readyWatch{ready: map[string]bool{}, want: want}
	note := func(obj any) {
		k, ok := obj.(*keysv1.ApiKey)
		if !ok {
			return
		}
		id := k.Namespace + "/" + k.Name
		r := meta.IsStatusConditionTrue(k.Status.Conditions, keysv1.ConditionReady)
		w.mu.Lock()
		defer w.mu.Unlock()
		if r && !w.ready[id] {
			w.ready[id] = true
			if len(w.ready) == 1 {
				w.first = time.Now()
			}
			if len(w.ready) == w.want {
				w.all = time.Now()
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: note, UpdateFunc: func(_, n any) { note(n) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("ready watch did not sync")
	}
	return w, nil
}

func (w *readyWatch) count() (int, time.Time, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ready), w.first, w.all
}

func (b *bench) controllerArgs() []string {
	// The admission webhook server runs as in the chart's controller pod
	// (its indexes are part of the memory), on a port of its own and
	// with generated certificates; kube-apiserver does not call it, so
	// the keys the bench creates are not defaulted.
	args := []string{"controller", "--kubeconfig", b.env.Kubeconfig,
		"--webhook-port", b.webhookPort, "--webhook-cert-hosts", "localhost",
		"--mutating-webhook-configuration", "", "--validating-webhook-configuration", "",
		"--health-probe-bind-address", "0", "--max-concurrent-reconciles", strconv.Itoa(b.workers)}
	if b.qps > 0 {
		args = append(args, "--kube-api-qps", strconv.FormatFloat(b.qps, 'f', -1, 64))
	}
	if b.burst > 0 {
		args = append(args, "--kube-api-burst", strconv.Itoa(b.burst))
	}
	return append(args, b.extra...)
}

// controller runs phases 2 to 4 against one controller process, then
// restarts it for a full resync.
func (b *bench) controller(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := b.watchReady(wctx, b.keys)
	if err != nil {
		return err
	}
	before, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return err
	}
	p, err := startProc(b.log, b.operator, b.controllerArgs()...)
	if err != nil {
		return err
	}
	defer p.stop()
	// 15 minutes, or 20 keys/s for larger runs (100,000 keys: 83 minutes).
	limit := max(15*time.Minute, time.Duration(b.keys/20)*time.Second)
	deadline := time.Now().Add(limit)
	lastLog := time.Now()
	for {
		n, first, all := w.count()
		if n == b.keys {
			b.r.readySeconds = all.Sub(p.started).Seconds()
			b.r.firstReadySeconds = first.Sub(p.started).Seconds()
			break
		}
		if p.exited() {
			return fmt.Errorf("the controller exited")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d keys Ready after %s", n, b.keys, limit)
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("  %d of %d Ready", n, b.keys)
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopWatch()
	b.r.readyRate = float64(b.keys) / b.r.readySeconds
	logf("all %d keys Ready %.1fs after the controller started (first at %.1fs): %.0f keys/s, %.2f x the first raw rate",
		b.keys, b.r.readySeconds, b.r.firstReadySeconds, b.r.readyRate, b.r.readyRate/b.r.rawRate)

	// Let the last writes and events land before counting.
	time.Sleep(5 * time.Second)
	after, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return err
	}
	b.r.convergeWrites = diff(after, before)
	logf("writes while converging: %v", b.r.convergeWrites)
	if b.r.etcdAfter, err = b.etcdStored(ctx, etcdKeys, etcdSecrets, etcdEvents); err != nil {
		return err
	}
	logf("etcd: %v (keys before the controller: %v)", b.r.etcdAfter, b.r.keysBefore)

	logf("steady state: counting writes for %s", b.steady)
	time.Sleep(b.steady)
	end, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return err
	}
	b.r.steadyWrites = diff(end, after)
	logf("steady writes: %v", b.r.steadyWrites)
	if b.r.rss10k, err = p.rssMedian(5); err != nil {
		return err
	}
	b.r.heap10k = b.heapMiB(ctx, p)
	b.r.anon10k, b.r.file10k = p.rssSplit()
	b.r.ws10k = p.workingSet()
	p.saveProfile(ctx, fmt.Sprintf("controller-%d", b.keys))
	logf("controller RSS with %d keys: %.1f MiB (anon %.1f, file %.1f; heap in use %.1f MiB); working set %.1f MiB", b.keys, b.r.rss10k, b.r.anon10k, b.r.file10k, b.r.heap10k, b.r.ws10k)

	if err := b.unrelatedSecrets(ctx); err != nil {
		return err
	}
	beforeIdle, _ := writeCounts(ctx, b.kube, b.kubeHost)
	time.Sleep(10 * time.Second)
	if b.r.rssUnrelated, err = p.rssMedian(5); err != nil {
		return err
	}
	b.r.heapUnrelated = b.heapMiB(ctx, p)
	afterIdle, _ := writeCounts(ctx, b.kube, b.kubeHost)
	logf("controller RSS after %d unrelated Secrets: %.1f MiB (heap in use %.1f MiB); writes meanwhile: %v",
		b.keys, b.r.rssUnrelated, b.r.heapUnrelated, diff(afterIdle, beforeIdle))
	p.stop()
	return b.resync(ctx)
}

func (b *bench) heapMiB(ctx context.Context, p *operatorProc) float64 {
	v, err := scrape(ctx, b.scraper, p.metricsURL(), "go_memstats_heap_inuse_bytes")
	if err != nil {
		return 0
	}
	return v / (1 << 20)
}

// unrelatedSecrets adds Secrets the operator does not own: 1 KiB each,
// unlabelled, spread over the keys' namespaces.
func (b *bench) unrelatedSecrets(ctx context.Context) error {
	data := make([]byte, 1024)
	for i := range data {
		data[i] = 'x'
	}
	start := time.Now()
	err := parallel(b.keys, setupWorkers, func(i int) error {
		return b.c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName("scale", i%b.namespaces), Name: fmt.Sprintf("unrelated-%05d", i)},
			Data:       map[string][]byte{"data": data},
		})
	})
	logf("created %d unrelated Secrets in %.1fs", b.keys, time.Since(start).Seconds())
	return err
}

// resync restarts the controller: every key is reconciled once, all of
// them converged. It measures the time from process start until the
// controller has reconciled every key, and the writes meanwhile.
func (b *bench) resync(ctx context.Context) error {
	before, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return err
	}
	p, err := startProc(b.log, b.operator, b.controllerArgs()...)
	if err != nil {
		return err
	}
	defer p.stop()
	url := p.metricsURL()
	var first time.Time
	for {
		n, err := scrape(ctx, b.scraper, url, "controller_runtime_reconcile_total", `controller="apikey"`)
		if err == nil && n > 0 && first.IsZero() {
			first = time.Now()
		}
		if err == nil && n >= float64(b.keys) {
			break
		}
		if p.exited() {
			return fmt.Errorf("the controller exited")
		}
		if time.Since(p.started) > 10*time.Minute {
			return fmt.Errorf("resync not done after 10 minutes (%v reconciles)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.r.resyncSeconds = time.Since(p.started).Seconds()
	b.r.resyncReconcileSeconds = time.Since(first).Seconds()
	time.Sleep(3 * time.Second)
	after, err := writeCounts(ctx, b.kube, b.kubeHost)
	if err != nil {
		return err
	}
	b.r.resyncWrites = diff(after, before)
	if b.r.rssResync, err = p.rssMedian(5); err != nil {
		return err
	}
	logf("resync: %d keys reconciled %.1fs after start (%.1fs from the first reconcile); writes %v; RSS %.1f MiB",
		b.keys, b.r.resyncSeconds, b.r.resyncReconcileSeconds, b.r.resyncWrites, b.r.rssResync)
	p.stop()
	for _, v := range b.gcVariants {
		rss, secs, err := b.freshRSS(ctx, strings.Fields(v))
		if err != nil {
			return err
		}
		b.r.gcVariants = append(b.r.gcVariants, gcVariant{env: v, rss: rss, resync: secs})
		logf("fresh controller with %s: RSS %.1f MiB, resync %.1fs", v, rss, secs)
	}
	return nil
}

// freshRSS starts a controller with env set, waits until it has
// reconciled every key, and returns its RSS (median of 5) and that time.
func (b *bench) freshRSS(ctx context.Context, env []string) (float64, float64, error) {
	p, err := startProcEnv(b.log, env, b.operator, b.controllerArgs()...)
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	url := p.metricsURL()
	for {
		n, err := scrape(ctx, b.scraper, url, "controller_runtime_reconcile_total", `controller="apikey"`)
		if err == nil && n >= float64(b.keys) {
			break
		}
		if p.exited() || time.Since(p.started) > 10*time.Minute {
			return 0, 0, fmt.Errorf("controller with %v: no full resync", env)
		}
		time.Sleep(50 * time.Millisecond)
	}
	secs := time.Since(p.started).Seconds()
	time.Sleep(3 * time.Second)
	rss, err := p.rssMedian(5)
	return rss, secs, err
}

// apiserverArgs run `apikey-operator apiserver` on free ports.
func (b *bench) apiserverArgs() (args []string, secure string, err error) {
	secure, err = freeAddr()
	if err != nil {
		return nil, "", err
	}
	verifyAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := cutLast(secure, ":")
	return []string{"apiserver", "--kubeconfig", b.env.Kubeconfig, "--health-probe-bind-address", "0",
		"--bind-address", "127.0.0.1", "--secure-port", port,
		"--tls-cert-file", b.env.Certs.ServingCert, "--tls-private-key-file", b.env.Certs.ServingKey,
		"--verify-bind-address", verifyAddr, "--ext-authz-bind-address", "0"}, secure, nil
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// startup starts the API server three times and measures process start
// to apikey_keys (the verify index) counting every key; the last process
// stays up for the REST list.
func (b *bench) startup(ctx context.Context) error {
	var times []float64
	for run := range 3 {
		args, secure, err := b.apiserverArgs()
		if err != nil {
			return err
		}
		p, err := startProc(b.log, b.operator, args...)
		if err != nil {
			return err
		}
		d, err := b.waitIndexed(ctx, p, b.keys)
		if err != nil {
			p.stop()
			return err
		}
		times = append(times, d.Seconds())
		logf("  API server run %d: %d keys in the verify index %.2fs after process start", run+1, b.keys, d.Seconds())
		if run < 2 {
			p.stop()
			continue
		}
		b.apiserver, b.secure = p, secure
		if b.r.rssAPIServer, err = p.rssMedian(3); err != nil {
			return err
		}
		b.r.anonAPIServer, b.r.fileAPIServer = p.rssSplit()
		b.r.wsAPIServer = p.workingSet()
		logf("API server with %d keys: RSS %.1f MiB (anon %.1f, file %.1f); working set %.1f MiB", b.keys, b.r.rssAPIServer, b.r.anonAPIServer, b.r.fileAPIServer, b.r.wsAPIServer)
		p.saveProfile(ctx, fmt.Sprintf("APIserver-%d", b.keys))
	}
	slices.Sort(times)
	b.r.startupSeconds = times
	return nil
}

// waitIndexed polls apikey_keys until the index holds n keys.
func (b *bench) waitIndexed(ctx context.Context, p *operatorProc, n int) (time.Duration, error) {
	url := p.metricsURL()
	for {
		v, err := scrape(ctx, b.scraper, url, "apikey_keys")
		if err == nil && v >= float64(n) {
			return time.Since(p.started), nil
		}
		if p.exited() {
			return 0, fmt.Errorf("the API server exited")
		}
		if time.Since(p.started) > 5*time.Minute {
			return 0, fmt.Errorf("the verify index holds %v of %d keys after 5 minutes", v, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
