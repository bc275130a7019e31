package hardening_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/operator"
)

// A write the fault injector can stop at.
type writeKind int

const (
	secretCreate writeKind = iota
	secretUpdate
	statusPatch
)

// errCrash is what a faulted write returns; the manager is being stopped
// at that instant, as if the process had died there.
var errCrash = errors.New("injected crash")

// faults decide which writes fail. A rule fires once: it fails the write
// (before or after it reached kube-apiserver) and calls crash. From then
// on every write fails before it is sent: a dead process writes nothing,
// and the manager's shutdown is not instant (a requeued key could
// otherwise be retried, and repaired, before the "crash" takes effect).
type faults struct {
	mu    sync.Mutex
	rules []*rule
	crash func()
	dead  bool // under mu
}

type rule struct {
	kind  writeKind
	after bool // the write reached kube-apiserver; the answer is lost
	fired bool // under faults.mu
}

func (f *faults) check(kind writeKind, after bool) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead && !after {
		return true
	}
	for _, r := range f.rules {
		if r.kind == kind && r.after == after && !r.fired {
			r.fired = true
			f.dead = true
			if f.crash != nil {
				f.crash()
			}
			return true
		}
	}
	return false
}

func (f *faults) fired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if !r.fired {
			return false
		}
	}
	return true
}

// stats count what an in-process controller did.
type stats struct {
	reconciles, writes, statusWrites atomic.Int64
}

// faultyClient counts writes and fails them where faults say.
type faultyClient struct {
	client.Client
	f *faults
	s *stats
}

// Get counts reconciles: each one starts by reading its ApiKey.
func (c *faultyClient) Get(ctx context.Context, k client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	if _, ok := o.(*keysv1.ApiKey); ok {
		c.s.reconciles.Add(1)
	}
	return c.Client.Get(ctx, k, o, opts...)
}

func (c *faultyClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	c.s.writes.Add(1)
	_, secret := o.(*corev1.Secret)
	if secret && c.f.check(secretCreate, false) {
		return errCrash
	}
	if err := c.Client.Create(ctx, o, opts...); err != nil {
		return err
	}
	if secret && c.f.check(secretCreate, true) {
		return errCrash
	}
	return nil
}

func (c *faultyClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	c.s.writes.Add(1)
	_, secret := o.(*corev1.Secret)
	if secret && c.f.check(secretUpdate, false) {
		return errCrash
	}
	if err := c.Client.Update(ctx, o, opts...); err != nil {
		return err
	}
	if secret && c.f.check(secretUpdate, true) {
		return errCrash
	}
	return nil
}

func (c *faultyClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.s.writes.Add(1)
	return c.Client.Patch(ctx, o, p, opts...)
}

func (c *faultyClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	c.s.writes.Add(1)
	return c.Client.Delete(ctx, o, opts...)
}

func (c *faultyClient) Status() client.SubResourceWriter {
	return &faultyStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type faultyStatus struct {
	client.SubResourceWriter
	c *faultyClient
}

func (s *faultyStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.s.writes.Add(1)
	s.c.s.statusWrites.Add(1)
	if s.c.f.check(statusPatch, false) {
		return errCrash
	}
	if err := s.SubResourceWriter.Patch(ctx, o, p, opts...); err != nil {
		return err
	}
	if s.c.f.check(statusPatch, true) {
		return errCrash
	}
	return nil
}

func (s *faultyStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.s.writes.Add(1)
	s.c.s.statusWrites.Add(1)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}

// runningController is an in-process ApiKey controller serving one
// namespace, with its own manager, cache and client, like a fresh
// operator process.
type runningController struct {
	cancel context.CancelFunc
	done   chan struct{}
	stats  *stats
}

// startController starts the real ApiKeyReconciler in a manager of its
// own, writing through a client that injects f's faults. A fault calls
// stop: the manager dies at that instant, as on SIGKILL.
func startController(cfg *rest.Config, ns string, f *faults, workers int) *runningController {
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningController{cancel: cancel, done: make(chan struct{}), stats: &stats{}}
	if f != nil {
		f.crash = cancel
	}
	// The controller as `apikey-operator controller --disable-webhooks
	// --watch-namespaces=<ns>` builds it, with a client that injects faults.
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Webhook.Disable = true
	o.Keys.WatchNamespaces = []string{ns}
	o.Keys.TokenPrefix = "ak"
	o.Controller.MaxConcurrentReconciles = workers
	o.Hooks.Manager = func(mo *ctrl.Options) {
		skip := true
		mo.Controller = config.Controller{SkipNameValidation: &skip}
		mo.NewClient = func(c *rest.Config, o client.Options) (client.Client, error) {
			inner, err := client.New(c, o)
			return &faultyClient{Client: inner, f: f, s: rc.stats}, err
		}
	}
	Expect(o.Validate(operator.ControllerProcess)).To(Succeed())
	mgr, err := operator.Build(ctx, cfg, o, operator.ControllerProcess)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		defer close(rc.done)
		_ = mgr.Start(ctx)
	}()
	return rc
}

// stop stops the manager and waits until it has.
func (rc *runningController) stop() {
	rc.cancel()
	Eventually(rc.done).WithTimeout(60 * time.Second).Should(BeClosed())
}

// keyState is one key as the tests judge it: the tokens of the Secrets
// labelled with its name, and its status.
type keyState struct {
	key     keysv1.ApiKey
	secrets []corev1.Secret
}

func keyStates(ctx context.Context, ns string) map[string]*keyState {
	keys := &keysv1.ApiKeyList{}
	ExpectWithOffset(1, k8s.List(ctx, keys, client.InNamespace(ns))).To(Succeed())
	out := map[string]*keyState{}
	for _, k := range keys.Items {
		out[k.Name] = &keyState{key: k}
	}
	secrets := &corev1.SecretList{}
	ExpectWithOffset(1, k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
	for _, s := range secrets.Items {
		name := s.Labels[keysv1.ApiKeyLabel]
		if st, ok := out[name]; ok {
			st.secrets = append(st.secrets, s)
		} else {
			out["orphan:"+s.Name] = &keyState{secrets: []corev1.Secret{s}}
		}
	}
	return out
}

// tokenOf is the token in a key's one Secret.
func (st *keyState) token() string {
	if len(st.secrets) != 1 {
		return ""
	}
	return string(st.secrets[0].Data[keysv1.SecretKeyField])
}

// expectConverged asserts that every key in ns has exactly one Secret,
// owned by it, and that status.hash is the hash of that Secret's token.
func expectConverged(g Gomega, ctx context.Context, ns string, want int) map[string]*keyState {
	states := keyStates(ctx, ns)
	g.Expect(states).To(HaveLen(want))
	for name, st := range states {
		g.Expect(name).NotTo(HavePrefix("orphan:"), "a Secret with no key")
		g.Expect(st.secrets).To(HaveLen(1), name)
		s := st.secrets[0]
		g.Expect(s.Labels).To(HaveKeyWithValue(keysv1.ManagedByLabel, keysv1.ManagedByValue), name)
		g.Expect(s.OwnerReferences).To(ContainElement(HaveField("UID", st.key.UID)), name)
		g.Expect(st.key.Status.Hash).To(Equal(hashOf(st.token())), name)
		g.Expect(st.key.Status.ObservedGeneration).To(Equal(st.key.Generation), name)
	}
	return states
}
