package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The ServiceAccounts the chart creates.
const (
	controllerSA = "apikey-operator-controller"
	apiserverSA  = "apikey-operator-apiserver"
)

// scenario is the chart installed for real on a fresh control plane, with
// the operator binary running as the chart's two ServiceAccounts.
type scenario struct {
	env        *devenv.Env
	objs       []*unstructured.Unstructured
	admin      client.Client
	clientset  *kubernetes.Clientset
	securePort int
	verifyPort int
	logs       map[string]*syncBuffer
	tokens     map[string]string
	// metrics is each started component's metrics address, served as the
	// chart's flags say (HTTPS behind a token by default).
	metrics map[string]string
	// leakURL is the API server's leak endpoint, when the chart turns it on.
	leakURL string
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, keysv1.AddToScheme, accessv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// install renders the chart with the given values and applies every
// object for real, as helm install would. There is no kubelet, kube-proxy or DNS here, so the
// test plays their parts, and nothing else: the two Services that
// kube-apiserver calls (webhooks, APIService) become ExternalName Services
// for localhost, on the ports the processes listen on (DESIGN.md, "Local
// control plane"); Secrets mounted into a pod become local directories;
// the pod's ServiceAccount token becomes a kubeconfig.
func install(t *testing.T, sets ...string) *scenario {
	t.Helper()
	operatorBinary(t) // build before the control plane starts: it is the slow part
	env := startControlPlane(t)
	s := &scenario{env: env, securePort: freePort(t), verifyPort: freePort(t), logs: map[string]*syncBuffer{}, tokens: map[string]string{}, metrics: map[string]string{}}
	webhookPort := freePort(t)
	sets = append([]string{
		fmt.Sprintf("webhook.port=%d", webhookPort), fmt.Sprintf("webhook.service.port=%d", webhookPort),
		fmt.Sprintf("apiserver.securePort=%d", s.securePort), fmt.Sprintf("apiserver.service.port=%d", s.securePort),
		fmt.Sprintf("apiserver.verifyPort=%d", s.verifyPort),
	}, sets...)
	s.objs = objects(t, helmTemplate(t, sets...))
	createNamespaces(t, env, releaseNS, "team-a", "team-b", "other")

	var toApply []*unstructured.Unstructured
	for _, o := range s.objs {
		o = o.DeepCopy()
		if o.GetKind() == "Service" && (o.GetName() == "apikey-operator-webhook-service" || o.GetName() == apiserverSA) {
			unstructured.RemoveNestedField(o.Object, "spec", "selector")
			_ = unstructured.SetNestedField(o.Object, "ExternalName", "spec", "type")
			_ = unstructured.SetNestedField(o.Object, "localhost", "spec", "externalName")
		}
		// What helm install records on each object, so that a later
		// `helm install --dry-run` against this cluster adopts them.
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a["meta.helm.sh/release-name"], a["meta.helm.sh/release-namespace"] = release, releaseNS
		o.SetAnnotations(a)
		toApply = append(toApply, o)
	}
	applyManifest(t, env, toYAML(t, toApply), false)
	kubectl(t, env, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/apikeys.keys.apikey-operator.io", "crd/apikeyroles.keys.apikey-operator.io", "crd/apiconsumers.keys.apikey-operator.io")

	var err error
	if s.admin, err = client.New(env.Config, client.Options{Scheme: scheme(t)}); err != nil {
		t.Fatal(err)
	}
	if s.clientset, err = kubernetes.NewForConfig(env.Config); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{controllerSA, apiserverSA} {
		s.tokens[sa] = s.token(t, releaseNS, sa)
	}
	return s
}

// token is a ServiceAccount's token, as the kubelet would mount it.
func (s *scenario) token(t *testing.T, ns, sa string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := s.clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// as is a REST config holding a ServiceAccount's token and nothing else.
func (s *scenario) as(sa string) *rest.Config {
	return &rest.Config{Host: s.env.Config.Host, BearerToken: s.tokens[sa],
		TLSClientConfig: rest.TLSClientConfig{CAData: s.env.Config.CAData}}
}

func (s *scenario) kubeconfig(t *testing.T, sa string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: s.env.Config.Host, CertificateAuthorityData: s.env.Config.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: s.tokens[sa]}
	cfg.Contexts[sa] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa}
	cfg.CurrentContext = sa
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs the container of a rendered Deployment as a local process:
// the chart's arguments, its mounted Secrets as directories, its
// ServiceAccount's token, and local addresses. It returns once /readyz
// answers 200.
func (s *scenario) start(t *testing.T, name string, local ...string) {
	t.Helper()
	d := deployment(t, s.objs, name)
	c := d.Spec.Template.Spec.Containers[0]
	args := append([]string(nil), c.Args...)
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			dir := t.TempDir()
			secret := convert[corev1.Secret](t, find(t, s.objs, "Secret", v.Secret.SecretName))
			for k, b := range secret.Data {
				if err := os.WriteFile(filepath.Join(dir, k), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], m.MountPath, dir)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			t.Setenv(e.Name, releaseNS)
		}
	}
	probe := freePort(t)
	s.metrics[name] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args = append(args,
		"--kubeconfig="+s.kubeconfig(t, d.Spec.Template.Spec.ServiceAccountName),
		"--metrics-bind-address="+s.metrics[name], // the chart's --metrics-secure stays
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probe))
	args = append(args, local...)
	logs := &syncBuffer{}
	s.logs[name] = logs
	p, err := proc.Start(operatorBinary(t), args, proc.Options{Out: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(15 * time.Second); err != nil {
			t.Logf("%s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	eventually(t, 90*time.Second, name+" ready", func() error {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %v\n%s", name, p.Err(), logs.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz?verbose", probe))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

// startBoth runs the controller and the API server.
func (s *scenario) startBoth(t *testing.T) {
	t.Helper()
	// In a pod the ServiceAccount's namespace file names the Lease's
	// namespace; here the flag does.
	s.start(t, "apikey-operator-controller", "--webhook-host=127.0.0.1", "--leader-election-namespace="+releaseNS)
	local := []string{"--bind-address=127.0.0.1", fmt.Sprintf("--verify-bind-address=127.0.0.1:%d", s.verifyPort),
		fmt.Sprintf("--ext-authz-bind-address=127.0.0.1:%d", freePort(t))}
	for _, a := range deployment(t, s.objs, "apikey-operator-apiserver").Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--leak-bind-address=:") {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			local = append(local, "--leak-bind-address="+addr)
			s.leakURL = "http://" + addr + "/v1/leaks/github"
		}
	}
	s.start(t, "apikey-operator-apiserver", local...)
	if err := s.env.WaitAPIServiceAvailable(context.Background(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

// issue creates a role and a key as a user would (through the webhooks)
// and waits until the controller made it Ready; it returns the token.
func (s *scenario) issue(t *testing.T, ns, name string) (*keysv1.ApiKey, string) {
	t.Helper()
	ctx := context.Background()
	role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-role"},
		Spec: keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"}}}
	if err := s.admin.Create(ctx, role); err != nil {
		t.Fatalf("create ApiKeyRole %s/%s: %v", ns, role.Name, err)
	}
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: keysv1.ApiKeySpec{RoleRef: &keysv1.RoleReference{Name: role.Name}, Permissions: []keysv1.Permission{"payments:write"}}}
	if err := s.admin.Create(ctx, key); err != nil {
		t.Fatalf("create ApiKey %s/%s: %v", ns, name, err)
	}
	eventually(t, 60*time.Second, "ApiKey "+ns+"/"+name+" Ready", func() error {
		if err := s.admin.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(key.Status.Conditions, keysv1.ConditionReady) {
			return fmt.Errorf("conditions %+v", key.Status.Conditions)
		}
		return nil
	})
	var secret corev1.Secret
	if err := s.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &secret); err != nil {
		t.Fatalf("the key's Secret: %v", err)
	}
	tok := string(secret.Data[keysv1.SecretKeyField])
	if tok == "" || !strings.HasPrefix(key.Status.Hash, "sha256:") {
		t.Fatalf("key %s/%s: token %d bytes, status.hash %q", ns, name, len(tok), key.Status.Hash)
	}
	// The mutating webhook ran: it writes the default expiry into the spec.
	if key.Spec.ExpiresAt == nil {
		t.Errorf("key %s/%s has no spec.expiresAt: the mutating webhook did not run", ns, name)
	}
	return key, tok
}

// reviewer is a user (client certificate) allowed only to create
// ApiKeyReviews: its request reaches the API server through the
// aggregator, which authorises it with a SubjectAccessReview.
func (s *scenario) review(t *testing.T, tok string) accessv1.ApiKeyReviewStatus {
	t.Helper()
	ctx := context.Background()
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "apikey-reviewer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"access.apikey-operator.io"}, Resources: []string{"apikeyreviews"}, Verbs: []string{"create"}}}}
	if err := s.admin.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "apikey-reviewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "reviewer"}}}
	if err := s.admin.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg, err := s.env.AddUser("reviewer")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	var r *accessv1.ApiKeyReview
	eventually(t, 30*time.Second, "ApiKeyReview", func() error {
		r = &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tok, Permissions: []string{"invoices:read", "payments:write"},
			Namespaces: []string{"team-a", "team-b", "other"}}}
		return c.Create(ctx, r)
	})
	return r.Status
}

// tenantList calls the tenant-admin dialect on the API server's secure
// port, as a ServiceAccount allowed to list ApiKeys everywhere: its token
// is checked by a TokenReview, its access by a SubjectAccessReview, both
// made with the API server's own identity.
func (s *scenario) tenantList(t *testing.T, tenant string) (int, string) {
	t.Helper()
	ctx := context.Background()
	if err := s.admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "console"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "apikey-console"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{keysv1.GroupVersion.Group}, Resources: []string{"apikeys"}, Verbs: []string{"get", "list"}}}}
	if err := s.admin.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "apikey-console"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "team-a", Name: "console"}}}
	if err := s.admin.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tok := s.token(t, "team-a", "console")
	// The API server's certificate is the chart's: trust its CA.
	ca := convert[corev1.Secret](t, find(t, s.objs, "Secret", "apikey-operator-apiserver-tls")).Data["ca.crt"]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: apiserverSA + "." + releaseNS + ".svc", MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/api/%s/admin/apiKeys", s.securePort, tenant), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("tenant-admin list: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrapeMetrics reads both components' metrics as a Prometheus would,
