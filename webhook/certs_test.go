package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/apikey-operator/apikey-operator/webhook"
	"github.com/apikey-operator/apikey-operator/webhook/certs"
)

// bundles returns the caBundle of every webhook in both configurations.
func bundles(ctx context.Context) [][]byte {
	var out [][]byte
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: mutatingName}, m)).To(Succeed())
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: validatingName}, v)).To(Succeed())
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func allContain(bs [][]byte, ca []byte) bool {
	for _, b := range bs {
		if !bytes.Contains(b, ca) {
			return false
		}
	}
	return len(bs) > 0
}

func noneContain(bs [][]byte, ca []byte) bool {
	for _, b := range bs {
		if bytes.Contains(b, ca) {
			return false
		}
	}
	return true
}

var _ = Describe("Webhook certificates", func() {
	ctx := context.Background()

	It("generated: the operator's CA is in the caBundle of every webhook, and the one envtest installed is gone", func() {
		Expect(bundles(ctx)).To(HaveLen(4), "one mutating and three validating webhooks (ApiKey, ApiKeyRole, ApiConsumer)")
		Expect(allContain(bundles(ctx), rotator.CABundle())).To(BeTrue())
		Expect(noneContain(bundles(ctx), env.Webhook().CAPEM)).To(BeTrue())
	})

	It("generated: renews before expiry, trusts the new CA before serving with it, and drops expired CAs", func() {
		second, err := certs.New(certs.Config{
			Hosts:                          []string{"127.0.0.1"},
			MutatingWebhookConfiguration:   mutatingName,
			ValidatingWebhookConfiguration: validatingName,
			Validity:                       3 * time.Second,
			Resync:                         200 * time.Millisecond,
			Propagation:                    200 * time.Millisecond,
		})
		Expect(err).NotTo(HaveOccurred())
		second.SetClients(k8s, k8s)
		rctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { _ = second.Start(rctx) }()

		first := second.CABundle()
		Eventually(func() bool { return allContain(bundles(ctx), first) }).Should(BeTrue())
		Eventually(second.CABundle).WithTimeout(10 * time.Second).ShouldNot(Equal(first))
		renewed := second.CABundle()
		Expect(allContain(bundles(ctx), renewed)).To(BeTrue(), "the new CA is trusted before it is served")
		Eventually(func() bool { return noneContain(bundles(ctx), first) }).WithTimeout(10*time.Second).Should(BeTrue(), "the expired CA is dropped")
		Expect(allContain(bundles(ctx), rotator.CABundle())).To(BeTrue(), "another replica's CA stays")
		Expect(k8s.Create(ctx, apiKey(newNamespace(ctx, nil), "still-served"))).To(Succeed())
	})

	It("from files: serves tls.crt and tls.key of --webhook-cert-dir", func() {
		hooks := env.Webhook()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := l.Addr().(*net.TCPAddr).Port
		Expect(l.Close()).To(Succeed())

		server, rot, err := webhook.NewServer(webhook.ServerOptions{Host: "127.0.0.1", Port: port, CertDir: hooks.CertDir})
		Expect(err).NotTo(HaveOccurred())
		Expect(rot).To(BeNil(), "no generated certificates when files are given")
		server.Register("/ping", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pong")) }))
		sctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { _ = server.Start(sctx) }()

		pool := x509.NewCertPool()
		Expect(pool.AppendCertsFromPEM(hooks.CAPEM)).To(BeTrue())
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		Eventually(func() error {
			resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/ping", port))
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})
