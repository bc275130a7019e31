package hardening_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binDirs    []string // removed by AfterSuite
)

// operatorBinary builds the real binary once for the suite.
func operatorBinary() string {
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hardening-bin-")
		Expect(err).NotTo(HaveOccurred())
		binDirs = append(binDirs, dir)
		binaryPath = filepath.Join(dir, "apikey-operator")
		build := exec.Command("go", "build", "-o", binaryPath, ".")
		build.Dir = filepath.Join("..", "..")
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
	})
	return binaryPath
}

// restDialect is how the crash test drives one dialect: its create, update
// and delete of the key called name, and the token a 201 returned.
type restDialect struct {
	name   string
	create func(o *restOperator, ns, name string) (int, string, string) // status, token, id
	update func(o *restOperator, ns, id string) int                     // nil: the dialect has none
	delete func(o *restOperator, ns, id string) int
	get    func(o *restOperator, ns, id string) int
}

var restDialects = []restDialect{
	{
		name: "nexus",
		create: func(o *restOperator, ns, name string) (int, string, string) {
			st, m := o.call("POST", "/v1/api-keys", map[string]any{"id": name}, "X-Namespace", ns)
			return st, str(m["secret"]), name
		},
		// Nexus has no update (its keys are immutable but for delete).
		delete: func(o *restOperator, ns, id string) int {
			st, _ := o.call("DELETE", "/v1/api-keys/"+id, nil, "X-Namespace", ns)
			return st
		},
		get: func(o *restOperator, ns, id string) int {
			st, _ := o.call("GET", "/v1/api-keys/"+id, nil, "X-Namespace", ns)
			return st
		},
	},
	{
		name: "tenant-admin",
		create: func(o *restOperator, ns, name string) (int, string, string) {
			st, m := o.call("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": name, "permissions": []string{"invoices:read"}})
			return st, str(m["token"]), name
		},
		update: func(o *restOperator, ns, id string) int {
			st, _ := o.call("PUT", "/api/"+ns+"/admin/apiKeys/"+id, map[string]any{"enabled": true, "permissions": []string{"invoices:write"}})
			return st
		},
		delete: func(o *restOperator, ns, id string) int {
			st, _ := o.call("DELETE", "/api/"+ns+"/admin/apiKeys/"+id, nil)
			return st
		},
		get: func(o *restOperator, ns, id string) int {
			st, _ := o.call("GET", "/api/"+ns+"/admin/apiKeys/"+id, nil)
			return st
		},
	},
	{
		name: "hub",
		create: func(o *restOperator, ns, name string) (int, string, string) {
			st, m := o.call("POST", "/v1/hubs/current/api-keys", map[string]any{"name": name, "role_id": o.roleID}, "X-Hub-Id", ns)
			data, _ := m["data"].(map[string]any)
			return st, str(data["secret"]), str(data["id"])
		},
		update: func(o *restOperator, ns, id string) int {
			st, _ := o.call("PATCH", "/v1/hubs/current/api-keys/"+id, map[string]any{"ips": []string{"10.0.0.0/8"}}, "X-Hub-Id", ns)
			return st
		},
		delete: func(o *restOperator, ns, id string) int {
			st, _ := o.call("DELETE", "/v1/hubs/current/api-keys/"+id, nil, "X-Hub-Id", ns)
			return st
		},
		get: func(o *restOperator, ns, id string) int {
			st, _ := o.call("GET", "/v1/hubs/current/api-keys/"+id, nil, "X-Hub-Id", ns)
			return st
		},
	},
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// restOperator is the real binary running every component for one
// namespace, on ports of its own, called as a Kubernetes admin.
type restOperator struct {
	ns           string
	roleID       string // the hub ID of a role in ns, which hub creates name
	kubeconfig   string
	extraArgs    []string
	secure, vfy  int
	proc         *proc.Process
	log          *testkit.SyncBuffer
	client       *http.Client
	secureBase   string
	verifyBaseNS string
}

