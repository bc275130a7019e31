package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	accessv1 "github.com/apikey-operator/apikey-operator/api/access/v1alpha1"
	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The authorisation matrix's verify-path section (issue 11): keys from
// two namespaces, with and without the audience "billing", × what the
// gateway states (a namespace, both, an audience, a namespace and an
// audience, nothing), through each verify entry point: forward-auth, the
// JSON verify endpoint, and ApiKeyReview through kube-apiserver. Every
// key grants "*": what decides is whose key it is, never its power.

// vScope is what a gateway states.
type vScope struct {
	name       string
	namespaces []string // "A", "B": replaced by the namespaces' names
	audiences  []string
}

var vScopes = []vScope{
	{name: "namespace A", namespaces: []string{"A"}},
	{name: "namespace B", namespaces: []string{"B"}},
	{name: "namespaces A and B", namespaces: []string{"A", "B"}},
	{name: "audience billing", audiences: []string{"billing"}},
	{name: "namespace A + audience billing", namespaces: []string{"A"}, audiences: []string{"billing"}},
	{name: "nothing"},
}

// vKey is a row: a key of namespace A or B, with or without audiences.
type vKey struct {
	name, ns string
	billing  bool
	want     [6]string // by vScopes column
}

const (
	vValid   = accessv1.ReasonValid
	vWrongNS = accessv1.ReasonWrongNamespace
	vWrongAu = accessv1.ReasonWrongAudience
	vNone    = "Unscoped"
)

var vKeys = []vKey{
	//                                        ns A     ns B      ns A,B   aud billing  ns A+billing  nothing
	{name: "key of A", ns: "A", want: [6]string{vValid, vWrongNS, vValid, vWrongAu, vWrongAu, vNone}},
	{name: "key of B", ns: "B", want: [6]string{vWrongNS, vValid, vValid, vWrongAu, vWrongNS, vNone}},
	{name: "billing key of A", ns: "A", billing: true, want: [6]string{vWrongAu, vWrongNS, vWrongAu, vValid, vValid, vNone}},
	{name: "billing key of B", ns: "B", billing: true, want: [6]string{vWrongNS, vWrongAu, vWrongAu, vValid, vWrongNS, vNone}},
}

var _ = Describe("Authorisation matrix: the verify path", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()
	nsOf := map[string]string{}
	tokens := map[string]string{}

	BeforeAll(func() {
		nsOf["A"], nsOf["B"] = newNamespace(ctx), newNamespace(ctx)
		for i, k := range vKeys {
			_, tokens[k.name] = makeKey(ctx, nsOf[k.ns], fmt.Sprintf("vx-%d", i), func(key *keysv1.ApiKey) {
				key.Spec.Permissions = []keysv1.Permission{"*"}
				if k.billing {
					key.Spec.Audiences = []keysv1.Audience{"billing"}
				}
			})
		}
		// The index follows the informer: wait until every key verifies
		// in its own namespace.
		for _, k := range vKeys {
			scope := vScope{namespaces: []string{k.ns}}
			if k.billing {
				scope.audiences = []string{"billing"}
			}
			Eventually(func() string { return forwardAuth(tokens[k.name], scope, nsOf).code }).Should(Equal(vValid), k.name)
		}
	})

	for _, k := range vKeys {
		for col, s := range vScopes {
			want := k.want[col]
			It(fmt.Sprintf("forward-auth | %s | gateway states %s → %s", k.name, s.name, want), func() {
				r := forwardAuth(tokens[k.name], s, nsOf)
				Expect(r.code).To(Equal(want))
				Expect(r.status).To(Equal(map[string]int{vValid: 200, vWrongNS: 401, vWrongAu: 401, vNone: 400}[want]))
				if want != vValid {
					Expect(r.namespace).To(BeEmpty(), "a refusal names no key")
				} else {
					Expect(r.namespace).To(Equal(nsOf[k.ns]))
				}
			})
			It(fmt.Sprintf("POST /v1/keys/verify | %s | caller states %s → %s", k.name, s.name, want), func() {
				status, out := verifyJSON(tokens[k.name], s, nsOf)
				if want == vNone {
					Expect(status).To(Equal(400))
					Expect(out["error"]).To(ContainSubstring("--verify-any-namespace"))
					return
				}
				Expect(status).To(Equal(200))
				Expect(out["code"]).To(Equal(want))
				Expect(out["valid"]).To(Equal(want == vValid))
				if want != vValid {
					Expect(out).NotTo(HaveKey("namespace"))
				}
			})
			It(fmt.Sprintf("ApiKeyReview | %s | reviewer states %s → %s", k.name, s.name, want), func() {
				r := &accessv1.ApiKeyReview{Spec: accessv1.ApiKeyReviewSpec{Key: tokens[k.name], Namespaces: names(s.namespaces, nsOf), Audiences: s.audiences}}
				err := k8s.Create(ctx, r)
				if want == vNone {
					Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
					Expect(err.Error()).To(ContainSubstring("--verify-any-namespace"))
					Expect(err.Error()).NotTo(ContainSubstring(tokens[k.name]))
					return
				}
				Expect(err).NotTo(HaveOccurred())
				Expect(r.Status.Reason).To(Equal(want))
				Expect(r.Status.Valid).To(Equal(want == vValid))
				if want != vValid {
					Expect(r.Status.ApiKey).To(BeNil(), "a key outside the review's scope is not described")
				}
			})
		}
	}
})

func names(abstract []string, nsOf map[string]string) []string {
	var out []string
	for _, n := range abstract {
		out = append(out, nsOf[n])
	}
	return out
}

type authAnswer struct {
	status          int
	code, namespace string
}

// forwardAuth asks /v1/auth as a gateway configured with the scope would.
func forwardAuth(tok string, s vScope, nsOf map[string]string) authAnswer {
	q := url.Values{}
	for _, n := range names(s.namespaces, nsOf) {
		q.Add("namespace", n)
	}
	for _, a := range s.audiences {
		q.Add("audience", a)
	}
	req, err := http.NewRequest(http.MethodGet, verifyBase+"/v1/auth?"+q.Encode(), nil)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	return authAnswer{status: resp.StatusCode, code: resp.Header.Get("X-ApiKey-Code"), namespace: resp.Header.Get("X-ApiKey-Namespace")}
}

func verifyJSON(tok string, s vScope, nsOf map[string]string) (int, map[string]any) {
	body, _ := json.Marshal(map[string]any{"key": tok, "namespaces": names(s.namespaces, nsOf), "audiences": s.audiences})
	resp, err := http.Post(verifyBase+"/v1/keys/verify", "application/json", bytes.NewReader(body))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out map[string]any
	ExpectWithOffset(1, json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return resp.StatusCode, out
}
