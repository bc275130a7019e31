package hardening_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

var _ = Describe("Crash safety", func() {
	ctx := context.Background()

	// crashAt runs a controller that dies at the fault, checks the state
	// it left, restarts a fresh one and checks it converges.
	type window struct {
		name   string
		rule   rule
		rotate bool // the fault is in a rotation of an issued key
		// torn: the crash left a Secret whose token status does not
		// record yet, the state the restart must repair.
		torn bool
	}
	for i, w := range []window{
		{name: "Secret created, status write never sent", rule: rule{kind: statusPatch}, torn: true},
		{name: "Secret created, its answer lost", rule: rule{kind: secretCreate, after: true}, torn: true},
		{name: "Secret create never sent", rule: rule{kind: secretCreate}},
		{name: "rotation: Secret updated, status write never sent", rule: rule{kind: statusPatch}, rotate: true, torn: true},
		{name: "rotation: Secret updated, its answer lost", rule: rule{kind: secretUpdate, after: true}, rotate: true, torn: true},
		{name: "rotation: Secret update never sent", rule: rule{kind: secretUpdate}, rotate: true},
	} {
		It(fmt.Sprintf("converges after a crash: %s", w.name), func() {
			ns := newNamespace(ctx, fmt.Sprintf("crash-fault-%d", i))
			const n = 3
			var before map[string]*keyState
			if w.rotate {
				c := startController(env.Config, ns, nil, 2)
				for k := range n {
					makeKey(ctx, ns, fmt.Sprintf("k%d", k), func(key *keysv1.ApiKey) {
						key.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}
					})
				}
				c.stop()
				before = expectConverged(Default, ctx, ns, n)
			}
			r := w.rule
			f := &faults{rules: []*rule{&r}}
			crashed := startController(env.Config, ns, f, 1)
			if w.rotate {
				for k := range n {
					key := &keysv1.ApiKey{}
					Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("k%d", k)}, key)).To(Succeed())
					key.Annotations = map[string]string{keysv1.RotateAnnotation: "1"}
					Expect(k8s.Update(ctx, key)).To(Succeed())
				}
			} else {
				for k := range n {
					Expect(k8s.Create(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("k%d", k)}})).To(Succeed())
				}
			}
			Eventually(crashed.done).WithTimeout(60*time.Second).Should(BeClosed(), "the fault fired and the controller died")
			Expect(f.fired()).To(BeTrue())
			atCrash := keyStates(ctx, ns)
			torn := 0
			for name, st := range atCrash {
				Expect(name).NotTo(HavePrefix("orphan:"))
				Expect(len(st.secrets)).To(BeNumerically("<=", 1), name)
				if len(st.secrets) == 1 && st.key.Status.Hash != hashOf(st.token()) {
					torn++
				}
			}
			if w.torn {
				Expect(torn).To(BeNumerically(">", 0), "the crash hit the window: a Secret's token is not in status yet")
			}

			fresh := startController(env.Config, ns, nil, 2)
			defer fresh.stop()
			var after map[string]*keyState
			Eventually(func(g Gomega) {
				after = expectConverged(g, ctx, ns, n)
				if w.rotate {
					for _, st := range after {
						g.Expect(st.key.Status.ObservedRotateAnnotation).To(Equal("1"))
					}
				}
			}).WithTimeout(60 * time.Second).Should(Succeed())

			for name, st := range after {
				crash := atCrash[name]
				switch {
				case w.rotate && crash.token() != before[name].token():
					// Rotated before the crash: finished with that token,
					// not rotated a second time.
					Expect(st.token()).To(Equal(crash.token()), "%s: a rotated token must not be regenerated", name)
				case w.rotate:
					Expect(st.token()).NotTo(Equal(before[name].token()), "%s: the rotation must happen", name)
				case len(crash.secrets) == 1:
					Expect(st.token()).To(Equal(crash.token()), "%s: an issued token must not be regenerated", name)
				}
				if w.rotate {
					Expect(st.key.Status.LastRotatedAt).NotTo(BeNil(), name)
					Expect(st.key.Status.PreviousHashes).To(ContainElement(HaveField("Hash", before[name].key.Status.Hash)),
						"%s: the token before the rotation stays valid for its grace period", name)
				}
			}
		})
	}

	It("converges after SIGKILLs of the operator binary while issuing and while rotating", func() {
		ns := newNamespace(ctx, "crash-kill")
		bin := operatorBinary()
		var logBuf testkit.SyncBuffer
		run := func() *proc.Process {
			p, err := proc.Start(bin, []string{"controller", "--kubeconfig", env.Kubeconfig, "--disable-webhooks",
				"--watch-namespaces", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "debug"}, proc.Options{Out: &logBuf})
			Expect(err).NotTo(HaveOccurred())
			return p
		}
		kill := func(p *proc.Process) { p.Kill() }
		n := envInt("HARDENING_KILL_KEYS", 30)
		rounds := envInt("HARDENING_KILL_ROUNDS", 1)

		p := run()
		for k := range n {
			Expect(k8s.Create(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("k%d", k)},
				Spec: keysv1.ApiKeySpec{Rotation: &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}}})).To(Succeed())
		}
		By("SIGKILL as soon as the first Secret exists")
		Eventually(func() int {
			l := &corev1.SecretList{}
			Expect(k8s.List(ctx, l, client.InNamespace(ns))).To(Succeed())
			return len(l.Items)
		}).WithTimeout(60 * time.Second).WithPolling(5 * time.Millisecond).Should(BeNumerically(">", 0))
		kill(p)
		atKill := keyStates(ctx, ns)

		p = run()
		var issued map[string]*keyState
		Eventually(func(g Gomega) { issued = expectConverged(g, ctx, ns, n) }).WithTimeout(90 * time.Second).Should(Succeed())
		for name, st := range atKill {
			Expect(len(st.secrets)).To(BeNumerically("<=", 1), name)
			if len(st.secrets) == 1 {
				Expect(issued[name].token()).To(Equal(st.token()), "%s: an issued token must not be regenerated", name)
			}
		}

		for round := 1; round <= rounds; round++ {
			By(fmt.Sprintf("round %d: SIGKILL as soon as the first rotated token is in a Secret", round))
			mark := fmt.Sprint(round)
			for k := range n {
				key := &keysv1.ApiKey{}
				Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("k%d", k)}, key)).To(Succeed())
				key.Annotations = map[string]string{keysv1.RotateAnnotation: mark}
				Expect(k8s.Update(ctx, key)).To(Succeed())
			}
			Eventually(func() bool {
				for name, st := range keyStates(ctx, ns) {
					if st.token() != issued[name].token() {
						return true
					}
				}
				return false
			}).WithTimeout(60 * time.Second).WithPolling(5 * time.Millisecond).Should(BeTrue())
			kill(p)
			atKill = keyStates(ctx, ns)
			p = run()
			var rotated map[string]*keyState
			Eventually(func(g Gomega) {
				rotated = expectConverged(g, ctx, ns, n)
				for _, st := range rotated {
					g.Expect(st.key.Status.ObservedRotateAnnotation).To(Equal(mark))
				}
			}).WithTimeout(90 * time.Second).Should(Succeed())
			for name, st := range rotated {
				Expect(st.token()).NotTo(Equal(issued[name].token()), "%s: rotated", name)
				if atKill[name].token() != issued[name].token() {
					Expect(st.token()).To(Equal(atKill[name].token()), "%s: a rotated token must not be regenerated", name)
				}
				Expect(st.key.Status.PreviousHashes).To(ContainElement(HaveField("Hash", issued[name].key.Status.Hash)), name)
			}
			issued = rotated
		}
		Expect(p.Stop(10 * time.Second)).To(Succeed())
		Expect(bytes.Contains([]byte(logBuf.String()), []byte("Starting workers"))).To(BeTrue(), "the binary ran its controller")
	})
})