// with the ServiceAccount token of other/prometheus, which the chart's
// metrics-reader ClusterRole must already be bound to: 200 for it, 401
// without a token or with an API key (which never reaches TokenReview),
// 403 for a token without the right, and no plain HTTP. Each component
// checks the token with its own ServiceAccount's rights, so a 200 from
// the controller proves the chart gave it TokenReview and
// SubjectAccessReview, in either RBAC mode.
func (s *scenario) scrapeMetrics(t *testing.T, apiKey string) {
	t.Helper()
	ctx := context.Background()
	for _, sa := range []string{"prometheus", "nobody"} {
		if err := s.admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: sa}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	reader, nobody := s.token(t, "other", "prometheus"), s.token(t, "other", "nobody")
	// The processes sign their own certificates: the test checks who may
	// read, as the ServiceMonitor's tlsConfig does.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	get := func(url, tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for name, addr := range s.metrics {
		url := "https://" + addr + "/metrics"
		eventually(t, 30*time.Second, name+" metrics for the reader", func() error {
			if code, body := get(url, reader); code != http.StatusOK || !strings.Contains(body, "# HELP") {
				return fmt.Errorf("%d %.200s", code, body)
			}
			return nil
		})
		for _, c := range []struct {
			who, tok string
			want     int
		}{{"no token", "", http.StatusUnauthorized}, {"an API key", apiKey, http.StatusUnauthorized}, {"a token without the right", nobody, http.StatusForbidden}} {
			if code, body := get(url, c.tok); code != c.want {
				t.Errorf("%s metrics with %s: %d %.200s, want %d", name, c.who, code, body, c.want)
			}
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s serves metrics over plain HTTP", name)
			}
		}
	}
	if len(s.metrics) != 2 {
		t.Errorf("metrics of %d components scraped, want 2", len(s.metrics))
	}
}

