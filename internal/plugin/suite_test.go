package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The suite runs the real kubectl, which finds kubectl-apikey on PATH,
// against a real kube-apiserver that aggregates ApiKeyReview from the
// operator running in-process.

var (
	env       *devenv.Env
	k8s       client.Client
	kubectl   string
	pluginDir string
	logs      testkit.SyncBuffer
	cancel    context.CancelFunc
)

func TestPlugin(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl apikey suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-127))))
	klog.SetOutput(&logs)
	klog.LogToStderr(false)

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "run through `make test`, which builds the control plane into bin/ and sets KUBEBUILDER_ASSETS")
	kubectl = filepath.Join(assets, "kubectl")

	// Build the plugin as `make plugin` does, into a directory of its own
	// that the tests put first on PATH.
	pluginDir = GinkgoT().TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-apikey"), "../../cmd/kubectl-apikey")
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	complete, err := os.ReadFile("../../cmd/kubectl-apikey/kubectl_complete-apikey")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(pluginDir, "kubectl_complete-apikey"), complete, 0o755)).To(Succeed())

	env, err = devenv.Start(devenv.Options{BinDir: assets, ConfigDir: filepath.Join("..", "..", "config"), Kubeconfig: filepath.Join(GinkgoT().TempDir(), "kubeconfig")})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	securePort, err := devenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	verifyPort, err := devenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	ctx, c := context.WithCancel(context.Background())
	cancel = c
	o := env.OperatorOptions(securePort, verifyPort)
	Expect(o.Validate(operator.AllInOne)).To(Succeed())
	mgr, err := operator.Build(ctx, env.Config, o, operator.AllInOne)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Expect(env.RegisterAPIService(ctx, securePort)).To(Succeed())
	Expect(env.WaitAPIServiceAvailable(ctx, 60*time.Second)).To(Succeed())
})

var _ = AfterSuite(func() {
	if env != nil && k8s != nil {
		leakCheck()
	}
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// run is one `kubectl apikey ...` (or any kubectl command) with the
// plugin on PATH.
type run struct {
	args           []string
	stdout, stderr string
	code           int
}

// transcript holds every run's output for the leak check: the token may
// appear only on the standard output of runs that were asked for it.
var transcript struct {
	sync.Mutex
	runs []run
	// asked are the indexes of runs whose stdout may hold a token.
	asked map[int]bool
}

func kubectlRun(stdin string, args ...string) run {
	return kubectlRunAsked(false, stdin, args...)
}

// kubectlRunAsked runs kubectl; asked says the run prints a token on
// purpose (token, create --show-token).
func kubectlRunAsked(asked bool, stdin string, args ...string) run {
	cmd := exec.Command(kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := run{args: args, stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		ExpectWithOffset(2, err).NotTo(HaveOccurred())
	}
	transcript.Lock()
	if transcript.asked == nil {
		transcript.asked = map[int]bool{}
	}
	transcript.asked[len(transcript.runs)] = asked
	transcript.runs = append(transcript.runs, r)
	transcript.Unlock()
	return r
}

// plugin runs `kubectl apikey ARGS` in a namespace and expects success.
func plugin(ns string, args ...string) run {
	r := kubectlRun("", append([]string{"apikey", "-n", ns}, args...)...)
	ExpectWithOffset(1, r.code).To(Equal(0), "kubectl apikey %v: %s", args, r.stderr)
	return r
}

func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "plugin-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// secretToken reads a key's token the way a workload would, and
// remembers it for the leak check.
func secretToken(ctx context.Context, ns, name string) string {
	s := &corev1.Secret{}
	EventuallyWithOffset(1, func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
	}).WithTimeout(20 * time.Second).Should(Succeed())
	tok := string(s.Data[keysv1.SecretKeyField])
	ExpectWithOffset(1, tok).NotTo(BeEmpty())
	tokens.Remember(tok)
	return tok
}

var tokens testkit.Tokens

// leakCheck: no token is in any output of the plugin except the standard
// output of runs that printed it on purpose, nor in any ApiKey or log.
func leakCheck() {
	keys := &keysv1.ApiKeyList{}
	Expect(k8s.List(context.Background(), keys)).To(Succeed())
	rawKeys, err := json.Marshal(keys)
	Expect(err).NotTo(HaveOccurred())
	hay := map[string]string{"the operator's log": logs.String(), "an ApiKey": string(rawKeys)}
	transcript.Lock()
	defer transcript.Unlock()
	for i, r := range transcript.runs {
		name := "kubectl " + strings.Join(r.args, " ")
		hay["stderr of "+name] = r.stderr
		if !transcript.asked[i] {
			hay["stdout of "+name] = r.stdout
		}
	}
	Expect(tokens.All()).NotTo(BeEmpty())
	Expect(testkit.Leaks(tokens.All(), hay)).To(BeEmpty())
}
