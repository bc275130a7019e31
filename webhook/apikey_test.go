package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/webhook"
)

var _ = Describe("ApiKey defaults", func() {
	ctx := context.Background()

	It("sets expiresAt one default lifetime after creation, spec.name and enabled", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "billing")
		Expect(k8s.Create(ctx, k)).To(Succeed())
		Expect(k.Spec.ExpiresAt).NotTo(BeNil())
		Expect(k.Spec.ExpiresAt.Time).To(Equal(now.Add(defaultLifetime)))
		Expect(k.Spec.Name).To(Equal(keysv1.KeyName("billing")))
		Expect(k.Spec.Enabled).To(HaveValue(BeTrue()))
	})

	It("keeps values that are set", func() {
		ns := newNamespace(ctx, nil)
		at := now.Add(48 * time.Hour)
		k := apiKey(ns, "billing", named("Billing_Prod"), expiringAt(at), func(k *keysv1.ApiKey) { k.Spec.Enabled = new(bool) })
		Expect(k8s.Create(ctx, k)).To(Succeed())
		Expect(k.Spec.ExpiresAt.Time).To(Equal(at))
		Expect(k.Spec.Name).To(Equal(keysv1.KeyName("Billing_Prod")))
		Expect(k.Spec.Enabled).To(HaveValue(BeFalse()))
	})

	It("shortens the default to a namespace's stricter lifetime limit", func() {
		ns := newNamespace(ctx, map[string]string{webhook.MaxKeyLifetimeAnnotation: "720h"})
		k := apiKey(ns, "short")
		Expect(k8s.Create(ctx, k)).To(Succeed())
		Expect(k.Spec.ExpiresAt.Time).To(Equal(now.Add(720 * time.Hour)))
	})

	It("counts from creation when an update drops expiresAt, instead of granting another lifetime", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "dropped", expiringAt(now.Add(time.Hour)))
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Spec.ExpiresAt = nil
		Expect(k8s.Update(ctx, k)).To(Succeed())
		Expect(k.Spec.ExpiresAt.Time).To(Equal(k.CreationTimestamp.Add(defaultLifetime)))
	})

	It("shows in kubectl apply: a key without expiresAt expires one year after it was applied", func() {
		ns := newNamespace(ctx, nil)
		out, err := kubectl("apply", "-f", "-", "-o", "jsonpath={.spec.expiresAt}").
			withStdin(fmt.Sprintf(`{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKey","metadata":{"name":"applied","namespace":%q},"spec":{}}`, ns))
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(Equal(rfc3339(now.AddDate(1, 0, 0))))
		got, err := time.Parse(time.RFC3339, out)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(BeTemporally("~", time.Now().AddDate(1, 0, 0), 5*time.Minute), "one year from the real now, too")
	})
})

