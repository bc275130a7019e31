package hardening_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// patient retries a conflicting write until it lands: with 50 writers on
// ten keys and the controller writing status, five attempts (client-go's
// DefaultRetry) are not always enough.
var patient = wait.Backoff{Steps: 2000, Duration: 10 * time.Millisecond, Factor: 1, Jitter: 2}

var _ = Describe("Conflicts", func() {
	ctx := context.Background()

	It("loses no user edit while the controller writes status, and goes quiet after", func() {
		ns := newNamespace(ctx, "conflict")
		c := startController(env.Config, ns, nil, 4)
		defer c.stop()
		const keys = 10
		writers := envInt("HARDENING_WRITERS", 50)
		edits := envInt("HARDENING_EDITS", 4) // per writer
		for k := range keys {
			makeKey(ctx, ns, fmt.Sprintf("k%d", k), func(key *keysv1.ApiKey) {
				key.Spec.Permissions = []keysv1.Permission{"base:read"}
			})
		}

		By(fmt.Sprintf("%d writers each add their own permissions, rotate and edit the description, retrying on conflict", writers))
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				name := fmt.Sprintf("k%d", w%keys)
				for e := range edits {
					err := retry.RetryOnConflict(patient, func() error {
						key := &keysv1.ApiKey{}
						if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key); err != nil {
							return err
						}
						key.Spec.Permissions = append(key.Spec.Permissions, keysv1.Permission(fmt.Sprintf("w%d:e%d", w, e)))
						key.Spec.Description = fmt.Sprintf("writer %d edit %d", w, e)
						if e == edits-1 {
							if key.Annotations == nil {
								key.Annotations = map[string]string{}
							}
							key.Annotations[keysv1.RotateAnnotation] = fmt.Sprint(w)
						}
						return k8s.Update(ctx, key)
					})
					Expect(err).NotTo(HaveOccurred())
				}
			}()
		}
		wg.Wait()

		By("every edit is there and status converged with no error left")
		Eventually(func(g Gomega) {
			states := expectConverged(g, ctx, ns, keys)
			for name, st := range states {
				cond := meta.FindStatusCondition(st.key.Status.Conditions, keysv1.ConditionReady)
				g.Expect(cond).NotTo(BeNil(), name)
				g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), name)
				g.Expect(cond.Reason).To(Equal(keysv1.ReasonIssued), name)
				g.Expect(cond.ObservedGeneration).To(Equal(st.key.Generation), name)
				g.Expect(st.key.Status.ObservedRotateAnnotation).To(Equal(st.key.Annotations[keysv1.RotateAnnotation]), name)
			}
		}).WithTimeout(120 * time.Second).Should(Succeed())
		for k := range keys {
			key := &keysv1.ApiKey{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("k%d", k)}, key)).To(Succeed())
			var want []keysv1.Permission
			for w := k; w < writers; w += keys {
				for e := range edits {
					want = append(want, keysv1.Permission(fmt.Sprintf("w%d:e%d", w, e)))
				}
			}
			Expect(key.Spec.Permissions).To(ContainElements(want), "no writer's edit was lost")
			Expect(key.Spec.Permissions).To(HaveLen(len(want) + 1))
		}

		By("no hot loop: a no-op event costs a reconcile and no write, and nothing else happens")
		writes, reconciles := c.stats.writes.Load(), c.stats.reconciles.Load()
		probe := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "k0"}, probe)).To(Succeed())
		probe.Annotations["hardening/probe"] = "1"
		Expect(k8s.Update(ctx, probe)).To(Succeed())
		Eventually(c.stats.reconciles.Load).WithTimeout(30 * time.Second).Should(BeNumerically(">", reconciles))
		Consistently(c.stats.writes.Load).WithTimeout(2 * time.Second).Should(Equal(writes))
		Expect(c.stats.reconciles.Load()).To(BeNumerically("<=", reconciles+2), "reconciles stay flat after convergence")
		AddReportEntry("conflicts", fmt.Sprintf("%d writers × %d edits: controller made %d reconciles and %d writes (%d status)",
			writers, edits, c.stats.reconciles.Load(), writes, c.stats.statusWrites.Load()))
	})
})
