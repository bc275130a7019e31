//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func chartScenarios() {
	Describe("the chart with default values", func() {
		It("runs every pod Ready, as non-root with a read-only root filesystem and no capabilities, from the image built here", func(ctx SpecContext) {
			pods, err := cs.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(pods.Items).To(HaveLen(4), "two controller and two API server replicas")
			for _, pod := range pods.Items {
				Expect(podReady(pod)).To(BeTrue(), "pod %s not Ready", pod.Name)
				for _, c := range pod.Status.ContainerStatuses {
					Expect(c.Image).To(Equal(opImage), "pod %s runs another image", pod.Name)
					Expect(c.RestartCount).To(BeZero(), "pod %s restarted", pod.Name)
					// What the kernel says about the container's processes,
					// not what the pod spec asks for.
					pids := containerPIDs(c.ContainerID)
					Expect(pids).NotTo(BeEmpty(), "no process found for %s/%s", pod.Name, c.Name)
					for _, pid := range pids {
						status := procFile(pid, "status")
						Expect(field(status, "Uid:")).To(Equal("65532 65532 65532 65532"), "pod %s", pod.Name)
						Expect(field(status, "CapEff:")).To(Equal("0000000000000000"), "pod %s has capabilities", pod.Name)
						Expect(field(status, "NoNewPrivs:")).To(Equal("1"), "pod %s may gain privileges", pod.Name)
						Expect(rootMountOptions(pid)).To(ContainElement("ro"), "pod %s: root filesystem is writable", pod.Name)
					}
				}
			}
		})

		It("makes the APIService Available through the API server's Service", func(ctx SpecContext) {
			Expect(apiServiceAvailable(ctx)).To(BeTrue())
		})

		It("answers both admission webhooks through the webhook Service", func(ctx SpecContext) {
			ensureNamespace(ctx, "e2e-hooks")
			// Mutating: defaults written by the webhook.
			key := createKey(ctx, "e2e-hooks", "defaulted", "x:read")
			Expect(key.Spec.ExpiresAt).NotTo(BeNil(), "the mutating webhook did not default spec.expiresAt")
			Expect(string(key.Spec.Name)).To(Equal("defaulted"))
			// Validating: a role that does not exist is refused by the webhook.
			bad := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "e2e-hooks", Name: "bad"},
				Spec: keysv1.ApiKeySpec{RoleRef: &keysv1.RoleReference{Name: "no-such-role"}}}
			err := k8s.Create(ctx, bad)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring("admission webhook"), "refused, but not by the webhook")
			slices, err := cs.DiscoveryV1().EndpointSlices(releaseNS).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + webhookSvc})
			Expect(err).NotTo(HaveOccurred())
			Expect(slices.Items).NotTo(BeEmpty())
			Expect(slices.Items[0].Endpoints).To(HaveLen(2), "every controller replica serves the webhooks")
		})

		It("serves probes, and metrics over HTTPS to authorised scrapers only, on the ports the chart declares", func(ctx SpecContext) {
			// A scraper bound to the chart's metrics-reader ClusterRole, as
			// Prometheus would be, and one without that right.
			reader := scraperToken(ctx, "prometheus", true)
			nobody := scraperToken(ctx, "nobody", false)
			pods, err := cs.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			plain := &http.Client{Timeout: 5 * time.Second}
			// The processes sign their own metrics certificates; the
			// ServiceMonitor skips verification alike and the token decides.
			tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
			get := func(hc *http.Client, url, tok string) (int, string) {
				GinkgoHelper()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := hc.Do(req)
				Expect(err).NotTo(HaveOccurred(), url)
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			for _, pod := range pods.Items {
				ports := map[string]int32{}
				for _, p := range pod.Spec.Containers[0].Ports {
					ports[p.Name] = p.ContainerPort
				}
				Expect(ports).To(HaveKey("metrics"), pod.Name)
				Expect(ports).To(HaveKey("probes"), pod.Name)
				for _, path := range []string{"/healthz", "/readyz"} {
					url := fmt.Sprintf("http://%s:%d%s", pod.Status.PodIP, ports["probes"], path)
					code, body := get(plain, url, "")
					Expect(code).To(Equal(http.StatusOK), "%s: %s", url, body)
				}
				url := fmt.Sprintf("https://%s:%d/metrics", pod.Status.PodIP, ports["metrics"])
				Eventually(func() int { code, _ := get(tlsClient, url, reader); return code }).WithContext(ctx).
					WithTimeout(30*time.Second).Should(Equal(http.StatusOK), "%s with the reader's token", url)
				_, body := get(tlsClient, url, reader)
				Expect(body).To(ContainSubstring("# HELP"), url)
				code, body := get(tlsClient, url, "")
				Expect(code).To(Equal(http.StatusUnauthorized), "%s without a token: %s", url, body)
				code, body = get(tlsClient, url, nobody)
				Expect(code).To(Equal(http.StatusForbidden), "%s with a token without the right: %s", url, body)
				code, _ = get(plain, fmt.Sprintf("http://%s:%d/metrics", pod.Status.PodIP, ports["metrics"]), reader)
				Expect(code).NotTo(Equal(http.StatusOK), "%s is served over plain HTTP", url)
			}
			// Through the controller's metrics Service, as a ServiceMonitor
			// finds it.
			url := fmt.Sprintf("https://%s:8080/metrics", serviceIP(ctx, releaseNS, controller+"-metrics"))
			code, body := get(tlsClient, url, reader)
			Expect(code).To(Equal(http.StatusOK), "%s: %.200s", url, body)
		})
	})
}

// scraperToken is the token of ServiceAccount e2e-metrics/name, bound to
// the chart's metrics-reader ClusterRole when reader is true.
func scraperToken(ctx context.Context, name string, reader bool) string {
	GinkgoHelper()
	const ns = "e2e-metrics"
	ensureNamespace(ctx, ns)
	Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))).To(Succeed())
	if reader {
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-metrics-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}}))).To(Succeed())
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPIDs finds a container's processes through the node's pids
// cgroup: .../pod<uid>/<container id>/cgroup.procs.
func containerPIDs(containerID string) []string {
	GinkgoHelper()
	_, id, _ := strings.Cut(containerID, "://")
	var pids []string
	root := filepath.Join("/sys/fs/cgroup/pids", os.Getenv("E2E_CGROUP"))
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && id != "" && d.Name() == id {
			b, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			pids = append(pids, strings.Fields(string(b))...)
		}
		return nil
	})
	return pids
}

func procFile(pid, name string) string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, name))
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// field is the value of a "Name:\tvalue" line of /proc/<pid>/status, with
// runs of whitespace made single spaces.
func field(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.Join(strings.Fields(rest), " ")
		}
	}
	return ""
}

// rootMountOptions are the mount options of the process's "/".
func rootMountOptions(pid string) []string {
	GinkgoHelper()
	for _, line := range strings.Split(procFile(pid, "mountinfo"), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			return strings.Split(f[5], ",")
		}
	}
	return nil
}