// canI asks the API server whether a ServiceAccount may do something.
func (s *scenario) canI(t *testing.T, sa, verb, resource, ns string) bool {
	t.Helper()
	args := []string{"auth", "can-i", verb, resource, "--as=system:serviceaccount:" + releaseNS + ":" + sa}
	if ns == "*" {
		args = append(args, "--all-namespaces")
	} else if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := tryKubectl(t, s.env, "", args...)
	switch strings.TrimSpace(out) {
	case "yes":
		return true
	case "no":
		return false
	}
	t.Fatalf("kubectl %v: %q %v", args, out, err)
	return false
}

type permission struct {
	verb, resource, namespace string
	allowed                   bool
}

func (s *scenario) checkPermissions(t *testing.T, sa string, perms []permission) {
	t.Helper()
	for _, p := range perms {
		if got := s.canI(t, sa, p.verb, p.resource, p.namespace); got != p.allowed {
			t.Errorf("%s: can-i %s %s in %q = %v, want %v", sa, p.verb, p.resource, p.namespace, got, p.allowed)
		}
	}
}

// noForbidden: the processes never hit a permission they lack, not even
// for something they would only log (an event, a status write).
func (s *scenario) noForbidden(t *testing.T) {
	t.Helper()
	for name, logs := range s.logs {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "forbidden") || strings.Contains(line, "Forbidden") {
				t.Errorf("%s was refused something: %s", name, line)
			}
		}
	}
}

