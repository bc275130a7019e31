package monitoring_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/monitoring"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// Every metric an expression names is one the operator really exports:
// the test runs the operator (controller, webhook server with a mounted
// certificate, API server and verify) against a real kube-apiserver, makes
// it issue and verify a key, and scrapes its metrics endpoint as the
// ServiceMonitor of config/monitoring does: HTTPS (the default
// --metrics-secure) with the token of a ServiceAccount bound to
// config/rbac's metrics-reader ClusterRole.
func TestExpressionsNameExportedMetrics(t *testing.T) {
	exported := scrapeOperator(t)
	check := func(e monitoring.Expression) []string {
		var missing []string
		for _, name := range metricNames(t, e) {
			if !exported[name] {
				missing = append(missing, name)
			}
		}
		return missing
	}
	for _, e := range allExpressions(t) {
		if missing := check(e); len(missing) > 0 {
			t.Errorf("%s names metrics the operator does not export: %v\n  %s", e.Where, missing, e.Expr)
		}
	}
	// The check itself can fail.
	if missing := check(monitoring.Expression{Where: "probe", Expr: `rate(apikey_verifications_totl[5m])`}); len(missing) != 1 {
		t.Errorf("a misspelt metric was not caught: %v", missing)
	}
}

// scrapeOperator returns the metric names on the operator's endpoint,
// with a histogram's _bucket, _sum and _count series.
func scrapeOperator(t *testing.T) map[string]bool {
	t.Helper()
	assets := testkit.ControlPlane(t)
	env, err := devenv.Start(devenv.Options{BinDir: assets, ConfigDir: "../../config", Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = devenv.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	securePort, verifyPort, metricsPort, webhookPort := ports[0], ports[1], ports[2], ports[3]
	o := env.OperatorOptions(securePort, verifyPort)
	o.Serving.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", metricsPort)
	// The webhook server with a mounted certificate, as with cert-manager:
	// its expiry is one of the metrics the alerts use.
	o.Webhook.Disable, o.Webhook.Host, o.Webhook.Port = false, "127.0.0.1", webhookPort
	o.Webhook.CertDir = certDir(t, env)
	// Shared rate limits in a real redis-server: the limiter's metrics
	// (apikey_limits_fallback, which an alert uses) exist only with one.
	o.Limits.RedisURL = limitstest.StartRedis(t).URL()
	if err := o.Validate(operator.AllInOne); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mgr, err := operator.Build(ctx, env.Config, o, operator.AllInOne)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	tok := issueKey(ctx, t, env)
	verify(t, verifyPort, tok)
	return scrape(t, metricsPort, readerToken(ctx, t, env))
}

// readerToken is the token of a ServiceAccount bound to the metrics-reader
// ClusterRole that config/rbac ships, as Prometheus' would be.
func readerToken(ctx context.Context, t *testing.T, env *devenv.Env) string {
	t.Helper()
	raw, err := os.ReadFile("../../config/rbac/metrics_reader_role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(raw, role); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "prometheus"}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}}}
	c, err := client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{role, sa, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	tr := &authenticationv1.TokenRequest{}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token of %s/%s: %v", sa.Namespace, sa.Name, err)
	}
	return tr.Status.Token
}

func certDir(t *testing.T, env *devenv.Env) string {
	dir := t.TempDir()
	for src, dst := range map[string]string{env.Certs.ServingCert: "tls.crt", env.Certs.ServingKey: "tls.key"} {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// issueKey creates a key and waits for its token.
func issueKey(ctx context.Context, t *testing.T, env *devenv.Env) string {
	c, err := client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "scraped"}}
	key.Spec.Permissions = []keysv1.Permission{"invoices:read"}
	if err := c.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s := &corev1.Secret{}
		if c.Get(ctx, client.ObjectKeyFromObject(key), s) == nil && len(s.Data[keysv1.SecretKeyField]) > 0 {
			return string(s.Data[keysv1.SecretKeyField])
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the key got no token within 30s")
	return ""
}

// verify asks the forward-auth endpoint until the key verifies (the verify
// index follows the cache), then once with a permission it lacks.
func verify(t *testing.T, port int, tok string) {
	ask := func(perm string) int {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1/auth?namespace=default&permission=%s", port, perm), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for ask("invoices:read") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the key did not verify within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := ask("invoices:write"); got != http.StatusForbidden {
		t.Fatalf("a missing permission: got %d, want 403", got)
	}
}

func scrape(t *testing.T, port int, bearer string) map[string]bool {
	var body []byte
	// The operator signs its own metrics certificate; the ServiceMonitor's
	// tlsConfig skips verification alike, and the token decides.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s", resp.Status)
		}
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape the metrics endpoint: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	names := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		}
	}
	return names
}
