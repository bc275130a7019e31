package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/audit"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// auditPolicy logs every request with its bodies: the most a policy can
// ask, so the leak check proves bodies never reach the log.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: RequestResponse
`

// The dialects' writes are audit.k8s.io/v1 Events in the API server's
// audit log, through k8s.io/apiserver's --audit-log-path and
// --audit-policy-file: who (the key, with its prefix, or the Kubernetes
// user), from where, what changed and the outcome; and Events on the
// ApiKey name the actor.
var _ = Describe("Audit of dialect writes", func() {
	ctx := context.Background()

	It("records create, update and delete with the actor, the address, the changes and the outcome", func() {
		ns := newNamespace(ctx)
		adminTok := issueKey(ctx, ns, "auditor", "*")
		admin := apiKey(adminTok)
		adminKey := &keysv1.ApiKey{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "auditor"}, adminKey)).To(Succeed())

		created := admin.do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "Audited", "permissions": []string{"invoices:read"}})
		Expect(created.status).To(Equal(201), created.body)
		rememberToken(created.json()["token"].(string))
		updated := admin.do("PUT", "/api/"+ns+"/admin/apiKeys/Audited", map[string]any{"enabled": false})
		Expect(updated.status).To(Equal(200), updated.body)
		// A refused write is audited with its outcome.
		refused := admin.do("POST", "/api/"+ns+"/admin/apiKeys", map[string]any{"name": "Audited"})
		Expect(refused.status).To(Equal(409), refused.body)
		// A Kubernetes user deletes it.
		grantKeys(ctx, ns, "alice", "delete", "get", "list")
		del := kubeUser("alice").do("DELETE", "/api/"+ns+"/admin/apiKeys/Audited", nil)
		Expect(del.status).To(Equal(204), del.body)

		path := "/api/" + ns + "/admin/apiKeys"
		var events []auditv1.Event
		Eventually(func() int {
			events = auditEvents(path)
			return len(events)
		}).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 4))

		create := findEvent(events, "post", path, 201)
		Expect(create.User.Username).To(Equal("apikey:" + ns + "/auditor"))
		Expect(create.Annotations).To(HaveKeyWithValue(audit.ActorKeyAnnotation, ns+"/auditor (prefix "+adminKey.Status.KeyPrefix+")"))
		Expect(create.Annotations).To(HaveKeyWithValue(audit.OperationAnnotation, "create"))
		Expect(create.Annotations).To(HaveKeyWithValue(audit.ApiKeyAnnotation, ns+"/"+keystore.ObjectName("Audited")))
		Expect(create.Annotations).To(HaveKeyWithValue(audit.OutcomeAnnotation, "success"))
		Expect(create.Annotations[audit.ChangesAnnotation]).To(ContainSubstring(`"permissions":["invoices:read"]`))
		Expect(create.SourceIPs).To(ContainElement("127.0.0.1"))
		Expect(create.Stage).To(Equal(auditv1.StageResponseComplete))
		Expect(create.RequestObject).To(BeNil(), "bodies never reach the audit log")
		Expect(create.ResponseObject).To(BeNil(), "the create response holds the token")

		update := findEvent(events, "put", path+"/Audited", 200)
		Expect(update.Annotations).To(HaveKeyWithValue(audit.OperationAnnotation, "update"))
		Expect(update.Annotations).To(HaveKeyWithValue(audit.ChangesAnnotation, `{"enabled":false}`))

		conflict := findEvent(events, "post", path, 409)
		Expect(conflict.Annotations[audit.OutcomeAnnotation]).To(HavePrefix("failure: "))

		remove := findEvent(events, "delete", path+"/Audited", 204)
		Expect(remove.User.Username).To(Equal("alice"))
		Expect(remove.Annotations).NotTo(HaveKey(audit.ActorKeyAnnotation))
		Expect(remove.Annotations).To(HaveKeyWithValue(audit.OperationAnnotation, "delete"))

		// Events on the ApiKey name the actor and the address.
		Eventually(func() []string {
			list := &eventsv1.EventList{}
			Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			var notes []string
			for _, e := range list.Items {
				if e.Regarding.Name == keystore.ObjectName("Audited") {
					notes = append(notes, e.Reason+": "+e.Note)
				}
			}
			return notes
		}).WithTimeout(10 * time.Second).Should(ContainElements(
			HavePrefix(keystore.ReasonCreatedByAPI+": created by apikey:"+ns+"/auditor from 127.0.0.1 through the REST API: "),
			Equal(keystore.ReasonUpdatedByAPI+`: updated by apikey:`+ns+`/auditor from 127.0.0.1 through the REST API: {"enabled":false}`),
			Equal(keystore.ReasonDeletedByAPI+": deleted by alice from 127.0.0.1 through the REST API"),
		))
	})
})

// auditEvents reads the audit log's events for requests under path.
func auditEvents(path string) []auditv1.Event {
	f, err := os.Open(auditLog)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var out []auditv1.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e auditv1.Event
		Expect(json.Unmarshal(sc.Bytes(), &e)).To(Succeed())
		if strings.HasPrefix(e.RequestURI, path) {
			out = append(out, e)
		}
	}
	return out
}

func findEvent(events []auditv1.Event, verb, uri string, code int32) auditv1.Event {
	for _, e := range events {
		if e.Verb == verb && e.RequestURI == uri && e.ResponseStatus != nil && e.ResponseStatus.Code == code {
			return e
		}
	}
	Fail("no audit event for " + verb + " " + uri)
	return auditv1.Event{}
}

func previousHashes(k *keysv1.ApiKey) []string {
	var out []string
	for _, p := range k.Status.PreviousHashes {
		out = append(out, p.Hash)
	}
	return out
}
