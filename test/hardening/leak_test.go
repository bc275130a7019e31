package hardening_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/leak"
	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

func hashOf(tok string) string { return token.Hash(tok) }

func mint() string {
	t, err := token.Mint("")
	Expect(err).NotTo(HaveOccurred())
	return t
}

var _ = Describe("Leak scan", Ordered, func() {
	ctx := context.Background()
	ns := nsLeak
	var tokens []string // every token minted or presented in this test
	remember := func(t ...string) { tokens = append(tokens, t...) }

	It("runs the whole lifecycle with verbose logs and a RequestResponse audit log", func() {
		By("create with kubectl apply")
		manifest := filepath.Join(GinkgoT().TempDir(), "key.yaml")
		Expect(os.WriteFile(manifest, []byte(`apiVersion: keys.apikey-operator.io/v1alpha1
kind: ApiKey
metadata:
  name: applied
  namespace: leak
spec:
  description: applied with kubectl
  permissions: ["invoices:read", "tenant.apiKey:read"]
`), 0o600)).To(Succeed())
		kubectl := func(args ...string) string {
			out, err := exec.Command(filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
			ExpectWithOffset(1, err).NotTo(HaveOccurred(), string(out))
			return string(out)
		}
		kubectl("apply", "-f", manifest)
		applied := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "applied"}}
		remember(waitIssued(ctx, applied))
		Expect(applied.Annotations).To(HaveKey(corev1.LastAppliedConfigAnnotation), "kubectl apply annotates the ApiKey")

		By("create an admin key and a key through the tenant-admin dialect")
		_, adminTok := makeKey(ctx, ns, "leak-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		remember(adminTok)
		Eventually(func() int {
			return apiKey(adminTok).do("GET", "/api/"+ns+"/admin/apiKeys", nil).status
		}).WithTimeout(20 * time.Second).Should(Equal(200))
		r := apiKey(adminTok).do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "dialect-made", "permissions": []string{"invoices:read"}})
		Expect(r.status).To(Equal(201), r.body)
		dialectTok := r.json()["token"].(string)
		remember(dialectTok)
		r = admin.do("POST", "/v1/api-keys", map[string]any{"id": "nexus-made", "description": "by a Kubernetes admin"}, "X-Namespace", ns)
		Expect(r.status).To(Equal(201), r.body)
		remember(r.json()["secret"].(string))

		By("rotate")
		before := applied.Status.Hash
		kubectl("annotate", "-n", ns, "ak", "applied", keysv1.RotateAnnotation+"=1")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(applied), applied)).To(Succeed())
			g.Expect(applied.Status.Hash).NotTo(Equal(before))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		remember(waitIssued(ctx, applied))

		By("disable")
		kubectl("patch", "-n", ns, "ak", "dialect-made", "--type=merge", "-p", `{"spec":{"enabled":false}}`)
		Eventually(func(g Gomega) {
			k := &keysv1.ApiKey{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dialect-made"}, k)).To(Succeed())
			g.Expect(meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady)).To(HaveField("Reason", keysv1.ReasonDisabled))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("expire")
		expiring, expTok := makeKey(ctx, ns, "expiring", func(k *keysv1.ApiKey) {
			k.Spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(3 * time.Second)}
		})
		remember(expTok)
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(expiring), expiring)).To(Succeed())
			g.Expect(meta.FindStatusCondition(expiring.Status.Conditions, keysv1.ConditionReady)).To(HaveField("Reason", keysv1.ReasonExpired))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("delete")
		doomed, doomedTok := makeKey(ctx, ns, "doomed", nil)
		remember(doomedTok)
		Expect(k8s.Delete(ctx, doomed)).To(Succeed())
		Eventually(func() int {
			return apiKey(adminTok).do("GET", "/api/"+ns+"/admin/apiKeys/doomed", nil).status
		}).WithTimeout(20 * time.Second).Should(Equal(404))

		By("failed creates")
		Expect(apiKey(adminTok).do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "dialect-made"}).status).To(Equal(409))
		Expect(apiKey(adminTok).do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "bad name!"}).status).To(Equal(400))
		bad := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "invalid"}, Spec: keysv1.ApiKeySpec{Permissions: []keysv1.Permission{"no spaces allowed"}}}
		Expect(k8s.Create(ctx, bad)).NotTo(Succeed())
		// A key whose Secret name is taken by a Secret the operator does
		// not own: the controller refuses and says so in status.
		foreignTok := mint()
		remember(foreignTok)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
			Data: map[string][]byte{keysv1.SecretKeyField: []byte(foreignTok)}})).To(Succeed())
		taken := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}}
		Expect(k8s.Create(ctx, taken)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(taken), taken)).To(Succeed())
			g.Expect(meta.FindStatusCondition(taken.Status.Conditions, keysv1.ConditionReady)).To(HaveField("Reason", keysv1.ReasonSecretTaken))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("denied requests: a read key writing, a disabled key, an unknown key, a missing permission")
		readTok := waitIssued(ctx, applied)
		Expect(apiKey(readTok).do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "nope"}).status).To(Equal(403))
		Eventually(func() int { return apiKey(dialectTok).do("GET", "/api/"+ns+"/admin/apiKeys", nil).status }).
			WithTimeout(20 * time.Second).Should(Equal(401))
		unknown := mint()
		remember(unknown)
		Expect(apiKey(unknown).do("GET", "/api/"+ns+"/admin/apiKeys", nil).status).To(Equal(401))
		for _, t := range []string{dialectTok, unknown, expTok, doomedTok, before} {
			st, err := verifyFrom(nil, t)
			Expect(err).NotTo(HaveOccurred())
			Expect(st).To(BeNumerically(">=", 400))
		}
		st, err := verifyFromPerm(readTok, "payments:write")
		Expect(err).NotTo(HaveOccurred())
		Expect(st).To(Equal(403))

		By("gRPC ext_authz Checks: a valid key, a disabled key, an unknown key, a missing permission")
		for _, c := range []struct {
			tok, perm string
			want      int32
		}{{readTok, "", 200}, {dialectTok, "", 401}, {unknown, "", 401}, {readTok, "payments:write", 403}} {
			Eventually(func() (int32, error) { return checkGRPC(ctx, c.tok, c.perm) }).WithTimeout(20 * time.Second).Should(Equal(c.want))
		}

		By("ApiKeyReview through kube-apiserver, for a valid and a disabled key")
		for _, t := range []string{readTok, dialectTok} {
			review := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: t, Namespaces: []string{nsLeak, nsHostile, nsBrute}}}
			Expect(k8s.Create(ctx, review)).To(Succeed())
			Expect(review.Spec.Key).To(BeEmpty(), "the review's answer does not echo the key")
		}

		By("a hash-only key: declared, verified without a Secret, rotated by declaring a new hash")
		declaredTok, nextTok := mint(), mint()
		remember(declaredTok, nextTok)
		declared := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "declared"}, Spec: keysv1.ApiKeySpec{
			TokenHash: keysv1.TokenHash(hashOf(declaredTok)), Rotation: &keysv1.RotationSpec{GracePeriod: &metav1.Duration{Duration: time.Hour}}}}
		Expect(k8s.Create(ctx, declared)).To(Succeed())
		Eventually(func() (int, error) { return verifyFrom(nil, declaredTok) }).WithTimeout(30 * time.Second).Should(Equal(200))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(declared), &corev1.Secret{})).NotTo(Succeed(), "a hash-only key has no Secret")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(declared), declared)).To(Succeed())
		declared.Spec.TokenHash = keysv1.TokenHash(hashOf(nextTok))
		Expect(k8s.Update(ctx, declared)).To(Succeed())
		for _, t := range []string{nextTok, declaredTok} {
			Eventually(func() (int, error) { return verifyFrom(nil, t) }).WithTimeout(30 * time.Second).Should(Equal(200))
		}

		By("leak reports: unsigned and badly signed ones refused, then a signed one of a minted, a hash-only, a previous and an unknown token")
		leakedUnknown := mint()
		remember(leakedUnknown)
		report := leaktest.Report(readTok, nextTok, declaredTok, leakedUnknown)
		post := func(body []byte, id, sig string) (int, string) {
			req, err := http.NewRequest(http.MethodPost, leakURL, bytes.NewReader(body))
			Expect(err).NotTo(HaveOccurred())
			if id != "" {
				req.Header.Set(leak.GitHubKeyIDHeader, id)
				req.Header.Set(leak.GitHubSignatureHeader, sig)
			}
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		impostor := leaktest.NewReporter(GinkgoT())
		for _, c := range []struct{ id, sig string }{{"", ""}, {reporter.ID, impostor.Sign(GinkgoT(), report)}, {impostor.ID, impostor.Sign(GinkgoT(), report)}} {
			code, body := post(report, c.id, c.sig)
			Expect(code).To(Equal(401), body)
		}
		Expect(verifyFrom(nil, readTok)).To(Equal(200), "a refused report changed nothing")
		code, answer := post(report, reporter.ID, reporter.Sign(GinkgoT(), report))
		Expect(code).To(Equal(200), answer)
		Expect(strings.Count(answer, `"true_positive"`)).To(Equal(3), answer)
		Expect(strings.Count(answer, `"false_positive"`)).To(Equal(1), answer)
		for _, t := range []string{readTok, nextTok, declaredTok} {
			Eventually(func() (int, error) { return verifyFrom(nil, t) }).WithTimeout(30 * time.Second).Should(Equal(401))
		}
		for _, name := range []string{"applied", "declared"} {
			Eventually(func(g Gomega) {
				k := &keysv1.ApiKey{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, k)).To(Succeed())
				g.Expect(meta.FindStatusCondition(k.Status.Conditions, keysv1.ConditionReady)).To(HaveField("Reason", keysv1.ReasonLeaked))
				g.Expect(k.Status.Leaks).NotTo(BeEmpty())
			}).WithTimeout(30 * time.Second).Should(Succeed())
		}
		code, answer = post(report, reporter.ID, reporter.Sign(GinkgoT(), report))
		Expect(code).To(Equal(409), answer)

		By("collect every token the operator ever wrote, from its Secrets")
		secrets := &corev1.SecretList{}
		Expect(k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
		for _, s := range secrets.Items {
			if t := string(s.Data[keysv1.SecretKeyField]); t != "" {
				remember(t)
			}
		}
		Expect(len(tokens)).To(BeNumerically(">=", 10))
		Expect(logs.String()).To(ContainSubstring("leaked token reported"), "the logs hold the reports: the scan below proves something")
	})

	It("has no kubectl last-applied-configuration on any Secret", func() {
		secrets := &corev1.SecretList{}
		Expect(k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
		Expect(secrets.Items).NotTo(BeEmpty())
		for _, s := range secrets.Items {
			Expect(s.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation), s.Name)
		}
	})

	It("finds no token in the operator's logs", func() {
		text := logs.String()
		Expect(len(text)).To(BeNumerically(">", 10000), "the logs are verbose; an empty buffer would prove nothing")
		Expect(testkit.Leaks(tokens, map[string]string{"log": text})).To(BeEmpty())
	})

	It("finds no token in the operator's metrics", func() {
		families, err := ctrlmetrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		var buf bytes.Buffer
		for _, f := range families {
			_, err := expfmt.MetricFamilyToText(&buf, f)
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(testkit.Leaks(tokens, map[string]string{"metrics": buf.String()})).To(BeEmpty())
	})

	It("finds no token in any object but a Secret's data: annotations, managedFields, status, events", func() {
		disc, err := discovery.NewDiscoveryClientForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
		dyn, err := dynamic.NewForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
		lists, err := disc.ServerPreferredResources()
		Expect(err).NotTo(HaveOccurred())
		scanned := 0
		var found []string
		for _, l := range lists {
			gv, err := schemaGV(l.GroupVersion)
			Expect(err).NotTo(HaveOccurred())
			for _, res := range l.APIResources {
				if !contains(res.Verbs, "list") || strings.Contains(res.Name, "/") {
					continue
				}
				items, err := dyn.Resource(gv.WithResource(res.Name)).List(ctx, metav1.ListOptions{})
				Expect(err).NotTo(HaveOccurred(), res.Name)
				for _, it := range items.Items {
					if res.Name == "secrets" && it.GetNamespace() == ns {
						// The Secret holds the token by design: everything
						// but its data (metadata with annotations and
						// managedFields, type) must not.
						unstructured.RemoveNestedField(it.Object, "data")
					}
					raw, err := json.Marshal(it.Object)
					Expect(err).NotTo(HaveOccurred())
					found = append(found, testkit.Leaks(tokens, map[string]string{res.Name + " " + it.GetNamespace() + "/" + it.GetName(): string(raw)})...)
					scanned++
				}
			}
		}
		Expect(scanned).To(BeNumerically(">", 50))
		Expect(found).To(BeEmpty())
	})

	It("finds no token in kube-apiserver's RequestResponse audit log outside Secrets and key reviews", func() {
		f, err := os.Open(auditLog)
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		var found []string
		events, exempt, exemptWithToken := 0, 0, 0
		for sc.Scan() {
			line := sc.Text()
			var ev struct {
				ObjectRef *struct {
					Resource, APIGroup string
				} `json:"objectRef"`
			}
			Expect(json.Unmarshal([]byte(line), &ev)).To(Succeed())
			events++
			if ev.ObjectRef != nil {
				// Secrets: their bodies are the token's home, so a
				// RequestResponse policy logs them by design. Key reviews:
				// the request names the key to check, as a TokenReview
				// does. docs/security.md gives the audit policy a cluster
				// should run: both at Metadata.
				if (ev.ObjectRef.Resource == "secrets" && ev.ObjectRef.APIGroup == "") ||
					(ev.ObjectRef.Resource == "apikeyreviews" && ev.ObjectRef.APIGroup == accessv1.GroupVersion.Group) {
					exempt++
					if len(testkit.Leaks(tokens, map[string]string{"audit": line})) > 0 {
						exemptWithToken++
					}
					continue
				}
			}
			found = append(found, testkit.Leaks(tokens, map[string]string{"audit": line})...)
		}
		Expect(sc.Err()).NotTo(HaveOccurred())
		Expect(events).To(BeNumerically(">", 100))
		Expect(exempt).To(BeNumerically(">", 0))
		Expect(exemptWithToken).To(BeNumerically(">", 0), "the scan finds tokens where they are by design (Secret bodies), so it would find them elsewhere")
		Expect(found).To(BeEmpty())
	})

	It("finds no token in the operator's own RequestResponse audit log, key reviews and dialect writes included", func() {
		raw, err := os.ReadFile(operatorAuditLog)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		var found []string
		reviews, writes := 0, 0
		for _, line := range lines {
			if strings.Contains(line, `"resource":"apikeyreviews"`) {
				reviews++
			}
			if strings.Contains(line, `"keys.apikey-operator.io/operation"`) {
				writes++
			}
			found = append(found, testkit.Leaks(tokens, map[string]string{"operator audit": line})...)
		}
		// No exemption here: the operator drops every body before its
		// audit backends, so not even a review's key is logged.
		Expect(reviews).To(BeNumerically(">", 0))
		Expect(writes).To(BeNumerically(">", 0))
		Expect(found).To(BeEmpty())
	})
})

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// verifyFromPerm asks /v1/auth from 127.0.0.1 for a permission.
func verifyFromPerm(tok, perm string) (int, error) {
	return verifyURL(nil, "/v1/auth?permission="+perm, tok)
}

func schemaGV(s string) (schema.GroupVersion, error) { return schema.ParseGroupVersion(s) }

// checkGRPC asks the gRPC ext_authz server, as Envoy would for a route of
// the suite's tenants, and returns 200 for OK or the denied HTTP status.
func checkGRPC(ctx context.Context, tok, perm string) (int32, error) {
	conn, err := grpc.NewClient("passthrough:///"+extAuthzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ext := map[string]string{"namespace": strings.Join([]string{nsLeak, nsHostile, nsBrute}, ",")}
	if perm != "" {
		ext["permission"] = perm
	}
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/invoices", Headers: map[string]string{"authorization": "Bearer " + tok},
		}},
		ContextExtensions: ext,
	}})
	if err != nil {
		return 0, err
	}
	if resp.GetStatus().GetCode() == 0 {
		return 200, nil
	}
	return int32(resp.GetDeniedResponse().GetStatus().GetCode()), nil
}
