package webhook_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/webhook/certs"

	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The suite serves the real webhooks from a manager, registered with a
// real kube-apiserver through the generated config/webhook manifests. The
// server uses certificates the operator generated itself: the rotator
// writes its CA into the configurations envtest installed, so every
// request of the suite also proves that path.

const (
	defaultLifetime = 365 * 24 * time.Hour
	clusterMax      = 2 * 365 * 24 * time.Hour
	mutatingName    = "mutating-webhook-configuration"
	validatingName  = "validating-webhook-configuration"
)

var (
	env      *devenv.Env
	k8s      client.Client // direct, uncached, records warnings
	warnings = &warningRecorder{}
	keyCache cache.Cache // the manager's cache, which the webhooks read keys from
	rotator  *certs.Rotator
	now      time.Time // the webhooks' clock, fixed
	cancel   context.CancelFunc
)

func TestWebhooks(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "Admission webhook suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	env, err = devenv.Start(devenv.Options{Webhooks: true})
	Expect(err).NotTo(HaveOccurred())
	cfg := env.Config

	warned := rest.CopyConfig(cfg)
	warned.WarningHandler = warnings
	k8s, err = client.New(warned, client.Options{Scheme: operator.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	startManager(cfg)
})

// startManager builds the webhook as `apikey-operator controller` does,
// on envtest's webhook address, with certificates it generates itself
// and a fixed clock.
func startManager(cfg *rest.Config) {
	hooks := env.Webhook()
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Keys.DefaultLifetime = defaultLifetime
	o.Webhook.Host, o.Webhook.Port = hooks.Host, hooks.Port
	o.Webhook.CertHosts = []string{hooks.Host}
	o.Webhook.MutatingConfig, o.Webhook.ValidatingConfig = mutatingName, validatingName
	o.Webhook.MaxKeyLifetime = clusterMax
	now = time.Now().Truncate(time.Second)
	o.Hooks.Clock = clocktesting.NewFakePassiveClock(now)
	c := operator.Components{Webhook: true}
	Expect(o.Validate(c)).To(Succeed())
	var ctx context.Context
	ctx, cancel = context.WithCancel(context.Background())
	mgr, err := operator.Build(ctx, cfg, o, c)
	Expect(err).NotTo(HaveOccurred())
	rotator = mgr.Rotator
	keyCache = mgr.GetCache()
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	// Ready once the CA is written and the server answers.
	Eventually(func() error { return rotator.Ready(nil) }).WithTimeout(30 * time.Second).Should(Succeed())
	Eventually(func() error { return mgr.GetWebhookServer().StartedChecker()(nil) }).WithTimeout(30 * time.Second).Should(Succeed())
}

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// warningRecorder keeps the warnings of API responses.
type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

// take returns the warnings seen since the last take.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := w.seen
	w.seen = nil
	return seen
}