var _ = Describe("ApiKey lifetime policy", func() {
	ctx := context.Background()

	It("refuses expiresAt in the past on create", func() {
		ns := newNamespace(ctx, nil)
		past := now.Add(-time.Hour)
		err := k8s.Create(ctx, apiKey(ns, "late", expiringAt(past)))
		Expect(err).To(MatchError(invalid("late", fmt.Sprintf(
			`spec.expiresAt: Invalid value: %q: must be in the future; set a later time, or leave spec.expiresAt out for the default lifetime of 8760h0m0s`, rfc3339(past)))))
	})

	It("allows a past expiresAt on update: that retires a key at once", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "retire")
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Spec.ExpiresAt = &metav1.Time{Time: now.Add(-time.Hour)}
		Expect(k8s.Update(ctx, k)).To(Succeed())
	})

	It("refuses a key that would live longer than --max-key-lifetime, saying the limit", func() {
		ns := newNamespace(ctx, nil)
		at := now.Add(clusterMax + time.Hour)
		err := k8s.Create(ctx, apiKey(ns, "long", expiringAt(at)))
		Expect(err).To(MatchError(invalid("long", fmt.Sprintf(
			`spec.expiresAt: Invalid value: %q: exceeds the maximum key lifetime of 17520h0m0s (--max-key-lifetime of apikey-operator), counted from the key's creation; set spec.expiresAt to %s or earlier`,
			rfc3339(at), rfc3339(now.Add(clusterMax))))))
		Expect(k8s.Create(ctx, apiKey(ns, "longest", expiringAt(now.Add(clusterMax))))).To(Succeed())
	})

	It("refuses it through kubectl apply too, with the limit in the message", func() {
		ns := newNamespace(ctx, nil)
		out, err := kubectl("apply", "-f", "-").withStdin(fmt.Sprintf(
			`{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKey","metadata":{"name":"long","namespace":%q},"spec":{"expiresAt":%q}}`,
			ns, rfc3339(now.AddDate(5, 0, 0))))
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("exceeds the maximum key lifetime of 17520h0m0s"))
		Expect(out).To(ContainSubstring("set spec.expiresAt to " + rfc3339(now.Add(clusterMax)) + " or earlier"))
	})

	It("applies a namespace's stricter limit from its annotation", func() {
		ns := newNamespace(ctx, map[string]string{webhook.MaxKeyLifetimeAnnotation: "720h"})
		at := now.Add(721 * time.Hour)
		err := k8s.Create(ctx, apiKey(ns, "long", expiringAt(at)))
		Expect(err).To(MatchError(invalid("long", fmt.Sprintf(
			`spec.expiresAt: Invalid value: %q: exceeds the maximum key lifetime of 720h0m0s (annotation keys.apikey-operator.io/max-key-lifetime on Namespace %q), counted from the key's creation; set spec.expiresAt to %s or earlier`,
			rfc3339(at), ns, rfc3339(now.Add(720*time.Hour))))))
	})

	It("never lets a namespace loosen the cluster's limit", func() {
		ns := newNamespace(ctx, map[string]string{webhook.MaxKeyLifetimeAnnotation: "100000h"})
		err := k8s.Create(ctx, apiKey(ns, "long", expiringAt(now.Add(clusterMax+time.Hour))))
		Expect(err).To(MatchError(ContainSubstring("maximum key lifetime of 17520h0m0s (--max-key-lifetime of apikey-operator)")))
	})

	It("refuses keys in a namespace whose annotation is not a duration, rather than ignore the policy", func() {
		ns := newNamespace(ctx, map[string]string{webhook.MaxKeyLifetimeAnnotation: "a month"})
		msg := func(hook string) string {
			return fmt.Sprintf(`admission webhook %q denied the request: apikeys.keys.apikey-operator.io "k" is forbidden: Namespace %q has annotation keys.apikey-operator.io/max-key-lifetime="a month", which is not a positive duration; ask a cluster admin to set it to one such as 720h, or to remove it`, hook, ns)
		}
		Expect(k8s.Create(ctx, apiKey(ns, "k", expiringAt(now.Add(time.Hour))))).To(MatchError(msg("vapikey.keys.apikey-operator.io")))
		Expect(k8s.Create(ctx, apiKey(ns, "k"))).To(MatchError(msg("mapikey.keys.apikey-operator.io")), "the defaulter cannot cap the default either")
	})

	It("checks a changed expiresAt on update against the key's creation", func() {
		ns := newNamespace(ctx, map[string]string{webhook.MaxKeyLifetimeAnnotation: "720h"})
		k := apiKey(ns, "extend", expiringAt(now.Add(time.Hour)))
		Expect(k8s.Create(ctx, k)).To(Succeed())
		at := k.CreationTimestamp.Add(800 * time.Hour)
		k.Spec.ExpiresAt = &metav1.Time{Time: at}
		err := k8s.Update(ctx, k)
		Expect(err).To(MatchError(invalid("extend", fmt.Sprintf(
			`spec.expiresAt: Invalid value: %q: exceeds the maximum key lifetime of 720h0m0s (annotation keys.apikey-operator.io/max-key-lifetime on Namespace %q), counted from the key's creation; set spec.expiresAt to %s or earlier`,
			rfc3339(at), ns, rfc3339(k.CreationTimestamp.Add(720*time.Hour))))))
	})

	It("does not block unrelated updates of a key that a later, stricter policy would refuse", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "grandfathered", expiringAt(now.Add(1000*time.Hour)))
		Expect(k8s.Create(ctx, k)).To(Succeed())
		setAnnotation(ctx, ns, webhook.MaxKeyLifetimeAnnotation, "720h")
		k.Spec.Description = "still fine"
		Expect(k8s.Update(ctx, k)).To(Succeed())
	})
})