// TestInstallWatchNamespaces installs the chart in watchNamespaces mode
// with Helm-made certificates, runs both components with only their
// ServiceAccounts' permissions, and shows that they work in the watched
// namespaces and can read nothing outside them.
//
// The leak endpoint is on, its signing keys served by a local stand-in
// for GitHub (apiserver.leak.github.keysURL): a signed report of a real
// token disables exactly that key with the API server's own rights.
func TestInstallWatchNamespaces(t *testing.T) {
	reporter := leaktest.NewReporter(t)
	s := install(t, "watchNamespaces={team-a,team-b}", "certificates.provider=helm",
		"metrics.reader.subjects[0].kind=ServiceAccount", "metrics.reader.subjects[0].name=prometheus", "metrics.reader.subjects[0].namespace=other",
		"apiserver.leak.enabled=true", "apiserver.leak.github.keysURL="+reporter.Server.URL)
	ctx := context.Background()

	// Unrelated Secrets, which no identity of the chart may read.
	for _, ns := range []string{"other", "kube-system"} {
		if err := s.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "database-password"},
			StringData: map[string]string{"password": "hunter2"}}); err != nil {
			t.Fatal(err)
		}
	}
	s.startBoth(t)

	// It works: keys in both watched namespaces are reconciled through
	// the webhooks, and verified through the aggregated API.
	_, tokA := s.issue(t, "team-a", "billing")
	keyB, tokB := s.issue(t, "team-b", "shipping")
	for _, tok := range []string{tokA, tokB} {
		if st := s.review(t, tok); !st.Valid || st.ApiKey == nil || st.ApiKey.Role == "" {
			t.Errorf("ApiKeyReview of a Ready key: %+v", st)
		}
	}
	if st := s.review(t, tokB); st.ApiKey == nil || st.ApiKey.Namespace != "team-b" || st.ApiKey.Name != keyB.Name {
		t.Errorf("ApiKeyReview names %+v, want team-b/%s", st.ApiKey, keyB.Name)
	}
	code, body := s.tenantList(t, "team-a")
	if code != http.StatusOK || !strings.Contains(body, `"billing"`) {
		t.Errorf("tenant-admin list of team-a: %d %s", code, body)
	}
	s.scrapeMetrics(t, tokA)
	// A namespace the API server does not serve is an unknown tenant,
	// although the caller may list ApiKeys there.
	if code, body := s.tenantList(t, "other"); code != http.StatusNotFound {
		t.Errorf("tenant-admin list of an unwatched namespace: %d %s, want 404", code, body)
	}

	// A key outside the watched namespaces is left alone: no webhook
	// (namespaceSelector), no Secret, no status.
	outside := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "outside"}}
	if err := s.admin.Create(ctx, outside); err != nil {
		t.Fatal(err)
	}
	s.issue(t, "team-a", "after-outside") // the controller has had its chance
	if err := s.admin.Get(ctx, client.ObjectKeyFromObject(outside), outside); err != nil {
		t.Fatal(err)
	}
	if outside.Spec.ExpiresAt != nil || len(outside.Status.Conditions) > 0 || outside.Status.Hash != "" {
		t.Errorf("the key in an unwatched namespace was touched: spec %+v status %+v", outside.Spec, outside.Status)
	}
	if err := s.admin.Get(ctx, client.ObjectKey{Namespace: "other", Name: "outside"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret for the key in an unwatched namespace: %v, want NotFound", err)
	}

	// Every denial, asked of the authorizer...
	s.checkPermissions(t, controllerSA, []permission{
		{"list", "secrets", "team-a", true},                        // the label-selected watch needs it (docs/install.md)
		{"get", "namespaces/team-a", "team-a", true},               // a GET of a Namespace is authorised in that namespace
		{"create", "tokenreviews.authentication.k8s.io", "", true}, // secure metrics
		{"create", "subjectaccessreviews.authorization.k8s.io", "", true},
		{"create", "leases.coordination.k8s.io", releaseNS, true},
		{"get", "secrets", "other", false},
		{"list", "secrets", "other", false},
		{"watch", "secrets", "other", false},
		{"get", "secrets", "kube-system", false},
		{"list", "secrets", "*", false},
		{"get", "secrets", releaseNS, false},
		{"list", "apikeys.keys.apikey-operator.io", "other", false},
		{"list", "apikeys.keys.apikey-operator.io", "*", false},
		{"get", "namespaces/other", "other", false},
		{"list", "namespaces", "", false},
		{"delete", "secrets", "team-a", false},
		{"get", "configmaps", "team-a", false},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/apikey-operator-validating-webhook-configuration", "", false},
		{"get", "leases.coordination.k8s.io/someone-elses-lease", releaseNS, false},
		{"create", "clusterroles.rbac.authorization.k8s.io", "", false},
	})
	s.checkPermissions(t, apiserverSA, []permission{
		{"create", "secrets", "team-a", true},
		{"create", "apikeys.keys.apikey-operator.io", "team-b", true},
		{"create", "tokenreviews.authentication.k8s.io", "", true},
		{"create", "subjectaccessreviews.authorization.k8s.io", "", true},
		{"get", "configmaps/extension-apiserver-authentication", "kube-system", true},
		{"get", "secrets", "team-a", false},
		{"list", "secrets", "team-a", false},
		{"watch", "secrets", "team-a", false},
		{"get", "secrets", "other", false},
		{"get", "secrets", "kube-system", false},
		{"create", "secrets", "other", false},
		{"list", "apikeys.keys.apikey-operator.io", "other", false},
		{"get", "namespaces/team-b", "team-b", true},
		{"get", "namespaces/other", "other", false},
		{"list", "namespaces", "", false},
		{"get", "configmaps", "team-a", false},
	})
	// ...and tried for real with the ServiceAccounts' tokens.
	for _, sa := range []string{controllerSA, apiserverSA} {
		cs, err := kubernetes.NewForConfig(s.as(sa))
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{"other", "kube-system"} {
			if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "database-password", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("%s: GET Secret %s/database-password: %v, want Forbidden", sa, ns, err)
			}
		}
		if _, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s: LIST Secrets in all namespaces: %v, want Forbidden", sa, err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s: GET Namespace other: %v, want Forbidden", sa, err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: GET Namespace team-a, which a Role in team-a allows: %v", sa, err)
		}
	}
	apiCS, _ := kubernetes.NewForConfig(s.as(apiserverSA))
	if _, err := apiCS.CoreV1().Secrets("team-a").Get(ctx, "billing", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("API server: GET the Secret of a key it serves: %v, want Forbidden (it never reads Secrets)", err)
	}
	s.reportLeak(t, reporter, tokB, keyB, tokA)
	s.noForbidden(t)
}

