package verify_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The suite runs the ApiKey controller and the verify server in one
// manager, built as every command builds it (internal/operator), against
// a real kube-apiserver and etcd (bin/, built by hack/controlplane.sh),
// and real NGINX and Caddy in front of it.

var (
	k8s        client.Client // direct, uncached: what the tests see
	env        *devenv.Env
	verifyAddr string // host:port of the verify listener
	registry   = prometheus.NewRegistry()
	suiteLogs  = &testkit.SyncBuffer{}
	stopSuite  context.CancelFunc
)

func TestEnvtest(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "verify suite (envtest, NGINX, Caddy)")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(suiteLogs), zap.Level(zapcore.Level(-127)), zap.UseDevMode(true)))
	var err error
	env, err = devenv.Start(devenv.Options{})
	Expect(err).NotTo(HaveOccurred())
	cfg := env.Config
	k8s, err = client.New(cfg, client.Options{Scheme: operator.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	port, err := devenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	verifyAddr = fmt.Sprintf("127.0.0.1:%d", port)
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Keys.TokenPrefix = "ak"
	o.Controller.MaxConcurrentReconciles = 2
	o.Verify.BindAddress = verifyAddr
	o.Verify.TrustedProxies = []string{"127.0.0.1"}
	o.Verify.LastUsedFlushInterval = 300 * time.Millisecond // production minimum is 1m, so no Validate
	o.Hooks.Registerer = registry
	c := operator.Components{Controller: true, Verify: true}

	var ctx context.Context
	ctx, stopSuite = context.WithCancel(context.Background())
	op, err := operator.Build(ctx, cfg, o, c)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(op.Start(ctx)).To(Succeed())
	}()
	Eventually(func() error { return op.Verify.ReadyzCheck(nil) }).WithTimeout(30 * time.Second).Should(Succeed())
	Eventually(func() error {
		resp, err := http.Get("http://" + verifyAddr + "/v1/auth")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}).Should(Succeed())
})

var _ = AfterSuite(func() {
	checkNoLeaks()
	if stopSuite != nil {
		stopSuite()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
