//go:build e2e

package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// leaseName is the controller's leader-election Lease.
const leaseName = "apikey-operator.keys.apikey-operator.io"

func leader(ctx SpecContext) string {
	var lease coordinationv1.Lease
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: leaseName}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// leaderPod is the controller pod holding the Lease (its identity starts
// with the pod's host name).
func leaderPod(ctx SpecContext) string {
	holder := leader(ctx)
	for _, p := range releasePods(ctx, "controller") {
		if holder != "" && strings.HasPrefix(holder, p.Name) {
			return p.Name
		}
	}
	return ""
}

func disruptionScenarios() {
	Describe("disruptions", func() {
		It("moves leadership to another controller replica when the leader's pod is deleted, and keys still become Ready", func(ctx SpecContext) {
			var first string
			Eventually(func() string { first = leaderPod(ctx); return first }).WithContext(ctx).WithTimeout(time.Minute).ShouldNot(BeEmpty())
			others := []string{}
			for _, n := range podNames(releasePods(ctx, "controller")) {
				if n != first {
					others = append(others, n)
				}
			}
			Expect(others).To(HaveLen(1))
			deleted := time.Now()
			Expect(cs.CoreV1().Pods(releaseNS).Delete(ctx, first, metav1.DeleteOptions{})).To(Succeed())
			// The old leader releases the Lease on its way out
			// (LeaderElectionReleaseOnCancel, after the chart's 5 s preStop
			// sleep); the surviving replica and the Deployment's
			// replacement pod both compete for it, and either may win.
			var next string
			Eventually(func() string { next = leaderPod(ctx); return next }).WithContext(ctx).WithTimeout(2*time.Minute).WithPolling(500*time.Millisecond).
				ShouldNot(Or(BeEmpty(), Equal(first)), func() string { return "lease holder " + leader(ctx) + "\n" + podDiagnostics(ctx) })
			who := "the replacement pod"
			if next == others[0] {
				who = "the surviving replica"
			}
			GinkgoWriter.Printf("leadership moved from %s to %s (%s) in %s\n", first, next, who, time.Since(deleted).Round(100*time.Millisecond))
			createKey(ctx, nsA, "after-failover", "x:read")
			readyToken(ctx, nsA, "after-failover", 90*time.Second)
			waitReleaseReady(ctx)
		})

		It("keeps verifying through the Service while an API server pod is evicted under its PodDisruptionBudget (zero failures)", func(ctx SpecContext) {
			startClient(ctx, nsA, "loop-evict", "", loopVerify(ctx, nsA, tokenA, 45*time.Second))
			waitClientStarted(ctx, nsA, "loop-evict")
			time.Sleep(8 * time.Second) // let the client count for a while first
			victim := releasePods(ctx, "apiserver")[0].Name
			Expect(cs.CoreV1().Pods(releaseNS).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: victim}})).To(Succeed())
			results := clientResults(ctx, nsA, "loop-evict", 3*time.Minute)
			Expect(results[0].Failed).To(BeZero(), "verifications failed during the eviction:\n%s", summary(results))
			Expect(results[0].OK).To(BeNumerically(">", 100), summary(results))
			waitReleaseReady(ctx)
			Expect(podNames(releasePods(ctx, "apiserver"))).NotTo(ContainElement(victim))
		})

		It("rolls both Deployments on helm upgrade with zero failed verifications", func(ctx SpecContext) {
			before := append(podNames(releasePods(ctx, "controller")), podNames(releasePods(ctx, "apiserver"))...)
			startClient(ctx, nsA, "loop-upgrade", "", loopVerify(ctx, nsA, tokenA, 100*time.Second))
			waitClientStarted(ctx, nsA, "loop-upgrade")
			time.Sleep(5 * time.Second)
			helm(ctx, "upgrade", release, repo+"/charts/apikey-operator", "-n", releaseNS, "--reuse-values", "--set", "logLevel=debug", "--wait", "--timeout", "5m")
			waitReleaseReady(ctx)
			after := append(podNames(releasePods(ctx, "controller")), podNames(releasePods(ctx, "apiserver"))...)
			Expect(after).To(HaveLen(4))
			for _, p := range after {
				Expect(before).NotTo(ContainElement(p), "pod %s survived the upgrade: a Deployment did not roll", p)
			}
			results := clientResults(ctx, nsA, "loop-upgrade", 3*time.Minute)
			Expect(results[0].Failed).To(BeZero(), "verifications failed during the upgrade:\n%s", summary(results))
		})
	})
}