// reportLeak posts a report of leaked to the API server's leak endpoint,
// unsigned (refused, nothing changes), then signed by the reporter: the
// key turns Ready=False Leaked, the bystander's token keeps working, and
// neither token is in the API server's logs.
func (s *scenario) reportLeak(t *testing.T, reporter *leaktest.Reporter, leaked string, key *keysv1.ApiKey, bystander string) {
	t.Helper()
	if s.leakURL == "" {
		t.Fatal("the chart did not turn the leak endpoint on")
	}
	body := leaktest.Report(leaked)
	post := func(sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, s.leakURL, strings.NewReader(string(body)))
		if sign {
			req.Header.Set("Github-Public-Key-Identifier", reporter.ID)
			req.Header.Set("Github-Public-Key-Signature", reporter.Sign(t, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("leak endpoint: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(false); code != http.StatusUnauthorized {
		t.Fatalf("unsigned report: %d, want 401", code)
	}
	if code := post(true); code != http.StatusOK {
		t.Fatalf("signed report: %d, want 200", code)
	}
	ctx := context.Background()
	eventually(t, 30*time.Second, "the reported key Leaked", func() error {
		if err := s.admin.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(key.Status.Conditions, keysv1.ConditionReady); c == nil || c.Reason != keysv1.ReasonLeaked || len(key.Status.Leaks) != 1 {
			return fmt.Errorf("conditions %+v, leaks %+v", key.Status.Conditions, key.Status.Leaks)
		}
		return nil
	})
	if st := s.review(t, bystander); !st.Valid {
		t.Errorf("the bystander's token stopped verifying after another key's leak report: %+v", st)
	}
	if found := testkit.Leaks([]string{leaked, bystander}, map[string]string{"API server log": s.logs["apikey-operator-apiserver"].String()}); len(found) > 0 {
		t.Errorf("tokens in the API server's log: %v", found)
	}
}

// TestInstallClusterWide installs the chart's defaults: ClusterRoles, and
// the webhook certificate made by the controller, which writes its CA into
// the two webhook configurations with a ClusterRole limited to them.
func TestInstallClusterWide(t *testing.T) {
	s := install(t)
	ctx := context.Background()
	s.startBoth(t)

	// The controller wrote its CA into every webhook.
	for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
		out := kubectl(t, s.env, "get", kind, "apikey-operator-"+strings.TrimSuffix(kind, "webhookconfiguration")+"-webhook-configuration",
			"-o", "jsonpath={.webhooks[*].clientConfig.caBundle}")
		if len(strings.Fields(out)) == 0 {
			t.Errorf("%s has no caBundle", kind)
		}
	}
	s.readmeFirstKey(t)
	s.upgradeKeepsCertificate(t)
	_, tok := s.issue(t, "team-a", "billing")
	_, tok2 := s.issue(t, "other", "reporting")
	for _, tk := range []string{tok, tok2} {
		if st := s.review(t, tk); !st.Valid {
			t.Errorf("ApiKeyReview of a Ready key: %+v", st)
		}
	}
	code, body := s.tenantList(t, "other")
	if code != http.StatusOK || !strings.Contains(body, `"reporting"`) {
		t.Errorf("tenant-admin list: %d %s", code, body)
	}
	// The defaults bind no scraper: the cluster's Prometheus is bound to
	// the chart's metrics-reader ClusterRole, as an admin would do it.
	if err := s.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "apikey-operator-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "other", Name: "prometheus"}}}); err != nil {
		t.Fatal(err)
	}
	s.scrapeMetrics(t, tok)

	s.checkPermissions(t, controllerSA, []permission{
		{"list", "secrets", "*", true},                             // the label-selected watch (docs/install.md)
		{"create", "tokenreviews.authentication.k8s.io", "", true}, // secure metrics
		{"create", "subjectaccessreviews.authorization.k8s.io", "", true},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/apikey-operator-mutating-webhook-configuration", "", true},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses-webhook", "", false},
		{"create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", "", false},
		{"delete", "validatingwebhookconfigurations.admissionregistration.k8s.io/apikey-operator-validating-webhook-configuration", "", false},
		{"delete", "secrets", "team-a", false},
		{"get", "configmaps", "kube-system", false},
		{"list", "namespaces", "", false},
		{"update", "apikeys.keys.apikey-operator.io", "team-a", false},
		{"get", "leases.coordination.k8s.io/someone-elses-lease", releaseNS, false},
		{"create", "clusterrolebindings.rbac.authorization.k8s.io", "", false},
	})
	s.checkPermissions(t, apiserverSA, []permission{
		{"create", "secrets", "other", true},
		{"list", "namespaces", "", true},
		{"get", "secrets", "team-a", false},
		{"list", "secrets", "*", false},
		{"watch", "secrets", "*", false},
		{"update", "secrets", "team-a", false},
		{"get", "configmaps", "kube-system", false},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/apikey-operator-mutating-webhook-configuration", "", false},
		{"create", "clusterrolebindings.rbac.authorization.k8s.io", "", false},
	})
	apiCS, _ := kubernetes.NewForConfig(s.as(apiserverSA))
	if _, err := apiCS.CoreV1().Secrets("team-a").Get(ctx, "billing", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("API server: GET a key's Secret: %v, want Forbidden (it never reads Secrets)", err)
	}
	if _, err := apiCS.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("API server: LIST Secrets: %v, want Forbidden", err)
	}
	s.noForbidden(t)
}

