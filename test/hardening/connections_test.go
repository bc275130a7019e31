package hardening_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// holdConnections opens n connections from source to addr, sends one
// keep-alive request on each, and returns those the server answered and
// kept open; the others it closed at once.
func holdConnections(source, addr string, n int) []net.Conn {
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	req := []byte("GET /v1/auth HTTP/1.1\r\nHost: x\r\n\r\n")
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 1024)
			if _, err := c.Write(req); err != nil {
				c.Close()
				return
			}
			if _, err := c.Read(buf); err != nil {
				c.Close()
				return
			}
			_ = c.SetDeadline(time.Time{})
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return held
}

// openFiles is the number of file descriptors pid holds.
func openFiles(pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	Expect(err).NotTo(HaveOccurred())
	return len(fds)
}

var _ = Describe("Connection limits", func() {
	ctx := context.Background()

	It("bounds each listener's connections per address and in all, keeps other clients and the probes served, and frees the files after a flood", func() {
		ns := newNamespace(ctx, "connections")
		probePort, webhookPort, metricsPort := freePort(), freePort(), freePort()
		var logBuf testkit.SyncBuffer
		// Every listener of the process gets the same small limits here:
		// verify's are what the flood meets, and the webhook's, the
		// probes' and metrics' are counted apart from them.
		o := newRESTOperator(ns, "", &logBuf, env.Kubeconfig, "--max-connections=300", "--max-connections-per-address=40",
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--metrics-secure=false",
			"--disable-webhooks=false", "--webhook-host", "127.0.0.1", "--webhook-port", fmt.Sprint(webhookPort),
			"--webhook-cert-hosts", "127.0.0.1", "--mutating-webhook-configuration", "", "--validating-webhook-configuration", "")
		DeferCleanup(func() { _ = o.proc.Stop(10 * time.Second) })
		pid := o.proc.Pid()

		By("the soft file limit was raised to the hard one at start")
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		Expect(err).NotTo(HaveOccurred())
		for _, line := range strings.Split(string(limits), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(line)
				Expect(f[3]).To(Equal(f[4]), "soft and hard limits of open files: %s", line)
			}
		}

		_, tok := makeKey(ctx, ns, "good", nil)
		Eventually(func() int { return o.verifies(tok) }).WithTimeout(20 * time.Second).Should(Equal(200))
		before := openFiles(pid)
		verifyAddr := fmt.Sprintf("127.0.0.1:%d", o.vfy)

		By("one address holds what it can on the verify port: the per-address limit")
		flood := holdConnections("127.0.0.2", verifyAddr, 200)
		Expect(len(flood)).To(BeNumerically("<=", 40), "connections held from one address")
		Expect(len(flood)).To(BeNumerically(">=", 30), "the flood did reach the limit")
		Expect(o.verifies(tok)).To(Equal(200), "a client from another address, on a new connection, during the flood")
		By("many addresses together: the total")
		for i := 3; i < 12; i++ {
			flood = append(flood, holdConnections(fmt.Sprintf("127.0.0.%d", i), verifyAddr, 40)...)
		}
		Expect(len(flood)).To(BeNumerically("<=", 300), "connections held on the listener")
		Expect(openFiles(pid)).To(BeNumerically("<", before+300+50), "the flood's files are bounded by the limit")

		By("other listeners and their clients are unaffected: the REST port, the probes, the webhook, metrics")
		st, _ := o.call("GET", "/api/"+ns+"/admin/apiKeys", nil)
		Expect(st).To(Equal(200))
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(200), "/readyz (the webhook's readiness among its checks) while verify is saturated")
		// The webhook answers over TLS: an AdmissionReview that is not one
		// gets the webhook's own refusal, not a dropped connection.
		wh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a liveness call, not a trust decision
		resp, err = wh.Post(fmt.Sprintf("https://127.0.0.1:%d/validate-keys-apikey-operator-io-v1alpha1-apikey", webhookPort), "application/json", strings.NewReader("{}"))
		Expect(err).NotTo(HaveOccurred(), "the webhook while verify is saturated")
		resp.Body.Close()
		Expect(resp.StatusCode).To(BeNumerically("<", 500))

		By("the refusals are counted by listener and limit, with no key material in the metric")
		resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(string(body)).To(MatchRegexp(`apikey_connections_refused_total\{listener="verify",reason="per_address"\} [1-9]`))
		Expect(string(body)).To(MatchRegexp(`apikey_connections_open\{listener="verify"\} [1-9]`))
		// The flooding addresses are 127.0.0.2-11; 127.0.0.1 does appear,
		// as client-go's kube-apiserver host, which is no client's.
		Expect(string(body)).NotTo(MatchRegexp(`127\.0\.0\.([2-9]|1[01])[^0-9]`), "no client address in a series")
		Expect(testkit.Leaks([]string{tok}, map[string]string{"metrics": string(body)})).To(BeEmpty())

		By("after the flood, new clients get in and the files are given back")
		for _, c := range flood {
			c.Close()
		}
		Eventually(func() int { return o.verifies(tok) }).WithTimeout(10 * time.Second).Should(Equal(200))
		Eventually(func() int { return openFiles(pid) }).WithTimeout(30*time.Second).Should(BeNumerically("<=", before+10),
			"open files after the flood, against %d before", before)
		again := holdConnections("127.0.0.2", verifyAddr, 20)
		Expect(again).To(HaveLen(20), "the address that flooded is served again once its connections are gone")
		for _, c := range again {
			c.Close()
		}
	})
})

