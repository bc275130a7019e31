package hardening_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// nsSnapshot is what a refused request must not change: every ApiKey's
// spec and metadata, and the operator's Secrets.
func nsSnapshot(ctx context.Context, ns string) string {
	keys := &keysv1.ApiKeyList{}
	Expect(k8s.List(ctx, keys, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, k := range keys.Items {
		raw, _ := json.Marshal([]any{k.Name, k.UID, k.Generation, k.Spec, k.Labels, k.Annotations})
		out = append(out, string(raw))
	}
	secrets := &corev1.SecretList{}
	Expect(k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
	for _, s := range secrets.Items {
		out = append(out, s.Name+"@"+s.ResourceVersion)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// nested is a JSON array nested depth deep.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

var _ = Describe("Hostile input", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()
	ns := nsHostile
	var adminTok string
	var before string

	BeforeAll(func() {
		_, adminTok = makeKey(ctx, ns, "hostile-admin", func(k *keysv1.ApiKey) { k.Spec.Permissions = []keysv1.Permission{"*"} })
		Eventually(func() int {
			return apiKey(adminTok).do("GET", "/api/"+ns+"/admin/apiKeys", nil).status
		}).WithTimeout(20 * time.Second).Should(Equal(200))
		before = nsSnapshot(ctx, ns)
	})
	AfterAll(func() {
		Expect(nsSnapshot(ctx, ns)).To(Equal(before), "no hostile request changed anything")
	})

	tenant := func() string { return "/api/" + ns + "/admin/apiKeys" }
	hub := "/v1/hubs/current/api-keys"

	type hostile struct {
		what         string
		method, path func() string
		body         string
		want         int
	}
	s := func(v string) func() string { return func() string { return v } }
	many := func(n int) string {
		q := url.Values{}
		for i := range n {
			q.Add(fmt.Sprintf("p%d", i), "1")
		}
		return q.Encode()
	}
	cases := []hostile{
		{"tenant: body over 1 MiB", s("POST"), tenant, `{"name":"big","description":"` + strings.Repeat("x", 1<<20+10) + `"}`, 413},
		{"tenant: JSON nested 100,000 deep", s("POST"), tenant, `{"name":"deep","permissions":` + nested(100000) + `}`, 400},
		{"tenant: NUL byte in a name", s("POST"), tenant, `{"name":"adm\u0000in"}`, 400},
		{"tenant: Cyrillic look-alike in a name", s("POST"), tenant, `{"name":"hostile-аdmin"}`, 400},
		{"tenant: fullwidth look-alike in a name", s("POST"), tenant, `{"name":"ｈostile-admin"}`, 400},
		{"tenant: zero-width joiner in a name", s("POST"), tenant, `{"name":"hostile-admin\u200d"}`, 400},
		{"tenant: NUL byte in the path", s("GET"), func() string { return tenant() + "/hostile-admin%00" }, "", 400},
		// Names made elsewhere are free text (issue 13), so a look-alike
		// in the path is looked up, and names no key.
		{"tenant: look-alike in the path", s("DELETE"), func() string { return tenant() + "/hostile-%D0%B0dmin" }, "", 404},
		{"tenant: right-to-left override in the path", s("DELETE"), func() string { return tenant() + "/hostile-%E2%80%AEadmin" }, "", 400},
		{"tenant: duplicate JSON keys", s("POST"), tenant, `{"name":"dup1","name":"dup2"}`, 400},
		{"hub: 10,000 query parameters", s("GET"), func() string { return hub + "?" + many(10000) }, "", 400},
		{"hub: huge page number", s("GET"), s(hub + "?page%5Bnumber%5D=99999999999999999999999"), "", 422},
		{"hub: negative page size", s("GET"), s(hub + "?page%5Bsize%5D=-5"), "", 422},
		{"hub: negative page number", s("GET"), s(hub + "?page%5Bnumber%5D=-1"), "", 422},
		{"hub: page size over the limit", s("GET"), s(hub + "?page%5Bsize%5D=1000000"), "", 422},
		{"hub: JSON nested 100,000 deep", s("POST"), s(hub), `{"name":"deep","ips":` + nested(100000) + `}`, 400},
		{"hub: NUL byte in a name", s("POST"), s(hub), `{"name":"a\u0000b","role_id":"000000000000000000000000"}`, 422},
		{"hub: right-to-left override in a name", s("POST"), s(hub), `{"name":"hostile\u202eadmin","role_id":"000000000000000000000000"}`, 422},
		{"hub: line break in a name", s("POST"), s(hub), `{"name":"hostile\nadmin","role_id":"000000000000000000000000"}`, 422},
		{"nexus: body over 1 MiB", s("POST"), s("/v1/api-keys"), `{"id":"big","description":"` + strings.Repeat("x", 1<<20+10) + `"}`, 413},
		{"nexus: NUL byte in an id", s("POST"), s("/v1/api-keys"), `{"id":"a\u0000b"}`, 400},
		{"nexus: the same member in two cases", s("POST"), s("/v1/api-keys"), `{"id":"a","ID":"b"}`, 400},
		{"nexus: JSON nested 100,000 deep", s("POST"), s("/v1/api-keys"), `{"id":"deep","scopes":` + nested(100000) + `}`, 400},
	}
	for _, c := range cases {
		It(fmt.Sprintf("%s → %d with a clear error", c.what, c.want), func() {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := apiKey(adminTok).raw(c.method(), c.path(), body, "X-Hub-Id", ns)
			Expect(r.status).To(Equal(c.want), r.body[:min(len(r.body), 300)])
			Expect(r.header.Get("Content-Type")).To(ContainSubstring("json"))
			Expect(len(r.body)).To(BeNumerically("<", 4096), "the error does not echo the input back")
			Expect(r.body).NotTo(ContainSubstring(adminTok))
		})
	}

	Context("the verify endpoint", func() {
		post := func(body string) response {
			resp, err := http.Post(verifyBase+"/v1/keys/verify", "application/json", strings.NewReader(body))
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
		}
		It("refuses a body over its 64 KiB limit with 413", func() {
			r := post(`{"key":"` + strings.Repeat("a", 1<<20+10) + `"}`)
			Expect(r.status).To(Equal(413), r.body)
		})
		It("refuses JSON nested 100,000 deep with 400", func() {
			Expect(post(`{"key":"x","permissions":` + nested(100000) + `}`).status).To(Equal(400))
		})
		It("refuses 10,000 query parameters on forward-auth without crashing", func() {
			resp, err := http.Get(verifyBase + "/v1/auth?" + many(10000))
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
		})
		It("treats a NUL byte or a look-alike in a key as an unknown key", func() {
			for _, k := range []string{adminTok[:10] + "\x00" + adminTok[11:], strings.Replace(adminTok, "a", "а", 1)} {
				raw, err := json.Marshal(map[string]any{"key": k, "namespaces": []string{nsLeak, nsHostile, nsBrute}})
				Expect(err).NotTo(HaveOccurred())
				r := post(string(raw))
				Expect(r.status).To(Equal(200), r.body)
				Expect(r.json()["valid"]).To(BeFalse())
			}
		})
	})

	It("cuts off clients that never finish their headers (API server: 32 s, verify: 5 s)", func() {
		slow := func(c net.Conn) <-chan struct{} {
			_, err := c.Write([]byte("GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Slow: "))
			Expect(err).NotTo(HaveOccurred())
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				_, _ = io.Copy(io.Discard, c) // returns when the server closes
			}()
			return closed
		}
		v, err := net.Dial("tcp", verifyAddr)
		Expect(err).NotTo(HaveOccurred())
		defer v.Close()
		a, err := tls.Dial("tcp", secureAddr, tlsBase)
		Expect(err).NotTo(HaveOccurred())
		defer a.Close()
		vClosed, aClosed := slow(v), slow(a)
		Eventually(vClosed).WithTimeout(60*time.Second).Should(BeClosed(), "the verify server's ReadHeaderTimeout")
		Eventually(aClosed).WithTimeout(90*time.Second).Should(BeClosed(), "the API server's ReadHeaderTimeout")
		// Both still serve everyone else.
		st, err := verifyFrom(nil, adminTok)
		Expect(err).NotTo(HaveOccurred())
		Expect(st).To(Equal(200))
		Expect(apiKey(adminTok).do("GET", tenant(), nil).status).To(Equal(200))
	})
})
