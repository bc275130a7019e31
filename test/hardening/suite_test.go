// Package hardening_test holds the security and robustness suite of
// issue 8: leak scan, crash safety, conflicts, kube-apiserver outages,
// hostile input and brute force, on a real control plane from bin/.
// docs/security.md says which test proves which claim.
package hardening_test

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
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/leak"
	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// Namespaces the in-process operator serves. The crash and conflict
// tests run their own controllers in namespaces of their own, so no two
// controllers ever reconcile the same key.
const (
	nsLeak    = "leak"
	nsHostile = "hostile"
	nsBrute   = "brute"
)

var (
	env          *devenv.Env
	k8s          client.Client      // admin, through kube-apiserver
	base         string             // https://127.0.0.1:<secure port>
	verifyBase   string             // http://127.0.0.1:<verify port>
	verifyAddr   string             // 127.0.0.1:<verify port>
	extAuthzAddr string             // 127.0.0.1:<gRPC ext_authz port>
	secureAddr   string             // 127.0.0.1:<secure port>
	tlsBase      *tls.Config        // trusts the API server's serving CA
	admin        caller             // a Kubernetes user in system:masters
	logs         testkit.SyncBuffer // everything the in-process operator logged
	auditLog     string             // kube-apiserver's audit log (RequestResponse)
	// operatorAuditLog is the operator's API server's audit log, with
	// the same policy (k8s.io/apiserver's --audit-log-path).
	operatorAuditLog string
	auditPolicyPath  string
	cancel           context.CancelFunc
	binDir           string
	// leakURL is the operator's leak endpoint (POST, GitHub's protocol);
	// reporter stands in for GitHub, whose signing keys it serves.
	leakURL  string
	reporter *leaktest.Reporter
)

func TestHardening(t *testing.T) {
	testkit.ControlPlane(t)
	RegisterFailHandler(Fail)
	RunSpecs(t, "Hardening suite")
}

