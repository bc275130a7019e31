//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/devenv/node"
	"github.com/apikey-operator/apikey-operator/test/e2e/plan"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "apikey-operator on a real node")
}

// What hack/e2e.sh passes in.
var (
	binDir    = os.Getenv("E2E_BIN")
	repo      = os.Getenv("E2E_REPO")
	imagesDir = os.Getenv("E2E_IMAGES")
	opImage   = os.Getenv("E2E_IMAGE")
)

const (
	release     = "apikey-operator"
	releaseNS   = "apikey-system"
	controller  = release + "-controller"
	apiserver   = release + "-apiserver"
	webhookSvc  = release + "-webhook-service"
	apiService  = "v1alpha1.access.apikey-operator.io"
	clientImage = "apikey-operator.local/e2e-client:dev"
	// The operator's serving certificate names its Service this way.
	apiserverHost = apiserver + "." + releaseNS + ".svc"
)

var (
	theNode *node.Node
	k8s     client.Client
	cs      *kubernetes.Clientset
)

var _ = BeforeSuite(func(ctx SpecContext) {
	Expect(binDir).NotTo(BeEmpty(), "run the suite with `make e2e`")
	var err error
	theNode, err = node.Start(ctx, node.Config{
		Bin: binDir, Root: os.Getenv("E2E_ROOT"), Logs: os.Getenv("E2E_LOGS"),
		CgroupRoot: os.Getenv("E2E_CGROUP"), PauseImage: os.Getenv("E2E_PAUSE_IMAGE"),
		Progress: GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(theNode.Config, client.Options{Scheme: devenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	cs, err = kubernetes.NewForConfig(theNode.Config)
	Expect(err).NotTo(HaveOccurred())

	By("loading the images built here into containerd (nothing is pulled)")
	Expect(theNode.Import(ctx, filepath.Join(imagesDir, "pause.tar"), filepath.Join(imagesDir, "apikey-operator.tar"),
		filepath.Join(imagesDir, "e2e-client.tar"))).To(Succeed())

	By("helm install with the chart's default values")
	helmInstall(ctx)
}, NodeTimeout(15*time.Minute))

var _ = AfterSuite(func() {
	if theNode != nil {
		theNode.Stop()
	}
})

// Fail early and clearly when a node component died.
var _ = AfterEach(func() {
	if theNode != nil {
		Expect(theNode.Exited()).To(BeEmpty(), "node components exited; their logs are in %s", os.Getenv("E2E_LOGS"))
	}
})

// helm runs bin/helm against the node and returns its output.
func helm(ctx context.Context, args ...string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "helm"), append([]string{"--kubeconfig", theNode.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "helm %s:\n%s\n%s", strings.Join(args, " "), out, podDiagnostics(ctx))
	return string(out)
}

// helmInstall installs the chart (default values plus sets) and waits for
// both Deployments and the APIService.
func helmInstall(ctx context.Context, sets ...string) {
	GinkgoHelper()
	args := []string{"install", release, filepath.Join(repo, "charts", "apikey-operator"), "-n", releaseNS, "--create-namespace", "--wait", "--timeout", "5m"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	helm(ctx, args...)
	waitReleaseReady(ctx)
}

// waitReleaseReady waits for every pod of both Deployments to be Ready
// and the APIService to be Available.
func waitReleaseReady(ctx context.Context) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for _, d := range []string{controller, apiserver} {
			dep, err := cs.AppsV1().Deployments(releaseNS).Get(ctx, d, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(dep.Status.ObservedGeneration).To(Equal(dep.Generation))
			g.Expect(dep.Status.UpdatedReplicas).To(Equal(*dep.Spec.Replicas), d)
			g.Expect(dep.Status.ReadyReplicas).To(Equal(*dep.Spec.Replicas), d)
			g.Expect(dep.Status.Replicas).To(Equal(*dep.Spec.Replicas), d+": old pods still terminating")
		}
		g.Expect(apiServiceAvailable(ctx)).To(BeTrue(), "APIService not Available")
	}).WithContext(ctx).WithTimeout(4*time.Minute).WithPolling(time.Second).Should(Succeed(), func() string { return podDiagnostics(ctx) })
}

func apiServiceAvailable(ctx context.Context) bool {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), "--kubeconfig", theNode.Kubeconfig, "get", "apiservice", apiService,
		"-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`).Output()
	return err == nil && string(out) == "True"
}

// podDiagnostics describes the release's pods, for failure messages.
func podDiagnostics(ctx context.Context) string {
	pods, err := cs.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " [%s ready=%v restarts=%d", c.Name, c.Ready, c.RestartCount)
			if c.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting %s: %s", c.State.Waiting.Reason, c.State.Waiting.Message)
			}
			if c.LastTerminationState.Terminated != nil {
				fmt.Fprintf(&b, " last exit %d %s", c.LastTerminationState.Terminated.ExitCode, c.LastTerminationState.Terminated.Message)
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
		logs, _ := cs.CoreV1().Pods(releaseNS).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr(int64(15))}).DoRaw(ctx)
		b.Write(logs)
	}
	events, _ := cs.CoreV1().Events(releaseNS).List(ctx, metav1.ListOptions{})
	if events != nil {
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "event %s %s: %s\n", e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

// The test client's plan and results (test/e2e/plan).
type (
	Request = plan.Request
	Plan    = plan.Plan
	Result  = plan.Result
)

// tokenPath is where a pod's ServiceAccount token is mounted.
const tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// startClient starts the test client as a pod running plan, under the
// chart's own restricted security context.
func startClient(ctx context.Context, namespace, name, serviceAccount string, p Plan) {
	GinkgoHelper()
	body, err := json.Marshal(p)
	Expect(err).NotTo(HaveOccurred())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "e2e-client"}},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: serviceAccount,
			SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65532))},
			Containers: []corev1.Container{{
				Name: "client", Image: clientImage, ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{{Name: "PLAN", Value: string(body)}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	if serviceAccount == "" {
		pod.Spec.AutomountServiceAccountToken = ptr(false)
	}
	_ = cs.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	Eventually(func() error {
		_, err := cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
}

// waitClientStarted waits until the client pod runs.
func waitClientStarted(ctx context.Context, namespace, name string) {
	GinkgoHelper()
	Eventually(func() corev1.PodPhase {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return p.Status.Phase
	}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(BeElementOf(corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed))
}

// clientResults waits for the client pod to finish and returns its
// results; a plan that did not pass is a failure with the client's log.
func clientResults(ctx context.Context, namespace, name string, timeout time.Duration) []Result {
	GinkgoHelper()
	var phase corev1.PodPhase
	Eventually(func() corev1.PodPhase {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		phase = p.Status.Phase
		return phase
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(time.Second).Should(BeElementOf(corev1.PodSucceeded, corev1.PodFailed))
	logs, err := cs.CoreV1().Pods(namespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	var results []Result
	for _, line := range strings.Split(string(logs), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			Expect(json.Unmarshal([]byte(rest), &results)).To(Succeed(), "client output: %s", logs)
		}
	}
	Expect(results).NotTo(BeEmpty(), "client pod printed no RESULT:\n%s", logs)
	Expect(phase).To(Equal(corev1.PodSucceeded), "client plan failed:\n%s", logs)
	return results
}

// runClient runs plan in a pod and waits for it.
func runClient(ctx context.Context, namespace, name, serviceAccount string, p Plan) []Result {
	GinkgoHelper()
	startClient(ctx, namespace, name, serviceAccount, p)
	return clientResults(ctx, namespace, name, 3*time.Minute)
}

// serviceIP is a Service's ClusterIP (there is no cluster DNS on the node).
func serviceIP(ctx context.Context, namespace, name string) string {
	GinkgoHelper()
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	return svc.Spec.ClusterIP
}

// apiserverCA is the CA the APIService trusts: the operator's API server's.
func apiserverCA(ctx context.Context) string {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), "--kubeconfig", theNode.Kubeconfig, "get", "apiservice", apiService, "-o", "jsonpath={.spec.caBundle}").Output()
	Expect(err).NotTo(HaveOccurred())
	pem, err := decodeB64(string(out))
	Expect(err).NotTo(HaveOccurred())
	return pem
}

// kubectl runs bin/kubectl as the admin, with stdin.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", theNode.Kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
