package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/apikey-operator/apikey-operator/internal/devenv"

	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// Where things are, from this package's directory.
var (
	repoRoot  = filepath.Join("..", "..")
	chartPath = filepath.Join(repoRoot, "charts", "apikey-operator")
)

const (
	release   = "apikey-operator"
	releaseNS = "apikey-operator-system"
)

// binDir is where make puts helm, kubectl and the control plane.
func binDir(t *testing.T) string {
	t.Helper()
	dir := testkit.ControlPlane(t)
	for _, name := range []string{"helm", "kubectl", "kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s is not in %s: run `make helm controlplane` (make test does)", name, dir)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// run runs a command and returns its standard output; a failure is fatal.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
	}
	return out
}

// tryRun runs a command; the error holds its standard error.
func tryRun(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// helmTemplate renders the chart as `helm install apikey-operator -n
// apikey-operator-system` would, with --set values.
func helmTemplate(t *testing.T, sets ...string) string {
	t.Helper()
	args := []string{"template", release, chartPath, "--namespace", releaseNS}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return run(t, nil, filepath.Join(binDir(t), "helm"), args...)
}

// objects parses a multi-document YAML stream, with integers as int64
// as the API machinery has them.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parse manifest: %v", err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("parse manifest: %v", err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(j, &m); err != nil {
			t.Fatalf("parse manifest: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func toYAML(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among the rendered objects", kind, name)
	return nil
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := apiruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
		t.Fatalf("convert %s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	return convert[appsv1.Deployment](t, find(t, objs, "Deployment", name))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startControlPlane starts etcd and kube-apiserver with aggregation, and
// no CRDs: the tests install them from what they render.
func startControlPlane(t *testing.T) *devenv.Env {
	t.Helper()
	config := t.TempDir()
	if err := os.MkdirAll(filepath.Join(config, "crd", "bases"), 0o755); err != nil {
		t.Fatal(err)
	}
	env, err := devenv.Start(devenv.Options{BinDir: binDir(t), ConfigDir: config, Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop control plane: %v", err)
		}
	})
	return env
}

// kubectl runs bin/kubectl as the control plane's admin.
func kubectl(t *testing.T, env *devenv.Env, args ...string) string {
	t.Helper()
	return run(t, []string{"KUBECONFIG=" + env.Kubeconfig}, filepath.Join(binDir(t), "kubectl"), args...)
}

func tryKubectl(t *testing.T, env *devenv.Env, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// applyManifest runs kubectl apply on a manifest, for real or as a
// server-side dry run; it returns kubectl's report.
func applyManifest(t *testing.T, env *devenv.Env, manifest string, dryRun bool) string {
	t.Helper()
	args := []string{"apply", "-f", "-"}
	if dryRun {
		args = append(args, "--dry-run=server")
	}
	out, err := tryKubectl(t, env, manifest, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// createNamespaces makes namespaces, as an admin would before installing.
func createNamespaces(t *testing.T, env *devenv.Env, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", n)
	}
	applyManifest(t, env, b.String(), false)
}

// installThirdPartyCRDs installs the stand-in cert-manager and Prometheus
// Operator CRDs of testdata/.
func installThirdPartyCRDs(t *testing.T, env *devenv.Env) {
	t.Helper()
	kubectl(t, env, "apply", "-f", filepath.Join("testdata", "thirdparty-crds.yaml"))
	kubectl(t, env, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io", "crd/servicemonitors.monitoring.coreos.com")
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildDir  string
)

// operatorBinary builds the apikey-operator binary as the Dockerfile does
// (static, trimmed), once per test run.
func operatorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "apikey-operator-install-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "apikey-operator")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binary, ".")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; the tests keep its output
	// to themselves.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// eventually polls check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// syncBuffer collects a child process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