var _ = Describe("The REST port's idle timeout", func() {
	It("closes a keep-alive connection idle for --connection-idle-timeout, not k8s.io/apiserver's 90 s", func() {
		ns := newNamespace(context.Background(), "rest-idle")
		var logBuf testkit.SyncBuffer
		o := newRESTOperator(ns, "", &logBuf, env.Kubeconfig, "--connection-idle-timeout=2s")
		DeferCleanup(func() { _ = o.proc.Stop(10 * time.Second) })
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", o.secure), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // the test checks the connection, not its certificate
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		_, err = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		Expect(err).NotTo(HaveOccurred())
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		// Idle now: the server closes it. Were the 90 s still in force,
		// the read would time out instead.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Read(make([]byte, 1))
		Expect(err).To(HaveOccurred())
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the idle connection was closed by the server, not still open: %v", err)
	})
})

// holdRaw opens n TCP connections from source to addr and sends nothing:
// a connection over a limit is closed by the server at once (the read
// ends), one under it waits for a TLS ClientHello or gRPC's preface (the
// read times out). It returns those held.
func holdRaw(source, addr string, n int) []net.Conn {
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			// gRPC writes its SETTINGS frame first: bytes mean held too.
			if n, err := c.Read(make([]byte, 1)); n == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
				c.Close()
				return
			}
			_ = c.SetReadDeadline(time.Time{})
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return held
}

var _ = Describe("Connection limits on the REST and ext_authz ports", func() {
	It("refuse one address's flood on each port while another address is served there, and count the refusals", func() {
		ctx := context.Background()
		ns := newNamespace(ctx, "connections-rest")
		extPort, metricsPort := freePort(), freePort()
		var logBuf testkit.SyncBuffer
		o := newRESTOperator(ns, "", &logBuf, env.Kubeconfig, "--max-connections=300", "--max-connections-per-address=40",
			"--ext-authz-bind-address", fmt.Sprintf("127.0.0.1:%d", extPort),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--metrics-secure=false")
		DeferCleanup(func() { _ = o.proc.Stop(10 * time.Second) })
		_, tok := makeKey(ctx, ns, "good", nil)
		Eventually(func() int { return o.verifies(tok) }).WithTimeout(20 * time.Second).Should(Equal(200))

		check := func() (int32, error) {
			conn, err := grpc.NewClient(fmt.Sprintf("passthrough:///127.0.0.1:%d", extPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := authv3.NewAuthorizationClient(conn).Check(cctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Path: "/", Headers: map[string]string{"authorization": "Bearer " + tok},
				}},
				ContextExtensions: map[string]string{"namespace": ns},
			}})
			if err != nil {
				return 0, err
			}
			return resp.GetStatus().GetCode(), nil
		}
		Eventually(check).WithTimeout(20*time.Second).Should(BeZero(), "ext_authz allows the key before the flood")

		By("the REST (secure) port: 127.0.0.2 floods, 127.0.0.1 is served")
		rest := holdRaw("127.0.0.2", fmt.Sprintf("127.0.0.1:%d", o.secure), 200)
		DeferCleanup(func() {
			for _, c := range rest {
				c.Close()
			}
		})
		Expect(len(rest)).To(BeNumerically("<=", 40), "connections held from one address on the REST port")
		Expect(len(rest)).To(BeNumerically(">=", 30), "the flood did reach the limit")
		st, _ := o.call("GET", "/api/"+ns+"/admin/apiKeys", nil)
		Expect(st).To(Equal(200), "the REST port from another address during its flood")

		By("the ext_authz port: 127.0.0.3 floods, 127.0.0.1 is served")
		ext := holdRaw("127.0.0.3", fmt.Sprintf("127.0.0.1:%d", extPort), 200)
		DeferCleanup(func() {
			for _, c := range ext {
				c.Close()
			}
		})
		Expect(len(ext)).To(BeNumerically("<=", 40), "connections held from one address on the ext_authz port")
		Expect(len(ext)).To(BeNumerically(">=", 30), "the flood did reach the limit")
		code, err := check()
		Expect(err).NotTo(HaveOccurred(), "ext_authz from another address during its flood")
		Expect(code).To(BeZero(), "ext_authz allows the key during the flood")

		By("both refusals are counted under their listener")
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(string(body)).To(MatchRegexp(`apikey_connections_refused_total\{listener="api",reason="per_address"\} [1-9]`))
		Expect(string(body)).To(MatchRegexp(`apikey_connections_refused_total\{listener="ext-authz",reason="per_address"\} [1-9]`))
	})
})
