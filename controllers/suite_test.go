package controllers_test

import (
	"context"
	"sync/atomic"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/controllers"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The suite runs the ApiKey controller in a manager against a real
// kube-apiserver and etcd (bin/, built by hack/controlplane.sh).

var (
	cfg        *rest.Config
	k8s        client.Client // direct, uncached: what the tests see
	env        *devenv.Env
	reconciler *controllers.ApiKeyReconciler
	writes     atomic.Int64 // API writes the controller made
	logs       = &testkit.SyncBuffer{}
	cancel     context.CancelFunc
)

func TestControllers(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "ApiKey controller suite")
}

var _ = BeforeSuite(func() {
	// The controller logs at its highest verbosity into a buffer that the
	// leak test searches for tokens.
	logf := zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-127)), zap.UseDevMode(true))
	ctrl.SetLogger(logf)

	var err error
	env, err = devenv.Start(devenv.Options{})
	Expect(err).NotTo(HaveOccurred())
	cfg = env.Config

	k8s, err = client.New(cfg, client.Options{Scheme: operator.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	// The controller as `apikey-operator controller --disable-webhooks`
	// builds it, with a client that counts its writes.
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Webhook.Disable = true
	o.Keys.TokenPrefix = "ak"
	o.Controller.MaxConcurrentReconciles = 2
	o.Hooks.Manager = func(mo *ctrl.Options) {
		mo.NewClient = func(c *rest.Config, o client.Options) (client.Client, error) {
			inner, err := client.New(c, o)
			return &countingClient{Client: inner, writes: &writes}, err
		}
	}
	Expect(o.Validate(operator.ControllerProcess)).To(Succeed())
	var ctx context.Context
	ctx, cancel = context.WithCancel(context.Background())
	mgr, err := operator.Build(ctx, cfg, o, operator.ControllerProcess)
	Expect(err).NotTo(HaveOccurred())
	reconciler = mgr.Reconciler
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if k8s != nil {
		leakCheck(context.Background())
	}
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// countingClient counts the writes made through it, status included.
type countingClient struct {
	client.Client
	writes *atomic.Int64
}

func (c *countingClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, o, opts...)
}

func (c *countingClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, o, opts...)
}

func (c *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, o, p, opts...)
}

func (c *countingClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	c.writes.Add(1)
	return c.Client.Delete(ctx, o, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), writes: c.writes}
}

type countingStatus struct {
	client.SubResourceWriter
	writes *atomic.Int64
}

func (s *countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.writes.Add(1)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.writes.Add(1)
	return s.SubResourceWriter.Patch(ctx, o, p, opts...)
}