func startRESTOperator(ns, roleID string, log *testkit.SyncBuffer) *restOperator {
	return newRESTOperator(ns, roleID, log, env.Kubeconfig)
}

func newRESTOperator(ns, roleID string, log *testkit.SyncBuffer, kubeconfig string, extraArgs ...string) *restOperator {
	o := &restOperator{ns: ns, roleID: roleID, secure: freePort(), vfy: freePort(), log: log, kubeconfig: kubeconfig, extraArgs: extraArgs}
	o.secureBase = fmt.Sprintf("https://127.0.0.1:%d", o.secure)
	o.verifyBaseNS = fmt.Sprintf("http://127.0.0.1:%d/v1/auth?namespace=%s", o.vfy, ns)
	tr := admin.transport(nil)
	tr.MaxIdleConnsPerHost = 16
	o.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	o.start()
	return o
}

func (o *restOperator) start() {
	args := append([]string{"all", "--kubeconfig", o.kubeconfig, "--disable-webhooks",
		"--watch-namespaces", o.ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(o.secure),
		"--tls-cert-file", env.Certs.ServingCert, "--tls-private-key-file", env.Certs.ServingKey,
		"--verify-bind-address", fmt.Sprintf("127.0.0.1:%d", o.vfy), "--ext-authz-bind-address", "0"}, o.extraArgs...)
	p, err := proc.Start(operatorBinary(), args, proc.Options{Out: o.log})
	Expect(err).NotTo(HaveOccurred())
	o.proc = p
	Eventually(func() int {
		st, _ := o.call("GET", "/api/"+o.ns+"/admin/apiKeys", nil)
		return st
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(Equal(200), "the operator serves the dialects")
}

// call sends v as JSON; status 0 when the request got no answer.
func (o *restOperator) call(method, path string, v any, headers ...string) (int, map[string]any) {
	st, _, m := o.callH(method, path, v, headers...)
	return st, m
}

// callH is call with the answer's headers.
func (o *restOperator) callH(method, path string, v any, headers ...string) (int, http.Header, map[string]any) {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, o.secureBase+path, body)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func (o *restOperator) verifies(tok string) int {
	req, _ := http.NewRequest(http.MethodGet, o.verifyBaseNS, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// burst runs op on every name from 8 workers and SIGKILLs the operator
// once killAfter of them have been answered; it returns each name's
// status (0: no answer) and, for creates, the token and id.
type outcome struct {
	status    int
	token, id string
}

func (o *restOperator) burst(names []string, killAfter int32, op func(name string) outcome) map[string]outcome {
	var (
		mu       sync.Mutex
		out      = map[string]outcome{}
		answered atomic.Int32
		killed   = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
		next     atomic.Int32
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				r := op(names[i])
				mu.Lock()
				out[names[i]] = r
				mu.Unlock()
				if r.status != 0 && answered.Add(1) == killAfter {
					once.Do(func() { o.proc.Kill(); close(killed) })
				}
			}
		}()
	}
	wg.Wait()
	once.Do(func() { o.proc.Kill(); close(killed) })
	return out
}

// retried repeats a write that answered 503 (its deadline passed on a
// loaded machine), as docs/rest-api.md tells a client to, and returns the
// first other answer.
func retried(write func() int) int {
	var st int
	Eventually(func() int {
		st = write()
		return st
	}).WithTimeout(60 * time.Second).WithPolling(time.Second).ShouldNot(Equal(http.StatusServiceUnavailable))
	return st
}

// undelivered tells whether the key's Secret is still marked as holding
// a token no answer carried: the kill came after the 201 was sent and
// before the API server marked it delivered (keysv1.UndeliveredAnnotation).
func undelivered(ctx context.Context, ns, name string) bool {
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(name)}, s)).To(Succeed())
	return s.Annotations[keysv1.UndeliveredAnnotation] != ""
}

