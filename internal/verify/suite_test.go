package verify

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/controllers"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// testScheme and testCacheOptions repeat internal/operator's, which the
// suite cannot import: internal/operator imports this package.
func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(s)).To(Succeed())
	Expect(keysv1.AddToScheme(s)).To(Succeed())
	return s
}

func testCacheOptions() cache.Options {
	owned := labels.SelectorFromSet(labels.Set{keysv1.ManagedByLabel: keysv1.ManagedByValue})
	return cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: owned}}}
}

// The suite runs the ApiKey controller and the verify server in one
// manager against a real kube-apiserver and etcd (bin/, built by
// hack/controlplane.sh), and real NGINX and Caddy in front of it.

var (
	k8s        client.Client // direct, uncached: what the tests see
	testEnv    *envtest.Environment
	srv        *Server
	verifyAddr string // host:port of the verify listener
	registry   = prometheus.NewRegistry()
	suiteLogs  = &testkit.SyncBuffer{}
	stopSuite  context.CancelFunc
)

func TestEnvtest(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "verify suite (envtest, NGINX, Caddy)")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(suiteLogs), zap.Level(zapcore.Level(-127)), zap.UseDevMode(true)))
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "run through `make test`, or set KUBEBUILDER_ASSETS=/work/main/bin: the control plane is built into bin/ by hack/controlplane.sh")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(cfg, client.Options{Scheme: testScheme()})
	Expect(err).NotTo(HaveOccurred())

	mgr := newManager(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	verifyAddr = ln.Addr().String()
	opts := NewOptions()
	opts.TrustedProxies = []string{"127.0.0.1"}
	opts.LastUsedFlushInterval = 300 * time.Millisecond // production minimum is 1m
	srv, err = NewServer(opts, Deps{Informers: mgr.GetCache(), Client: mgr.GetClient(), Registerer: registry})
	Expect(err).NotTo(HaveOccurred())
	Expect(mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return srv.Serve(ctx, ln) }))).To(Succeed())

	var ctx context.Context
	ctx, stopSuite = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(func() error { return srv.ReadyzCheck(nil) }).WithTimeout(30 * time.Second).Should(Succeed())
	Eventually(func() error {
		resp, err := http.Get("http://" + verifyAddr + "/v1/auth")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}).Should(Succeed())
})

func newManager(cfg *rest.Config) ctrl.Manager {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  testScheme(),
		Cache:   testCacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	Expect(err).NotTo(HaveOccurred())
	r := &controllers.ApiKeyReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("apikey-operator"),
		DefaultLifetime:         365 * 24 * time.Hour,
		TokenPrefix:             "ak",
		MaxConcurrentReconciles: 2,
	}
	Expect(r.SetupWithManager(context.Background(), mgr)).To(Succeed())
	return mgr
}

var _ = AfterSuite(func() {
	checkNoLeaks()
	if stopSuite != nil {
		stopSuite()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
