package plugin_test

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

var _ = Describe("kubectl apikey", func() {
	ctx := context.Background()

	It("is found by kubectl on PATH and documents every command", func() {
		r := kubectlRun("", "plugin", "list")
		Expect(r.stdout).To(ContainSubstring("kubectl-apikey"))
		for _, sub := range []string{"create", "token", "rotate", "enable", "disable", "status", "list", "verify", "completion"} {
			help := kubectlRun("", "apikey", sub, "--help")
			Expect(help.code).To(Equal(0), sub)
			Expect(help.stdout).To(ContainSubstring("kubectl apikey "+sub), sub)
		}
	})

	It("writes completion scripts for bash, zsh and fish", func() {
		for _, shell := range []string{"bash", "zsh", "fish"} {
			r := kubectlRun("", "apikey", "completion", shell)
			Expect(r.code).To(Equal(0), shell)
			Expect(r.stdout).To(ContainSubstring("kubectl-apikey"), shell)
		}
	})

	It("completes commands, flags and key names through kubectl's plugin completion", func() {
		ns := newNamespace(ctx)
		plugin(ns, "create", "completed-one")
		plugin(ns, "create", "completed-two")
		commands := kubectlRun("", "__complete", "apikey", "")
		Expect(commands.stdout).To(ContainSubstring("rotate"))
		Expect(commands.stdout).To(ContainSubstring("verify"))
		names := kubectlRun("", "__complete", "apikey", "-n", ns, "status", "")
		Expect(names.stdout).To(ContainSubstring("completed-one"))
		Expect(names.stdout).To(ContainSubstring("completed-two"))
		flags := kubectlRun("", "__complete", "apikey", "list", "--")
		Expect(flags.stdout).To(ContainSubstring("--expiring-within"))
	})

	It("creates a key, waits until it is Ready, and shows its status", func() {
		ns := newNamespace(ctx)
		r := plugin(ns, "create", "billing", "--permission", "invoices:read", "--permission", "invoices:list", "--audience", "billing-api",
			"--allowed-ip", "10.0.0.0/8", "--expires-in", "30d", "--description", "billing service", "--wait")
		Expect(r.stdout).To(ContainSubstring("apikey " + ns + "/billing created"))
		Expect(r.stdout).To(ContainSubstring("is Ready: prefix ak_"))
		secretToken(ctx, ns, "billing")

		key := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "billing"}, key)).To(Succeed())
		Expect(key.Spec.Permissions).To(ConsistOf(keysv1.Permission("invoices:read"), keysv1.Permission("invoices:list")))
		Expect(key.Spec.AllowedIPs).To(ConsistOf(keysv1.IPOrCIDR("10.0.0.0/8")))
		Expect(key.Spec.Audiences).To(ConsistOf(keysv1.Audience("billing-api")))
		Expect(key.Spec.ExpiresAt.Sub(time.Now())).To(BeNumerically("~", 30*24*time.Hour, time.Hour))

		status := plugin(ns, "status", "billing").stdout
		for _, want := range []string{"Ready:", "True (KeyIssued)", key.Status.KeyPrefix, "invoices:read, invoices:list", "Audiences:", "billing-api", "10.0.0.0/8",
			"in 29d", "Last used:", "never", "on request", "Secret:", "billing (data key api-key)", "billing service"} {
			Expect(status).To(ContainSubstring(want))
		}
	})

	It("prints a token only on standard output, and only when asked", func() {
		ns := newNamespace(ctx)
		r := kubectlRunAsked(true, "", "apikey", "-n", ns, "create", "ci", "--permission", "deploy:write", "--show-token")
		Expect(r.code).To(Equal(0), r.stderr)
		tok := secretToken(ctx, ns, "ci")
		Expect(r.stdout).To(Equal(tok+"\n"), "--show-token prints the token and nothing else on stdout")
		Expect(r.stderr).To(ContainSubstring("created"))

		// Standard output is a pipe here, as in `token ci | tool`.
		t := kubectlRunAsked(true, "", "apikey", "-n", ns, "token", "ci")
		Expect(t.code).To(Equal(0), t.stderr)
		Expect(t.stdout).To(Equal(tok + "\n"))
	})

	It("rotates through the annotation, waits for the new hash and reports the grace period", func() {
		ns := newNamespace(ctx)
		key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rotating"}}
		key.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: 2 * time.Hour}}
		Expect(k8s.Create(ctx, key)).To(Succeed())
		old := secretToken(ctx, ns, "rotating")
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(key), key)
			return key.Status.Hash
		}).WithTimeout(20 * time.Second).ShouldNot(BeEmpty())
		oldHash := key.Status.Hash

		r := plugin(ns, "rotate", "rotating", "--wait")
		Expect(r.stdout).To(ContainSubstring("rotation requested"))
		Expect(r.stdout).To(MatchRegexp(`rotated: new token ak_\w+\.\.\. in Secret rotating; the previous token works until \S+ \(grace period (1h|2h|119m|120m)\)`))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(key), key)).To(Succeed())
		Expect(key.Status.Hash).NotTo(Equal(oldHash))
		Expect(key.Status.PreviousHashes).To(ContainElement(HaveField("Hash", oldHash)))
		Expect(key.Annotations).To(HaveKey(keysv1.RotateAnnotation))
		Expect(secretToken(ctx, ns, "rotating")).NotTo(Equal(old))

		// Without a grace period the report says the old token is gone.
		Expect(k8s.Create(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "abrupt"}})).To(Succeed())
		secretToken(ctx, ns, "abrupt")
		Eventually(func() bool {
			k := &keysv1.ApiKey{}
			return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "abrupt"}, k) == nil && k.Status.Hash != ""
		}).WithTimeout(20 * time.Second).Should(BeTrue())
		Expect(plugin(ns, "rotate", "abrupt", "--wait").stdout).To(ContainSubstring("stopped working at once"))
		secretToken(ctx, ns, "abrupt")

		// A leaked token: rotate and end the grace period in one edit.
		leaked := secretToken(ctx, ns, "rotating")
		r = plugin(ns, "rotate", "rotating", "--end-grace-period", "--wait")
		Expect(r.stdout).To(ContainSubstring("every previous token stopped working at once (--end-grace-period)"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(key), key)).To(Succeed())
		Expect(key.Status.PreviousHashes).To(BeEmpty())
		Expect(key.Annotations).To(HaveKey(keysv1.EndGracePeriodAnnotation))
		refused := kubectlRun(leaked+"\n", "apikey", "-n", ns, "verify", "--key-from-stdin")
		Expect(refused.code).To(Equal(1))
		Expect(refused.stdout).To(ContainSubstring("refused (NotFound)"))
		secretToken(ctx, ns, "rotating")
	})

	It("verifies through the aggregated ApiKeyReview API, and disable/enable take effect", func() {
		ns := newNamespace(ctx)
		plugin(ns, "create", "gate", "--permission", "invoices:read", "--allowed-ip", "192.0.2.0/24", "--wait")
		tok := secretToken(ctx, ns, "gate")

		ok := kubectlRun(tok+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin", "--permission", "invoices:read", "--ip", "192.0.2.7")
		Expect(ok.code).To(Equal(0), ok.stderr)
		Expect(ok.stdout).To(ContainSubstring("valid (Valid)"))
		Expect(ok.stdout).To(ContainSubstring("Key:"))
		Expect(ok.stdout).To(ContainSubstring(ns + "/gate"))

		for reason, args := range map[string][]string{
			"MissingPermission": {"--permission", "invoices:write", "--ip", "192.0.2.7"},
			"IPNotAllowed":      {"--permission", "invoices:read", "--ip", "198.51.100.1"},
		} {
			r := kubectlRun(tok+"\n", append([]string{"apikey", "verify", "-n", ns, "--key-from-stdin"}, args...)...)
			Expect(r.code).To(Equal(1), reason)
			Expect(r.stdout).To(ContainSubstring("refused (" + reason + ")"))
		}
		other := kubectlRun(tok+"\n", "apikey", "verify", "--key-from-stdin", "--ip", "192.0.2.7") // the kubeconfig's namespace
		Expect(other.code).To(Equal(1))
		Expect(other.stdout).To(ContainSubstring("refused (WrongNamespace)"))
		Expect(other.stdout).NotTo(ContainSubstring(ns+"/gate"), "a key outside the namespace is not described")
		unknown := kubectlRun("ak_notarealkey\n", "apikey", "verify", "-n", ns, "--key-from-stdin")
		Expect(unknown.code).To(Equal(1))
		Expect(unknown.stdout).To(ContainSubstring("refused (Malformed)"))

		// Without a key on stdin and no terminal, it says what to do.
		none := kubectlRun("", "apikey", "verify")
		Expect(none.code).To(Equal(1))
		Expect(none.stderr).To(ContainSubstring("--key-from-stdin"))

		Expect(plugin(ns, "disable", "gate").stdout).To(ContainSubstring("disabled"))
		Eventually(func() string {
			return kubectlRun(tok+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin", "--ip", "192.0.2.7").stdout
		}).WithTimeout(10 * time.Second).Should(ContainSubstring("refused (Disabled)"))
		plugin(ns, "enable", "gate")
		Eventually(func() string {
			return kubectlRun(tok+"\n", "apikey", "verify", "-n", ns, "--key-from-stdin", "--ip", "192.0.2.7").stdout
		}).WithTimeout(10 * time.Second).Should(ContainSubstring("valid (Valid)"))
	})

	It("lists keys, filtered by expiry and by idleness, in one namespace or all", func() {
		ns := newNamespace(ctx)
		plugin(ns, "create", "soon", "--expires-in", "2d", "--wait")
		plugin(ns, "create", "later", "--wait")
		plugin(ns, "create", "idle", "--wait")
		plugin(ns, "create", "busy", "--wait")
		for _, n := range []string{"soon", "later", "idle", "busy"} {
			secretToken(ctx, ns, n)
		}
		setLastUsed(ctx, ns, "idle", time.Now().Add(-40*24*time.Hour))
		setLastUsed(ctx, ns, "busy", time.Now().Add(-time.Minute))

		all := plugin(ns, "list").stdout
		Expect(all).To(ContainSubstring("NAME"))
		Expect(names(all)).To(ConsistOf("soon", "later", "idle", "busy"))
		Expect(names(plugin(ns, "list", "--expiring-within", "7d").stdout)).To(ConsistOf("soon"))
		Expect(names(plugin(ns, "list", "--unused-for", "30d").stdout)).To(ConsistOf("idle"))
		Expect(plugin(ns, "list").stdout).To(MatchRegexp(`idle\s+True\s+true\s+ak_\w+\s+in \d+d\s+40d ago`))

		everywhere := kubectlRun("", "apikey", "list", "-A", "--expiring-within", "7d")
		Expect(everywhere.code).To(Equal(0), everywhere.stderr)
		Expect(everywhere.stdout).To(ContainSubstring("NAMESPACE"))
		Expect(everywhere.stdout).To(MatchRegexp(ns + `\s+soon`))

		bad := kubectlRun("", "apikey", "-n", ns, "list", "--unused-for", "a while")
		Expect(bad.code).To(Equal(1))
		Expect(bad.stderr).To(ContainSubstring("--unused-for"))
		Expect(bad.stderr).To(ContainSubstring("7d"))
	})

	It("shows usage in status, list and verify (through ApiKeyReview)", func() {
		ns := newNamespace(ctx)
		plugin(ns, "create", "counted", "--permission", "invoices:read", "--wait")
		tok := secretToken(ctx, ns, "counted")
		now := time.Now().UTC()
		// As the verify replicas write it (internal/verify tests the writing).
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{"usage": map[string]any{
			"allowed": 1234, "refused": 56, "since": now.Add(-72 * time.Hour).Format(time.RFC3339),
			"hourly": []map[string]any{
				{"hour": now.Add(-30 * time.Hour).Truncate(time.Hour).Format(time.RFC3339), "allowed": 1000, "refused": 50},
				{"hour": now.Truncate(time.Hour).Format(time.RFC3339), "allowed": 34, "refused": 6},
			},
		}}})
		Expect(k8s.Status().Patch(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "counted"}},
			client.RawPatch(types.MergePatchType, patch))).To(Succeed())

		Expect(plugin(ns, "status", "counted").stdout).To(ContainSubstring("34 allowed, 6 refused in the last 24h; 1234 allowed, 56 refused in total"))
		Expect(plugin(ns, "list").stdout).To(MatchRegexp(`counted\s+True.*\s34/6\s`))
		Eventually(func() string {
			return kubectlRun(tok+"\n", "apikey", "-n", ns, "verify", "--key-from-stdin", "--permission", "invoices:read").stdout
		}).WithTimeout(10 * time.Second).Should(ContainSubstring("34 allowed, 6 refused in the last 24h; 1234 allowed, 56 refused in total"))
	})

	It("says what to do when a key does not exist", func() {
		ns := newNamespace(ctx)
		for _, sub := range []string{"status", "rotate", "disable", "token"} {
			r := kubectlRun("", "apikey", "-n", ns, sub, "missing")
			Expect(r.code).To(Equal(1), sub)
			Expect(r.stderr).To(ContainSubstring("ApiKey "+ns+"/missing not found"), sub)
		}
	})
})

func setLastUsed(ctx context.Context, ns, name string, at time.Time) {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"lastUsedAt": at.UTC().Format(time.RFC3339)}})
	key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	ExpectWithOffset(1, k8s.Status().Patch(ctx, key, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// names is the first column of a table, without its header.
func names(table string) []string {
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if i == 0 || line == "" {
			continue
		}
		out = append(out, strings.Fields(line)[0])
	}
	return out
}