// auditPolicy logs every request at RequestResponse, the most a cluster
// can log: the leak scan then sees every body kube-apiserver handled.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: RequestResponse
`

var _ = BeforeSuite(func() {
	// The highest verbosity the operator has (its --zap-log-level), and
	// klog (client-go, k8s.io/apiserver) into the same buffer.
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-127))))
	klog.SetOutput(&logs)
	klog.LogToStderr(false)

	binDir = os.Getenv("KUBEBUILDER_ASSETS")
	Expect(binDir).NotTo(BeEmpty(), "run through `make test`, which builds the control plane into bin/ and sets KUBEBUILDER_ASSETS")
	dir := GinkgoT().TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	Expect(os.WriteFile(policy, []byte(auditPolicy), 0o600)).To(Succeed())
	auditLog = filepath.Join(dir, "audit.log")
	auditPolicyPath, operatorAuditLog = policy, filepath.Join(dir, "operator-audit.log")
	var err error
	env, err = devenv.Start(devenv.Options{
		BinDir: binDir, ConfigDir: filepath.Join("..", "..", "config"), Kubeconfig: filepath.Join(dir, "kubeconfig"),
		AuditPolicyFile: policy, AuditLogPath: auditLog,
	})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(env.Config, client.Options{Scheme: scheme()})
	Expect(err).NotTo(HaveOccurred())

	ctx, c := context.WithCancel(context.Background())
	cancel = c
	for _, ns := range []string{nsLeak, nsHostile, nsBrute} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	securePort, verifyPort := freePort(), freePort()
	extAuthzAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
	reporter = leaktest.NewReporter(GinkgoT())
	leakAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	leakURL = "http://" + leakAddr + leak.GitHubPath
	startOperator(ctx, securePort, verifyPort, leakAddr)
	secureAddr = fmt.Sprintf("127.0.0.1:%d", securePort)
	base = "https://" + secureAddr
	verifyAddr = fmt.Sprintf("127.0.0.1:%d", verifyPort)
	verifyBase = "http://" + verifyAddr
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(env.Certs.ServingCAPEM)).To(BeTrue())
	tlsBase = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	admin = kubeUser("hardening-admin", "system:masters")

	Expect(env.RegisterAPIService(ctx, securePort)).To(Succeed())
	Expect(env.WaitAPIServiceAvailable(ctx, 60*time.Second)).To(Succeed())
	Eventually(func() error {
		r, err := http.Get(verifyBase + "/v1/auth")
		if err == nil {
			r.Body.Close()
		}
		return err
	}).WithTimeout(30 * time.Second).Should(Succeed())
})

var _ = AfterSuite(func() {
	for _, d := range binDirs {
		_ = os.RemoveAll(d)
	}
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// startOperator runs the controller, the API server and the verify
// endpoints in one manager, as `apikey-operator all --disable-webhooks`
// does, restricted to the suite's own namespaces.
func startOperator(ctx context.Context, securePort, verifyPort int, leakAddr string) {
	o := env.OperatorOptions(securePort, verifyPort)
	// The gRPC ext_authz server and the leak endpoint too, so that the
	// leak scan covers them.
	o.ExtAuthz.BindAddress = extAuthzAddr
	o.Leak.BindAddress, o.Leak.GitHubKeysURL = leakAddr, reporter.Server.URL
	o.Keys.WatchNamespaces = []string{nsLeak, nsHostile, nsBrute}
	o.APIServer.Audit.PolicyFile = auditPolicyPath
	o.APIServer.Audit.LogOptions.Path, o.APIServer.Audit.LogOptions.Format = operatorAuditLog, "json"
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

func newNamespace(ctx context.Context, name string) string {
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// caller is how a test authenticates to the API server.
type caller struct {
	headers map[string]string
	cert    *tls.Certificate
}

func apiKey(tok string) caller {
	return caller{headers: map[string]string{"X-API-Key": tok}}
}

// kubeUser is a Kubernetes user with a client certificate signed by the
// cluster's client CA, which the API server trusts through delegation.
func kubeUser(name string, groups ...string) caller {
	cfg, err := env.AddUser(name, groups...)
	Expect(err).NotTo(HaveOccurred())
	cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	Expect(err).NotTo(HaveOccurred())
	return caller{cert: &cert}
}

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

// source, when set, is the local address requests are sent from.
func (c caller) transport(source net.IP) *http.Transport {
	cfg := tlsBase.Clone()
	if c.cert != nil {
		cfg.Certificates = []tls.Certificate{*c.cert}
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	return &http.Transport{TLSClientConfig: cfg, DialContext: d.DialContext}
}

// raw sends a body as is to the API server.
func (c caller) raw(method, path string, body []byte, headers ...string) response {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
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
	tr := c.transport(nil)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// do sends v as JSON (nil: no body).
func (c caller) do(method, path string, v any, headers ...string) response {
	var body []byte
	if v != nil {
		var err error
		body, err = json.Marshal(v)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
	}
	return c.raw(method, path, body, headers...)
}

// makeKey creates an ApiKey as kubectl would and returns its token once
// the controller has issued it.
func makeKey(ctx context.Context, ns, name string, mutate func(*keysv1.ApiKey)) (*keysv1.ApiKey, string) {
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mutate != nil {
		mutate(key)
	}
	ExpectWithOffset(1, k8s.Create(ctx, key)).To(Succeed())
	return key, waitIssued(ctx, key)
}

// waitIssued waits until status.hash is the hash of the Secret's token
// and returns the token.
func waitIssued(ctx context.Context, key *keysv1.ApiKey) string {
	secret := &corev1.Secret{}
	EventuallyWithOffset(2, func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(key), key)).To(Succeed())
		g.Expect(key.Status.Hash).NotTo(BeEmpty())
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, secret)).To(Succeed())
		g.Expect(key.Status.Hash).To(Equal(hashOf(string(secret.Data[keysv1.SecretKeyField]))))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return string(secret.Data[keysv1.SecretKeyField])
}

// verifyFrom asks the verify endpoint about a token from a source address
// (nil: any) and returns the HTTP status of /v1/auth.
func verifyFrom(source net.IP, tok string) (int, error) {
	return verifyURL(source, "/v1/auth", tok)
}

// suiteScope is the forward-auth query a gateway of the suite's tenants
// states: keys of its three namespaces.
func suiteScope() string {
	return "namespace=" + nsLeak + "&namespace=" + nsHostile + "&namespace=" + nsBrute
}

func verifyURL(source net.IP, path, tok string) (int, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodGet, verifyBase+path+sep+suiteScope(), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	d := &net.Dialer{Timeout: 5 * time.Second}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// envDuration reads a duration from the environment (make soak sets the
// long forms), else def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