// readmeFirstKey runs the README's and NOTES.txt's first steps with kubectl:
// create a key, wait for it, read its token, check it with an ApiKeyReview.
func (s *scenario) readmeFirstKey(t *testing.T) {
	t.Helper()
	key := `apiVersion: keys.apikey-operator.io/v1alpha1
kind: ApiKey
metadata: {name: first-key}
spec: {permissions: ["invoices:read"]}
`
	if out, err := tryKubectl(t, s.env, key, "create", "-n", "team-a", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	kubectl(t, s.env, "wait", "-n", "team-a", "apikey/first-key", "--for=condition=Ready", "--timeout=60s")
	b64 := kubectl(t, s.env, "get", "secret", "-n", "team-a", "first-key", "-o", "jsonpath={.data.api-key}")
	tok, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	review := fmt.Sprintf(`apiVersion: access.apikey-operator.io/v1alpha1
kind: ApiKeyReview
spec: {key: %q, namespaces: [team-a], permissions: ["invoices:read"]}
`, tok)
	out, err := tryKubectl(t, s.env, review, "create", "-o", `jsonpath={.status}{"\n"}`, "-f", "-")
	if err != nil || !strings.Contains(out, `"valid":true`) {
		t.Errorf("kubectl create ApiKeyReview: %v\n%s", err, out)
	}
}

// upgradeKeepsCertificate renders the chart as `helm install` and `helm
// upgrade` do, against the cluster: the chart finds the API server's
// certificate in its Secret and keeps it, with the CA bundle that trusts
// it. It also shows NOTES.txt, which tells how to make a first key.
func (s *scenario) upgradeKeepsCertificate(t *testing.T) {
	t.Helper()
	out := run(t, []string{"KUBECONFIG=" + s.env.Kubeconfig}, filepath.Join(binDir(t), "helm"),
		"install", release, chartPath, "--namespace", releaseNS, "--dry-run=server")
	manifest, notes, ok := strings.Cut(out, "\nNOTES:\n")
	if !ok {
		t.Fatalf("helm install --dry-run printed no NOTES:\n%.2000s", out)
	}
	_, manifest, _ = strings.Cut(manifest, "\nMANIFEST:\n")
	objs := objects(t, manifest)
	installed := convert[corev1.Secret](t, find(t, s.objs, "Secret", "apikey-operator-apiserver-tls"))
	again := convert[corev1.Secret](t, find(t, objs, "Secret", "apikey-operator-apiserver-tls"))
	if string(again.Data["tls.crt"]) != string(installed.Data["tls.crt"]) || string(again.Data["ca.crt"]) != string(installed.Data["ca.crt"]) {
		t.Error("a new render against the cluster made a new API server certificate instead of keeping the installed one")
	}
	caBundle, _, _ := unstructured.NestedString(find(t, objs, "APIService", "v1alpha1.access.apikey-operator.io").Object, "spec", "caBundle")
	if caBundle != base64.StdEncoding.EncodeToString(installed.Data["ca.crt"]) {
		t.Error("the re-rendered APIService does not carry the kept CA")
	}
	for _, want := range []string{"kind: ApiKey", "kubectl -n default wait apikey/first-key --for=condition=Ready", "kind: ApiKeyReview",
		"http://apikey-operator-apiserver.apikey-operator-system.svc:8090"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
}