var _ = Describe("ApiKey references to other objects", func() {
	ctx := context.Background()

	It("refuses a spec.name another key of the namespace has, on create and on update", func() {
		ns := newNamespace(ctx, nil)
		first := apiKey(ns, "first", named("Shared"))
		Expect(k8s.Create(ctx, first)).To(Succeed())
		cached(ctx, first)
		msg := fmt.Sprintf(`spec.name: Invalid value: "Shared": is already the name of ApiKey "first" in namespace %q; key names must be unique in a namespace because the REST API addresses keys by them: choose another spec.name`, ns)
		Expect(k8s.Create(ctx, apiKey(ns, "second", named("Shared")))).To(MatchError(invalid("second", msg)))

		second := apiKey(ns, "second", named("Other"))
		Expect(k8s.Create(ctx, second)).To(Succeed())
		second.Spec.Name = "Shared"
		Expect(k8s.Update(ctx, second)).To(MatchError(invalid("second", msg)))

		Expect(k8s.Create(ctx, apiKey(newNamespace(ctx, nil), "third", named("Shared")))).To(Succeed(), "another namespace is another tenant")
	})

	It("counts a defaulted spec.name: a key named like another key's display name is refused", func() {
		ns := newNamespace(ctx, nil)
		first := apiKey(ns, "first", named("second"))
		Expect(k8s.Create(ctx, first)).To(Succeed())
		cached(ctx, first)
		Expect(k8s.Create(ctx, apiKey(ns, "second"))).To(MatchError(ContainSubstring(`spec.name: Invalid value: "second": is already the name of ApiKey "first"`)))
	})

	It("finds a key whose display name is its object name without the index, and only by that display name", func() {
		ns := newNamespace(ctx, nil)
		alpha := apiKey(ns, "alpha")
		Expect(k8s.Create(ctx, alpha)).To(Succeed())
		renamed := apiKey(ns, "gamma", named("delta"))
		Expect(k8s.Create(ctx, renamed)).To(Succeed())
		cached(ctx, alpha)
		cached(ctx, renamed)
		Expect(k8s.Create(ctx, apiKey(ns, "beta", named("alpha")))).To(MatchError(ContainSubstring(`spec.name: Invalid value: "alpha": is already the name of ApiKey "alpha"`)))
		Expect(k8s.Create(ctx, apiKey(ns, "other", named("gamma")))).To(Succeed(), "key gamma is displayed as delta: its object name is free as a display name")
		Expect(k8s.Create(ctx, apiKey(ns, "again", named("delta")))).To(MatchError(ContainSubstring(`is already the name of ApiKey "gamma"`)))
	})

	It("refuses a roleRef to a missing role on create", func() {
		ns := newNamespace(ctx, nil)
		err := k8s.Create(ctx, apiKey(ns, "k", withRole("readers")))
		Expect(err).To(MatchError(invalid("k", fmt.Sprintf(
			`spec.roleRef.name: Invalid value: "readers": ApiKeyRole "readers" does not exist in namespace %q; create the role first, or fix spec.roleRef.name`, ns))))

		Expect(k8s.Create(ctx, role(ns, "readers", "invoices:read"))).To(Succeed())
		Expect(k8s.Create(ctx, apiKey(ns, "k", withRole("readers")))).To(Succeed(), "the role is read uncached: applied just before, it counts")
	})

	It("only warns about a missing role on update", func() {
		ns := newNamespace(ctx, nil)
		Expect(k8s.Create(ctx, role(ns, "readers"))).To(Succeed())
		k := apiKey(ns, "k", withRole("readers"))
		Expect(k8s.Create(ctx, k)).To(Succeed())
		warnings.take()
		k.Spec.RoleRef.Name = "writers"
		Expect(k8s.Update(ctx, k)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf(fmt.Sprintf(
			`ApiKeyRole "writers" does not exist in namespace %q: the key is not Ready until it does; create the role or fix spec.roleRef.name`, ns)))
	})

	It("keeps secretName immutable when it was defaulted: unset to another name is refused", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "k")
		Expect(k8s.Create(ctx, k)).To(Succeed())
		Expect(k.Spec.SecretName).To(BeEmpty())
		k.Spec.SecretName = "elsewhere"
		Expect(k8s.Update(ctx, k)).To(MatchError(invalid("k",
			`spec.secretName: Invalid value: "elsewhere": is immutable: this key's token is in Secret "k"; set spec.secretName to "k", or create a new ApiKey to use another Secret`)))
		k.Spec.SecretName = "k"
		Expect(k8s.Update(ctx, k)).To(Succeed(), "spelling out the default changes nothing")
	})

	It("keeps secretName immutable when it was set: unsetting it is refused", func() {
		ns := newNamespace(ctx, nil)
		k := apiKey(ns, "k", withSecret("k-token"))
		Expect(k8s.Create(ctx, k)).To(Succeed())
		k.Spec.SecretName = ""
		Expect(k8s.Update(ctx, k)).To(MatchError(invalid("k",
			`spec.secretName: Invalid value: "": is immutable: this key's token is in Secret "k-token"; set spec.secretName to "k-token", or create a new ApiKey to use another Secret`)))
	})

	It("refuses a secretName that names a Secret the operator does not manage for this key", func() {
		ns := newNamespace(ctx, nil)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-password"}})).To(Succeed())
		msg := func(key, secret string) string {
			return invalid(key, fmt.Sprintf(
				`spec.secretName: Invalid value: %q: Secret %q already exists in namespace %q and apikey-operator does not manage it for this key; choose another spec.secretName, or delete that Secret`,
				secret, secret, ns))
		}
		Expect(k8s.Create(ctx, apiKey(ns, "k", withSecret("db-password")))).To(MatchError(msg("k", "db-password")))
		Expect(k8s.Create(ctx, apiKey(ns, "db-password"))).To(MatchError(msg("db-password", "db-password")), "the default secretName is checked too")

		managed := func(name, forKey string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
				keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: forKey}}}
		}
		Expect(k8s.Create(ctx, managed("other-token", "other"))).To(Succeed())
		Expect(k8s.Create(ctx, apiKey(ns, "k", withSecret("other-token")))).To(MatchError(msg("k", "other-token")), "another key's Secret is not free either")

		Expect(k8s.Create(ctx, managed("mine", "mine"))).To(Succeed())
		Expect(k8s.Create(ctx, apiKey(ns, "mine"))).To(Succeed(), "a Secret left by an earlier key of the same name is the operator's to reuse")
	})

	It("reports every broken rule at once", func() {
		ns := newNamespace(ctx, nil)
		past := now.Add(-time.Minute)
		err := k8s.Create(ctx, apiKey(ns, "k", expiringAt(past), withRole("nope")))
		Expect(err).To(MatchError(invalid("k",
			fmt.Sprintf(`spec.expiresAt: Invalid value: %q: must be in the future; set a later time, or leave spec.expiresAt out for the default lifetime of 8760h0m0s`, rfc3339(past)),
			fmt.Sprintf(`spec.roleRef.name: Invalid value: "nope": ApiKeyRole "nope" does not exist in namespace %q; create the role first, or fix spec.roleRef.name`, ns))))
	})
})

func setAnnotation(ctx context.Context, ns, key, value string) {
	n := &corev1.Namespace{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
	n.Annotations = map[string]string{key: value}
	Expect(k8s.Update(ctx, n)).To(Succeed())
}

// kubectlRun is a kubectl command line to run against the suite's API
// server as an administrator.
type kubectlRun []string

func kubectl(args ...string) kubectlRun { return args }

// withStdin runs the command and returns its stdout, or its stderr when
// it fails.
func (k kubectlRun) withStdin(stdin string) (string, error) {
	cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, k...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), err
	}
	return strings.TrimSpace(stdout.String()), nil
}