// expectVerifiesSoon waits (10 s at most) for a token a create has just
// answered to verify. Until then the key's status does not record it yet
// (the controller writes status.hash after the 201); a failure says what
// the key and its Secret hold, to tell that lag from a token that never
// verifies.
// It returns how long that took, which the spec reports (never asserts).
func expectVerifiesSoon(ctx context.Context, o *restOperator, ns, name, tok string) time.Duration {
	GinkgoHelper()
	start := time.Now()
	Eventually(o.verifies).WithArguments(tok).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).
		Should(Equal(200), func() string { return keyReport(ctx, ns, name, tok) })
	return time.Since(start)
}

// keyReport says whether the key's status and Secret hold the token
// (never the token itself) and why the key is not ready, if it is not.
func keyReport(ctx context.Context, ns, name, tok string) string {
	key := &keysv1.ApiKey{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(name)}, key); err != nil {
		return fmt.Sprintf("%s: key: %v", name, err)
	}
	out := fmt.Sprintf("%s: status.hash is the token's: %t (empty: %t)", name, key.Status.Hash == hashOf(tok), key.Status.Hash == "")
	for _, c := range key.Status.Conditions {
		out += fmt.Sprintf("; %s=%s %s", c.Type, c.Status, c.Reason)
	}
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: key.SecretName()}, s); err != nil {
		return out + fmt.Sprintf("; secret: %v", err)
	}
	owner := metav1.GetControllerOf(s)
	return out + fmt.Sprintf("; secret holds the token: %t, owned by the key: %t", string(s.Data[keysv1.SecretKeyField]) == tok, owner != nil && owner.UID == key.UID)
}

