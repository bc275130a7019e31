// Package gitops proves the GitOps promise of hash-only keys: one manifest,
// applied by kubectl to two clusters, makes the same token verify in
// both, with no Secret and no plaintext in either; a new hash applied to
// both rolls the token over with the previous one kept for its grace
// period.
package gitops

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/cmd"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// cluster is one local control plane with the controller and verify
// running against it, as `apikey-operator all --disable-webhooks` would.
type cluster struct {
	name   string
	env    *devenv.Env
	k8s    client.Client
	verify string // base URL of the verify endpoints
}

func startCluster(t *testing.T, ctx context.Context, name, bin string) *cluster {
	t.Helper()
	env, err := devenv.Start(devenv.Options{BinDir: bin, ConfigDir: filepath.Join("..", "..", "config"), Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatalf("cluster %s: %v", name, err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	securePort, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	verifyPort, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	o := env.OperatorOptions(securePort, verifyPort)
	// Two operators in one test process: each needs its own metrics
	// registry and leave to reuse the controller's name.
	o.Hooks.Registerer = prometheus.NewRegistry()
	skip := true
	o.Hooks.Manager = func(mo *ctrl.Options) { mo.Controller = config.Controller{SkipNameValidation: &skip} }
	c := operator.Components{Controller: true, Verify: true}
	op, err := operator.Build(ctx, env.Config, o, c)
	if err != nil {
		t.Fatalf("cluster %s: build the operator: %v", name, err)
	}
	go func() { _ = op.Start(ctx) }()
	cl := &cluster{name: name, env: env, k8s: k8s, verify: "http://" + o.Verify.BindAddress}
	waitFor(t, 30*time.Second, name+" verify listening", func() bool {
		resp, err := http.Get(cl.verify + "/v1/auth")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return cl
}

// apply is `kubectl apply -f -`, as a GitOps tool applies a manifest.
func (c *cluster) apply(t *testing.T, bin, manifest string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", c.env.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cluster %s: kubectl apply: %v\n%s", c.name, err, out)
	}
}

// status is the forward-auth answer for a token in the namespace.
func (c *cluster) status(t *testing.T, ns, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.verify+"/v1/auth?namespace="+ns, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("cluster %s: verify: %v", c.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *cluster) key(t *testing.T, ns, name string) *keysv1.ApiKey {
	t.Helper()
	k := &keysv1.ApiKey{}
	if err := c.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatalf("cluster %s: %v", c.name, err)
	}
	return k
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mint is `apikey-operator hash --mint FILE` on a workstation: the token
// stays in the file, the hash goes into the manifest.
func mint(t *testing.T, tokens *testkit.Tokens) (tok, hash string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "partner.token")
	root := cmd.New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"hash", "--mint", path})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(string(data))
	tokens.Remember(tok)
	return tok, strings.TrimSpace(out.String())
}

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: partners
---
apiVersion: keys.apikey-operator.io/v1alpha1
kind: ApiKey
metadata:
  name: acme
  namespace: partners
spec:
  permissions: ["orders:read"]
  tokenHash: %s
  rotation:
    gracePeriod: %s
`

func TestOneManifestVerifiesTheSameTokenOnTwoControlPlanes(t *testing.T) {
	bin := testkit.ControlPlane(t)
	logs := &testkit.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-127))))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var tokens testkit.Tokens

	east, west := startCluster(t, ctx, "east", bin), startCluster(t, ctx, "west", bin)
	clusters := []*cluster{east, west}
	first, firstHash := mint(t, &tokens)
	for _, c := range clusters {
		c.apply(t, bin, fmt.Sprintf(manifest, firstHash, "1h"))
	}
	for _, c := range clusters {
		waitFor(t, 30*time.Second, c.name+": the token verifies", func() bool { return c.status(t, "partners", first) == http.StatusOK })
		k := c.key(t, "partners", "acme")
		if k.Status.Hash != firstHash || k.Status.SecretName != "" {
			t.Fatalf("cluster %s: status.hash %q, secretName %q; want %s and none", c.name, k.Status.Hash, k.Status.SecretName, firstHash)
		}
		secrets := &corev1.SecretList{}
		if err := c.k8s.List(ctx, secrets, client.InNamespace("partners")); err != nil || len(secrets.Items) != 0 {
			t.Fatalf("cluster %s: %d Secrets in the key's namespace (%v); a hash-only key has none", c.name, len(secrets.Items), err)
		}
		if got := c.status(t, "partners", first[:len(first)-6]+"AAAAAA"); got == http.StatusOK {
			t.Fatalf("cluster %s: a wrong token verified", c.name)
		}
	}

	// Roll over: the next manifest declares a new hash; both tokens work
	// in both clusters during the grace period.
	second, secondHash := mint(t, &tokens)
	for _, c := range clusters {
		c.apply(t, bin, fmt.Sprintf(manifest, secondHash, "1h"))
	}
	for _, c := range clusters {
		waitFor(t, 30*time.Second, c.name+": the new token verifies", func() bool { return c.status(t, "partners", second) == http.StatusOK })
		if got := c.status(t, "partners", first); got != http.StatusOK {
			t.Fatalf("cluster %s: the previous token answers %d during its grace period, want 200", c.name, got)
		}
		prev := c.key(t, "partners", "acme").Status.PreviousHashes
		if len(prev) != 1 || prev[0].Hash != firstHash {
			t.Fatalf("cluster %s: previousHashes %v, want %s", c.name, prev, firstHash)
		}
	}

	// Ending the grace period through the manifest (GitOps again) stops
	// the previous token everywhere.
	for _, c := range clusters {
		end := fmt.Sprintf(manifest, secondHash, "1h")
		end = strings.Replace(end, "  namespace: partners\n", "  namespace: partners\n  annotations:\n    "+keysv1.EndGracePeriodAnnotation+": \"1\"\n", 1)
		c.apply(t, bin, end)
	}
	for _, c := range clusters {
		waitFor(t, 30*time.Second, c.name+": the previous token stops", func() bool { return c.status(t, "partners", first) == http.StatusUnauthorized })
		if got := c.status(t, "partners", second); got != http.StatusOK {
			t.Fatalf("cluster %s: the current token answers %d, want 200", c.name, got)
		}
	}

	if leaks := testkit.Leaks(tokens.All(), map[string]string{"the logs": logs.String(), "the keys": dump(t, clusters)}); len(leaks) > 0 {
		t.Fatalf("plaintext found: %v", leaks)
	}
}

// dump renders every ApiKey and event of both clusters, for the leak check.
func dump(t *testing.T, clusters []*cluster) string {
	var b strings.Builder
	for _, c := range clusters {
		keys := &keysv1.ApiKeyList{}
		if err := c.k8s.List(context.Background(), keys); err != nil {
			t.Fatal(err)
		}
		events := &eventsv1.EventList{}
		if err := c.k8s.List(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v\n%+v\n", keys.Items, events.Items)
	}
	return b.String()
}
