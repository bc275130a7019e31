package hardening_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// stallingProxy forwards TCP to kube-apiserver until stalled; then it
// keeps every connection open and forwards nothing, as a kube-apiserver
// that stopped answering (SIGSTOP, a partition) looks to its clients:
// no refusal, no reset, just no answer.
type stallingProxy struct {
	l  net.Listener
	mu sync.RWMutex // held for writing while stalled
}

func startStallingProxy(upstream string) *stallingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p := &stallingProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c, upstream)
		}
	}()
	return p
}

func (p *stallingProxy) serve(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(u, c); done <- struct{}{} }()
	go func() { p.pipe(c, u); done <- struct{}{} }()
	<-done
}

func (p *stallingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.RLock()
			_, werr := dst.Write(buf[:n])
			p.mu.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallingProxy) stall()       { p.mu.Lock() }
func (p *stallingProxy) resume()      { p.mu.Unlock() }
func (p *stallingProxy) close()       { p.l.Close() }
func (p *stallingProxy) addr() string { return p.l.Addr().String() }

// kubeconfigThrough writes a copy of the suite's kubeconfig whose server
// is the proxy.
func kubeconfigThrough(proxy string) string {
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		Expect(err).NotTo(HaveOccurred())
		u.Host = proxy
		c.Server = u.String()
	}
	path := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}

// jsonKeys are the top-level members of a JSON object answer: the shape.
func jsonKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var _ = Describe("Write deadline", func() {
	ctx := context.Background()

	It("answers a dialect write 503 with Retry-After in the dialect's shape once --rest-write-timeout passes while kube-apiserver does not answer, and serves reads from the cache", func() {
		ns := newNamespace(ctx, "write-deadline")
		role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: []keysv1.Permission{"invoices:read"}}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		u, err := url.Parse(env.Config.Host)
		Expect(err).NotTo(HaveOccurred())
		proxy := startStallingProxy(u.Host)
		stalled := false
		DeferCleanup(func() {
			if stalled {
				proxy.resume()
			}
			proxy.close()
		})
		var logBuf testkit.SyncBuffer
		// The old bound was the 60 s of the whole request, past this
		// client's 30 s: without the write deadline no answer comes.
		o := newRESTOperator(ns, keystore.IDOf(role.UID), &logBuf, kubeconfigThrough(proxy.addr()), "--rest-write-timeout=1s")
		DeferCleanup(func() { _ = o.proc.Stop(10 * time.Second) })
		existing, _ := makeKey(ctx, ns, "existing", nil)
		hubID := keystore.IDOf(existing.UID)
		Eventually(func() int { st, _, _ := o.callH("GET", "/api/"+ns+"/admin/apiKeys/existing", nil); return st }).
			WithTimeout(20 * time.Second).Should(Equal(200))

		// Each dialect's error shape, from a refusal it makes itself.
		_, _, tenantShape := o.callH("GET", "/api/"+ns+"/admin/apiKeys/absent", nil)
		_, _, hubShape := o.callH("GET", "/v1/hubs/current/api-keys/0000000000000000", nil, "X-Hub-Id", ns)
		st, _, nexusShape := o.callH("POST", "/v1/api-keys", map[string]any{"id": 12345}, "X-Namespace", ns)
		Expect(st).To(Equal(http.StatusBadRequest), "a Nexus refusal to take the shape from")

		By("kube-apiserver stops answering")
		proxy.stall()
		stalled = true
		for _, w := range []struct {
			name, method, path string
			body               any
			headers            []string
			shape              map[string]any
		}{
			{"nexus create", "POST", "/v1/api-keys", map[string]any{"id": "during-nexus"}, []string{"X-Namespace", ns}, nexusShape},
			{"tenant-admin create", "POST", "/api/" + ns + "/admin/apiKeys", map[string]any{"name": "during-tenant"}, nil, tenantShape},
			{"tenant-admin update", "PUT", "/api/" + ns + "/admin/apiKeys/existing", map[string]any{"enabled": false}, nil, tenantShape},
			{"tenant-admin delete", "DELETE", "/api/" + ns + "/admin/apiKeys/existing", nil, nil, tenantShape},
			{"hub create", "POST", "/v1/hubs/current/api-keys", map[string]any{"name": "during-hub", "role_id": keystore.IDOf(role.UID)}, []string{"X-Hub-Id", ns}, hubShape},
			{"hub update", "PATCH", "/v1/hubs/current/api-keys/" + hubID, map[string]any{"ips": []string{"10.0.0.0/8"}}, []string{"X-Hub-Id", ns}, hubShape},
			{"hub delete", "DELETE", "/v1/hubs/current/api-keys/" + hubID, nil, []string{"X-Hub-Id", ns}, hubShape},
		} {
			st, h, m := o.callH(w.method, w.path, w.body, w.headers...)
			Expect(st).To(Equal(http.StatusServiceUnavailable), w.name)
			Expect(h.Get("Retry-After")).NotTo(BeEmpty(), w.name)
			Expect(jsonKeys(m)).To(Equal(jsonKeys(w.shape)), "%s: the dialect's own error shape", w.name)
		}
		By("reads are served from the cache meanwhile")
		st, _, m := o.callH("GET", "/api/"+ns+"/admin/apiKeys/existing", nil)
		Expect(st).To(Equal(200))
		Expect(m).To(HaveKeyWithValue("name", "existing"))
		st, _, _ = o.callH("GET", "/v1/hubs/current/api-keys/"+hubID, nil, "X-Hub-Id", ns)
		Expect(st).To(Equal(200))

		By("kube-apiserver answers again: the timed-out writes are found by name, and writes work")
		proxy.resume()
		stalled = false
		Eventually(func() int {
			st, _, _ := o.callH("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "after"})
			return st
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Equal(201))
		// A timed-out create may or may not have happened: a GET by name
		// tells, as docs/rest-api.md says.
		st, _, _ = o.callH("GET", "/api/"+ns+"/admin/apiKeys/during-tenant", nil)
		Expect(st).To(BeElementOf(200, 404))
		Expect(ownerless(ctx, ns)).To(BeEmpty())
	})
})