// ownerless lists the Secrets of ns that hold a token and have no owner.
func ownerless(ctx context.Context, ns string) []string {
	l := &corev1.SecretList{}
	Expect(k8s.List(ctx, l, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, s := range l.Items {
		if metav1.GetControllerOf(&s) == nil {
			out = append(out, s.Name)
		}
	}
	return out
}

var _ = Describe("Crash safety of the REST writes", func() {
	ctx := context.Background()

	for _, d := range restDialects {
		It(fmt.Sprintf("%s: a SIGKILL of the binary mid-burst of creates, updates and deletes leaves no ownerless Secret; a retry of every create without a 201 completes it with a token that verifies, and a completed create is not completed again", d.name), func() {
			ns := newNamespace(ctx, "crash-rest-"+d.name)
			role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
				Spec: keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"}}}
			Expect(k8s.Create(ctx, role)).To(Succeed())
			var logBuf testkit.SyncBuffer
			o := startRESTOperator(ns, keystore.IDOf(role.UID), &logBuf)
			DeferCleanup(func() { _ = o.proc.Stop(10 * time.Second) })
			n := envInt("HARDENING_REST_KILL_KEYS", 40)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("burst-%d", i)
			}

			var tokens []string // every token an answer carried, for the leak scan
			By("creates: SIGKILL once a third are answered")
			created := o.burst(names, int32(n/3), func(name string) outcome {
				st, tok, id := d.create(o, ns, name)
				return outcome{status: st, token: tok, id: id}
			})
			Expect(ownerless(ctx, ns)).To(BeEmpty(), "a crashed create left a Secret holding a token without its key")
			o.start()
			ids := map[string]string{}
			for name, r := range created {
				if r.status == 201 {
					ids[name] = r.id
				}
			}
			Expect(len(ids)).To(BeNumerically(">", 0), "some creates were answered before the kill")
			By("retry every create that got no 201, with the same request: each completes with 201")
			var retriedNames []string
			for _, name := range names {
				if _, ok := ids[name]; ok {
					continue
				}
				var tok, id string
				st := retried(func() int {
					var st int
					st, tok, id = d.create(o, ns, name)
					return st
				})
				Expect(st).To(Equal(201), "%s: a retry after the crash of a create whose answer never came", name)
				Expect(tok).NotTo(BeEmpty(), name)
				created[name] = outcome{status: 201, token: tok, id: id}
				ids[name] = id
				retriedNames = append(retriedNames, name)
			}
			By("a completed create is never completed again: the same request answers 409")
			for _, name := range retriedNames {
				Expect(retried(func() int { st, _, _ := d.create(o, ns, name); return st })).To(Equal(409), "%s: a retry of a create that a retry completed", name)
			}
			for name, r := range created {
				if r.status == 201 && !slices.Contains(retriedNames, name) && !undelivered(ctx, ns, name) {
					Expect(retried(func() int { st, _, _ := d.create(o, ns, name); return st })).To(Equal(409), "%s: a retry of a create answered before the crash", name)
				}
			}
			Eventually(func(g Gomega) { expectConverged(g, ctx, ns, n) }).
				WithTimeout(keysv1.TokenWriterGrace+90*time.Second).Should(Succeed(), "every key has its one owned Secret, including those whose Secret the crash prevented")
			for name, r := range created {
				if r.status == 201 {
					Expect(o.verifies(r.token)).To(Equal(200), "%s: a token answered with 201 must verify", name)
				}
			}

			if d.update != nil {
				By("updates: SIGKILL once a third are answered")
				before := keyStates(ctx, ns)
				o.burst(names, int32(n/3), func(name string) outcome { return outcome{status: d.update(o, ns, ids[name])} })
				Expect(ownerless(ctx, ns)).To(BeEmpty())
				o.start()
				for _, name := range names {
					Expect(retried(func() int { return d.update(o, ns, ids[name]) })).To(Equal(200), "%s: an update after the crash", name)
				}
				var after map[string]*keyState
				Eventually(func(g Gomega) { after = expectConverged(g, ctx, ns, n) }).WithTimeout(60 * time.Second).Should(Succeed())
				for name, st := range after {
					Expect(st.token()).To(Equal(before[name].token()), "%s: an update does not change the token", name)
				}
			}

			if d.delete != nil {
				By("deletes: SIGKILL once a third are answered")
				o.burst(names, int32(n/3), func(name string) outcome { return outcome{status: d.delete(o, ns, ids[name])} })
				Expect(ownerless(ctx, ns)).To(BeEmpty(), "a crashed delete left a Secret without an owner")
				o.start()
				for _, name := range names {
					Expect(retried(func() int { return d.delete(o, ns, ids[name]) })).To(BeElementOf(200, 204, 404), "%s: a delete after the crash", name)
					Expect(d.get(o, ns, ids[name])).To(Equal(404), name)
				}
				// What may remain are Secrets owned by a deleted key, which
				// the garbage collector removes (kube-controller-manager;
				// see internal/devenv's garbage collection test).
				Expect(ownerless(ctx, ns)).To(BeEmpty())

				By("no name is blocked: each deleted name is created anew, and its token verifies")
				var slowest time.Duration
				for _, name := range names {
					var tok string
					Expect(retried(func() int { st, t, _ := d.create(o, ns, name); tok = t; return st })).To(Equal(201), "%s: a create after the crashed deletes", name)
					// The verify cache learns a token from the key's status,
					// which the controller writes once it has seen the
					// Secret: a moment after the 201, not with it.
					slowest = max(slowest, expectVerifiesSoon(ctx, o, ns, name, tok))
					tokens = append(tokens, tok)
				}
				GinkgoWriter.Printf("slowest 201-to-verified after a re-create: %v\n", slowest.Round(time.Millisecond))
			}
			Expect(o.proc.Stop(10 * time.Second)).To(Succeed())
			for _, r := range created {
				if r.token != "" {
					tokens = append(tokens, r.token)
				}
			}
			Expect(testkit.Leaks(tokens, map[string]string{"the operator's log": logBuf.String()})).To(BeEmpty(), "a token in the log of crashed and retried writes")
		})
	}
})
