package apiserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/internal/serving"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// --metrics-secure (issue 11, point 6), the default: the metrics endpoint
// over HTTPS with controller-runtime's authentication and authorisation
// filter behind internal/metricsauth (served by internal/serving), checked against the real
// kube-apiserver's TokenReview and SubjectAccessReview with its static
// (non-JWT) tokens.
var _ = Describe("secure metrics", func() {
	It("answers 401 without a token, 403 without the right, and the metrics with get on /metrics", func() {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		Expect(k8s.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-test"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}})).To(Succeed())
		Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-test"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader-test"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "sha-user"}}})).To(Succeed())

		port := freePort()
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                 scheme(),
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		Expect(err).NotTo(HaveOccurred())
		o := operator.NewOptions()
		metrics, err := serving.Metrics(fmt.Sprintf("127.0.0.1:%d", port), o.Serving.MetricsSecure, ctrlmetrics.Registry,
			mgr.GetConfig(), mgr.GetHTTPClient(), o.Connections, GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(mgr.Add(metrics)).To(Succeed())
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(ctx)).To(Succeed())
		}()
		// The certificate is self-signed: the test checks authorisation, not TLS.
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
		get := func(tok string) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
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
		Eventually(func() int { s, _ := get(""); return s }).WithTimeout(20 * time.Second).Should(Equal(401))
		Eventually(func() int { s, _ := get(staticToken); return s }).Should(Equal(403))
		Eventually(func() int { s, _ := get(openShiftToken); return s }).Should(Equal(200))
		_, body := get(openShiftToken)
		Expect(body).To(ContainSubstring("# HELP"))
		// An API key is no Kubernetes token: refused before any TokenReview
		// (internal/metricsauth's unit test counts the reviews).
		key, err := token.Mint(token.DefaultPrefix)
		Expect(err).NotTo(HaveOccurred())
		code, _ := get(key)
		Expect(code).To(Equal(401))

		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err == nil {
			defer resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "plain HTTP is not served")
		}
	})
})
