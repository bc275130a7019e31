package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The suite runs the controller and the API server in-process against a
// real kube-apiserver that aggregates access.apikey-operator.io from it,
// with front-proxy client certificates as in a cluster.

var (
	env  *devenv.Env
	k8s  client.Client // admin, through kube-apiserver
	base string        // https://127.0.0.1:<secure port>
	// verifyBase is http://127.0.0.1:<verify port>: forward-auth and
	// POST /v1/keys/verify.
	verifyBase string
	tlsBase    *tls.Config // trusts the API server's serving CA
	logs       testkit.SyncBuffer
	// auditLog is the API server's audit log (JSON lines).
	auditLog string
	cancel   context.CancelFunc
)

func TestAPIServer(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "API server suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-127))))
	klog.SetOutput(&logs)
	klog.LogToStderr(false)

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "run through `make test`, which builds the control plane into bin/ and sets KUBEBUILDER_ASSETS")
	var err error
	tokenFile := filepath.Join(GinkgoT().TempDir(), "tokens.csv")
	Expect(os.WriteFile(tokenFile, []byte(openShiftToken+",sha-user,sha-user-uid\n"+staticToken+",static-user,static-user-uid\n"), 0o600)).To(Succeed())
	env, err = devenv.Start(devenv.Options{BinDir: assets, ConfigDir: filepath.Join("..", "..", "config"), Kubeconfig: filepath.Join(GinkgoT().TempDir(), "kubeconfig"),
		TokenAuthFile: tokenFile})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(env.Config, client.Options{Scheme: scheme()})
	Expect(err).NotTo(HaveOccurred())

	securePort, verifyPort := freePort(), freePort()
	ctx, c := context.WithCancel(context.Background())
	cancel = c
	startOperator(ctx, securePort, verifyPort)
	base = fmt.Sprintf("https://127.0.0.1:%d", securePort)
	verifyBase = fmt.Sprintf("http://127.0.0.1:%d", verifyPort)
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(env.Certs.ServingCAPEM)).To(BeTrue())
	tlsBase = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	Expect(env.RegisterAPIService(ctx, securePort)).To(Succeed())
	Expect(env.WaitAPIServiceAvailable(ctx, 60*time.Second)).To(Succeed())
})

var _ = AfterSuite(func() {
	if base != "" {
		leakCheck()
		checkHubCoverage()
	}
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// Kubernetes bearer tokens that are not JWTs, served by kube-apiserver's
// --token-auth-file: OpenShift's sha256~ form and a plain static token.
const (
	openShiftToken = "sha256~N0tAJwtButAKubernetesT0kenFromOpenShift42x"
	staticToken    = "static-kubernetes-token-0123456789abcdef"
)

// startOperator runs the controller and the API server in one manager,
// as `apikey-operator all` does (without the admission webhook, which has
// its own suite).
func startOperator(ctx context.Context, securePort, verifyPort int) {
	o := env.OperatorOptions(securePort, verifyPort)
	// Audit everything at the most revealing level, to prove that even
	// then no token or hash reaches the log (audit_test.go).
	dir := GinkgoT().TempDir()
	auditLog = filepath.Join(dir, "audit.log")
	Expect(os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(auditPolicy), 0o600)).To(Succeed())
	o.APIServer.Audit.PolicyFile = filepath.Join(dir, "policy.yaml")
	o.APIServer.Audit.LogOptions.Path, o.APIServer.Audit.LogOptions.Format = auditLog, "json"
	// Decisions are cached for 10s by default; the tests change RBAC.
	o.APIServer.Authorization.AllowCacheTTL, o.APIServer.Authorization.DenyCacheTTL = 0, 0
	Expect(o.Validate(operator.AllInOne)).To(Succeed())
	mgr, err := operator.Build(ctx, env.Config, o, operator.AllInOne)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

func scheme() *runtime.Scheme { return devenv.Scheme() }

func freePort() int {
	p, err := devenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	return p
}

// caller is how a test authenticates to the API server.
type caller struct {
	headers map[string]string
	cert    *tls.Certificate
	// source is the loopback address requests come from; nil: any.
	source net.IP
}

// fromSource is c sending from a given loopback address.
func fromSource(src net.IP, c caller) caller {
	c.source = src
	return c
}

func apiKey(tok string) caller {
	return caller{headers: map[string]string{"Authorization": "Bearer " + tok}}
}

// kubeUser is a Kubernetes user with a client certificate signed by the
// cluster's client CA, which the API server trusts through delegation.
func kubeUser(name string) caller {
	cfg, err := env.AddUser(name)
	Expect(err).NotTo(HaveOccurred())
	cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	Expect(err).NotTo(HaveOccurred())
	return caller{cert: &cert}
}

var anonymous = caller{}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json() map[string]any {
	var m map[string]any
	ExpectWithOffset(1, json.Unmarshal([]byte(r.body), &m)).To(Succeed(), r.body)
	return m
}

func (c caller) do(method, path string, body any, headers ...string) response {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	cfg := tlsBase.Clone()
	if c.cert != nil {
		cfg.Certificates = []tls.Certificate{*c.cert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	checkHubAnswer(method, path, r)
	return r
}

func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// issueKey creates an ApiKey with kubectl's path and returns its token
// once the controller has made it Ready.
func issueKey(ctx context.Context, ns, name string, perms ...string) string {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, p := range perms {
		key.Spec.Permissions = append(key.Spec.Permissions, keysv1.Permission(p))
	}
	Expect(k8s.Create(ctx, key)).To(Succeed())
	secret := &corev1.Secret{}
	EventuallyWithOffset(1, func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key)).To(Succeed())
		g.Expect(key.Status.Hash).NotTo(BeEmpty())
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)).To(Succeed())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	tok := string(secret.Data[keysv1.SecretKeyField])
	rememberToken(tok)
	return tok
}

// grantKeys gives a Kubernetes user the verbs on apikeys in a namespace.
func grantKeys(ctx context.Context, ns, user string, verbs ...string) {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-keys"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{keysv1.GroupVersion.Group}, Resources: []string{"apikeys"}, Verbs: verbs}},
	}
	Expect(k8s.Create(ctx, role)).To(Succeed())
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-keys"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	Expect(k8s.Create(ctx, binding)).To(Succeed())
}

// tokens the tests saw, for the leak check.
var tokens testkit.Tokens

func rememberToken(t string) { tokens.Remember(t) }
