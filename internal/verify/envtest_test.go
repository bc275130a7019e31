package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	. "github.com/apikey-operator/apikey-operator/internal/verify"
)

// issuedTokens are every token the suite saw, for the leak check.
var issuedTokens testkit.Tokens

// checkNoLeaks looks for every token the suite saw in the logs of the
// controller and the verify server and in the metrics.
func checkNoLeaks() {
	logs := suiteLogs.String()
	Expect(logs).NotTo(BeEmpty(), "the suite captured no logs; the leak check would prove nothing")
	Expect(issuedTokens.All()).NotTo(BeEmpty())
	Expect(testkit.Leaks(issuedTokens.All(), map[string]string{
		"the logs": logs, "the metrics": string(GatherText(GinkgoT(), registry)),
	})).To(BeEmpty())
}

func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "verify-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// issue creates an ApiKey, lets the controller mint it, and returns the
// token from its Secret.
func issue(ctx context.Context, ns, name string, mods ...func(*keysv1.ApiKey)) (*keysv1.ApiKey, string) {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mods {
		m(k)
	}
	Expect(k8s.Create(ctx, k)).To(Succeed())
	return k, tokenOf(ctx, k, "")
}

// tokenOf waits for the key's Secret to hold a token other than not, and
// for status to carry its hash.
func tokenOf(ctx context.Context, k *keysv1.ApiKey, not string) string {
	var tok string
	Eventually(func(g Gomega) {
		s := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, s)).To(Succeed())
		tok = string(s.Data[keysv1.SecretKeyField])
		g.Expect(tok).NotTo(BeEmpty())
		g.Expect(tok).NotTo(Equal(not))
		got := &keysv1.ApiKey{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
		g.Expect(got.Status.Hash).NotTo(BeEmpty())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	issuedTokens.Remember(tok)
	tokenNamespaces.Store(tok, k.Namespace)
	return tok
}

// tokenNamespaces remembers each issued token's namespace, which
// verifyCode names as the verification's scope.
var tokenNamespaces sync.Map

func namespaceOf(tok string) string {
	if ns, ok := tokenNamespaces.Load(tok); ok {
		return ns.(string)
	}
	return "no-such-namespace"
}

// verifyCode asks the running server over HTTP, accepting keys of the
// token's own namespace.
func verifyCode(tok, ip string, perms ...string) string {
	return verifyIn(map[string]any{"namespaces": []string{namespaceOf(tok)}}, tok, ip, perms...)
}

// verifyIn asks with the given scope (namespaces, audiences).
func verifyIn(scope map[string]any, tok, ip string, perms ...string) string {
	in := map[string]any{"key": tok, "permissions": perms, "ip": ip}
	for k, v := range scope {
		in[k] = v
	}
	body, _ := json.Marshal(in)
	resp, err := http.Post("http://"+verifyAddr+"/v1/keys/verify", "application/json", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out VerifyResponse
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out.Code
}

func eventuallyCode(tok, ip string, perms ...string) AsyncAssertion {
	return Eventually(func() string { return verifyCode(tok, ip, perms...) }).
		WithTimeout(10 * time.Second).WithPolling(5 * time.Millisecond)
}

var _ = Describe("the verify index", func() {
	var ctx context.Context
	var ns string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("follows create, disable, enable and delete", func() {
		k, tok := issue(ctx, ns, "billing", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("invoices:read") })
		eventuallyCode(tok, "", "invoices:read").Should(Equal("Valid"))

		Expect(k8s.Patch(ctx, k, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`)))).To(Succeed())
		eventuallyCode(tok, "").Should(Equal("Disabled"))
		Expect(k8s.Patch(ctx, k, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":true}}`)))).To(Succeed())
		eventuallyCode(tok, "").Should(Equal("Valid"))

		deleted := time.Now()
		Expect(k8s.Delete(ctx, k)).To(Succeed())
		eventuallyCode(tok, "").Should(Equal("NotFound"))
		GinkgoWriter.Printf("delete to NotFound: %s (reported, not asserted)\n", time.Since(deleted))
	})

	It("follows a status written through the status subresource", func() {
		k, tok := issue(ctx, ns, "sub")
		eventuallyCode(tok, "").Should(Equal("Valid"))
		// What the controller does when the Secret holds no usable token.
		k.Status.Hash = ""
		Expect(k8s.Status().Patch(ctx, k, client.RawPatch(types.MergePatchType, []byte(`{"status":{"hash":null}}`)))).To(Succeed())
		eventuallyCode(tok, "").Should(Equal("NotFound"))
	})

	It("follows role changes and deletion", func() {
		role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: Perms("reports:*")}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		_, tok := issue(ctx, ns, "reports", func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "reader"} })
		eventuallyCode(tok, "", "reports:monthly").Should(Equal("Valid"))

		role.Spec.Permissions = Perms("invoices:read")
		Expect(k8s.Update(ctx, role)).To(Succeed())
		eventuallyCode(tok, "", "reports:monthly").Should(Equal("MissingPermission"))
		eventuallyCode(tok, "", "invoices:read").Should(Equal("Valid"))

		Expect(k8s.Delete(ctx, role)).To(Succeed())
		eventuallyCode(tok, "").Should(Equal("Disabled"))
	})

	It("gives a key without audiences its role's, following the role (issue 11)", func() {
		role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing"},
			Spec: keysv1.ApiKeyRoleSpec{Permissions: Perms("invoices:read"), Audiences: []keysv1.Audience{"billing"}}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		_, tok := issue(ctx, ns, "inherits", func(k *keysv1.ApiKey) { k.Spec.RoleRef = &keysv1.RoleReference{Name: "billing"} })
		_, own := issue(ctx, ns, "own", func(k *keysv1.ApiKey) {
			k.Spec.RoleRef = &keysv1.RoleReference{Name: "billing"}
			k.Spec.Audiences = []keysv1.Audience{"reports"}
		})
		in := func(aud string) map[string]any { return map[string]any{"audiences": []string{aud}} }
		code := func(scope map[string]any, tok string) func() string {
			return func() string { return verifyIn(scope, tok, "") }
		}
		Eventually(code(in("billing"), tok)).WithTimeout(10 * time.Second).Should(Equal("Valid"))
		Expect(verifyIn(in("reports"), tok, "")).To(Equal("WrongAudience"))
		Expect(verifyCode(tok, "")).To(Equal("WrongAudience"), "a namespace-only verification of a key with its role's audiences")
		Eventually(code(in("reports"), own)).WithTimeout(10 * time.Second).Should(Equal("Valid"))
		Expect(verifyIn(in("billing"), own, "")).To(Equal("WrongAudience"), "the key's own audiences win")

		role.Spec.Audiences = []keysv1.Audience{"reports"}
		Expect(k8s.Update(ctx, role)).To(Succeed())
		Eventually(code(in("reports"), tok)).WithTimeout(10 * time.Second).Should(Equal("Valid"))
		Expect(verifyIn(in("billing"), tok, "")).To(Equal("WrongAudience"))
		role.Spec.Audiences = nil
		Expect(k8s.Update(ctx, role)).To(Succeed())
		eventuallyCode(tok, "", "invoices:read").Should(Equal("Valid"))
	})

	It("keeps the old token through a rotation's grace period only", func() {
		k, old := issue(ctx, ns, "rotating", func(k *keysv1.ApiKey) {
			k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}
		})
		eventuallyCode(old, "").Should(Equal("Valid"))
		Expect(k8s.Patch(ctx, k, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"`+keysv1.RotateAnnotation+`":"1"}}}`)))).To(Succeed())
		next := tokenOf(ctx, k, old)
		eventuallyCode(next, "").Should(Equal("Valid"))
		Expect(verifyCode(old, "")).To(Equal("Valid"), "inside the grace period")

		// End the grace period by rewriting status as the controller's
		// pruning would once validUntil passed.
		got := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
		Expect(got.Status.PreviousHashes).To(HaveLen(1))
		patch := fmt.Sprintf(`{"status":{"previousHashes":[{"hash":%q,"validUntil":%q}]}}`,
			got.Status.PreviousHashes[0].Hash, time.Now().Add(-time.Second).UTC().Format(time.RFC3339))
		Expect(k8s.Status().Patch(ctx, got, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
		eventuallyCode(old, "").Should(Equal("NotFound"))
		Expect(verifyCode(next, "")).To(Equal("Valid"))
	})

	It("ends a grace period at once when asked, with or without a new rotation (issue 11)", func() {
		k, first := issue(ctx, ns, "leaked", func(k *keysv1.ApiKey) {
			k.Spec.Rotation = &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: 24 * time.Hour}}
		})
		eventuallyCode(first, "").Should(Equal("Valid"))
		annotate := func(kv string) {
			Expect(k8s.Patch(ctx, k, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{`+kv+`}}}`)))).To(Succeed())
		}
		annotate(`"` + keysv1.RotateAnnotation + `":"1"`)
		second := tokenOf(ctx, k, first)
		eventuallyCode(second, "").Should(Equal("Valid"))
		Expect(verifyCode(first, "")).To(Equal("Valid"), "inside its 24h grace period")

		By("ending the grace period alone: the rotated-out token stops now")
		annotate(`"` + keysv1.EndGracePeriodAnnotation + `":"1"`)
		eventuallyCode(first, "").Should(Equal("NotFound"))
		Expect(verifyCode(second, "")).To(Equal("Valid"))

		By("rotating and ending the grace period in one edit: only the new token verifies")
		annotate(`"` + keysv1.RotateAnnotation + `":"2","` + keysv1.EndGracePeriodAnnotation + `":"2"`)
		third := tokenOf(ctx, k, second)
		eventuallyCode(third, "").Should(Equal("Valid"))
		eventuallyCode(second, "").Should(Equal("NotFound"))
		got := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
		Expect(got.Status.PreviousHashes).To(BeEmpty())
	})

	It("believes a body ip only from a trusted proxy (issue 11)", func() {
		_, tok := issue(ctx, ns, "office-only", func(k *keysv1.ApiKey) { k.Spec.AllowedIPs = IPs("192.0.2.0/24") })
		eventuallyCode(tok, "192.0.2.10").Should(Equal("Valid"), "from 127.0.0.1, the suite's trusted proxy")
		post := func(from string, body map[string]any) (int, map[string]any) {
			raw, _ := json.Marshal(body)
			tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Post("http://"+verifyAddr+"/v1/keys/verify", "application/json", bytes.NewReader(raw))
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			var out map[string]any
			Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
			return resp.StatusCode, out
		}
		status, out := post("127.0.0.2", map[string]any{"key": tok, "namespaces": []string{ns}, "ip": "192.0.2.10"})
		Expect(status).To(Equal(400), "a client claimed an allowed address: %v", out)
		Expect(out["error"]).To(ContainSubstring("--trusted-proxies"))
		status, out = post("127.0.0.2", map[string]any{"key": tok, "namespaces": []string{ns}})
		Expect(status).To(Equal(200))
		Expect(out["code"]).To(Equal("IPNotAllowed"), "judged by its own address")
	})

	It("applies allowedIPs and expiry from the resource", func() {
		_, tok := issue(ctx, ns, "office", func(k *keysv1.ApiKey) {
			k.Spec.AllowedIPs = IPs("192.0.2.0/24", "2001:db8::/32")
		})
		eventuallyCode(tok, "192.0.2.10").Should(Equal("Valid"))
		Expect(verifyCode(tok, "::ffff:192.0.2.10")).To(Equal("Valid"))
		Expect(verifyCode(tok, "2001:db8::5")).To(Equal("Valid"))
		Expect(verifyCode(tok, "198.51.100.1")).To(Equal("IPNotAllowed"))

		_, soon := issue(ctx, ns, "short-lived", func(k *keysv1.ApiKey) {
			k.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(3 * time.Second).Truncate(time.Second)}
		})
		eventuallyCode(soon, "").Should(Equal("Valid"))
		eventuallyCode(soon, "").Should(Equal("Expired"))
	})

	It("records lastUsedAt in status, in the background", func() {
		k, tok := issue(ctx, ns, "used")
		eventuallyCode(tok, "").Should(Equal("Valid"))
		Eventually(func(g Gomega) {
			got := &keysv1.ApiKey{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
			g.Expect(got.Status.LastUsedAt).NotTo(BeNil())
			g.Expect(got.Status.LastUsedAt.Time).To(BeTemporally("~", time.Now(), time.Minute))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		// The controller's status is untouched by the patch.
		got := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(k), got)).To(Succeed())
		Expect(got.Status.Hash).NotTo(BeEmpty())
		Expect(ptr.Deref(got.Spec.Enabled, true)).To(BeTrue())
	})
})
