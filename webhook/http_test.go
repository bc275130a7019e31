package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/apikey-operator/apikey-operator/internal/hashindex"
	"github.com/apikey-operator/apikey-operator/internal/operator"
	"github.com/apikey-operator/apikey-operator/webhook"
)

// These tests drive the webhooks' HTTP handlers directly, with requests
// no API server would send: they must be denied plainly, never crash.

// builderIndexer registers the webhooks' real indexes on a fake client.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.b.WithIndex(obj, field, fn)
	return nil
}

// handlers returns the webhooks by path over a fake cluster with one
// Namespace, with panics left to crash the test rather than be recovered.
func handlers(t testing.TB) map[string]http.Handler {
	t.Helper()
	scheme := operator.Scheme()
	b := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
	if err := webhook.AddIndexes(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	hashes := hashindex.New() // no key holds a hash here
	hashes.MarkSynced()
	hooks, err := webhook.Handlers(scheme, c, c, webhook.Config{DefaultLifetime: time.Hour, MaxLifetime: 2 * time.Hour, Hashes: hashes})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]http.Handler{}
	for path, h := range hooks {
		out[path] = h.WithRecoverPanic(false)
	}
	return out
}

func paths(hs map[string]http.Handler) []string {
	var ps []string
	for p := range hs {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// review posts body to h and returns the AdmissionReview response.
func review(t testing.TB, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200 with an AdmissionReview", rec.Code)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("response is not an AdmissionReview with a response (%v): %s", err, rec.Body.String())
	}
	return out.Response
}

func admissionReview(kind metav1.GroupVersionKind, op admissionv1.Operation, object string) []byte {
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "0d1f5e0c-0000-4000-8000-000000000001", Kind: kind, Operation: op,
			Namespace: "team-a", Name: "k",
		},
	}
	if object != "" {
		ar.Request.Object.Raw = []byte(object)
		ar.Request.OldObject.Raw = []byte(object)
	}
	b, _ := json.Marshal(ar)
	return b
}

var (
	apiKeyGVK = metav1.GroupVersionKind{Group: "keys.apikey-operator.io", Version: "v1alpha1", Kind: "ApiKey"}
	roleGVK   = metav1.GroupVersionKind{Group: "keys.apikey-operator.io", Version: "v1alpha1", Kind: "ApiKeyRole"}
	secretGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}
)

const validKey = `{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKey","metadata":{"name":"k","namespace":"team-a"},"spec":{}}`

func TestUnknownKindIsDenied(t *testing.T) {
	hs := handlers(t)
	want := map[string]string{
		webhook.MutateApiKeyPath:        "keys.apikey-operator.io/v1alpha1 ApiKey",
		webhook.ValidateApiKeyPath:      "keys.apikey-operator.io/v1alpha1 ApiKey",
		webhook.ValidateApiKeyRolePath:  "keys.apikey-operator.io/v1alpha1 ApiKeyRole",
		webhook.ValidateApiConsumerPath: "keys.apikey-operator.io/v1alpha1 ApiConsumer",
	}
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"k","namespace":"team-a"}}`
	for _, path := range paths(hs) {
		resp := review(t, hs[path], admissionReview(secretGVK, admissionv1.Create, secret))
		msg := "this webhook admits only " + want[path] + ", not v1 Secret; fix the rules of the webhook configuration that sent this request"
		if resp.Allowed || resp.Result == nil || resp.Result.Message != msg {
			t.Errorf("%s: got allowed=%v result=%+v, want denied with %q", path, resp.Allowed, resp.Result, msg)
		}
		if string(resp.UID) != "0d1f5e0c-0000-4000-8000-000000000001" {
			t.Errorf("%s: response UID %q does not answer the request", path, resp.UID)
		}
	}
}

func TestUndecodableRequestsAreDenied(t *testing.T) {
	hs := handlers(t)
	cases := []struct {
		name, path string
		body       []byte
		want       string
	}{
		{"object of the wrong shape", webhook.ValidateApiKeyPath,
			admissionReview(apiKeyGVK, admissionv1.Create, `{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKey","spec":{"expiresAt":"next tuesday"}}`),
			"cannot read the ApiKey in request.object of the AdmissionReview: "},
		{"no object", webhook.MutateApiKeyPath, admissionReview(apiKeyGVK, admissionv1.Create, ""),
			"cannot read the ApiKey in request.object of the AdmissionReview: there is no content to decode"},
		{"another kind inside", webhook.ValidateApiKeyRolePath,
			admissionReview(roleGVK, admissionv1.Delete, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"k"}}`),
			"cannot read the ApiKeyRole in request.oldObject of the AdmissionReview: "},
		{"unknown operation", webhook.ValidateApiKeyPath, admissionReview(apiKeyGVK, "PURGE", validKey),
			`this webhook checks CREATE, UPDATE and DELETE of ApiKey, not "PURGE"; fix the webhook configuration's operations`},
		{"not JSON", webhook.ValidateApiKeyPath, []byte("\x00not json"), ""},
		{"no request", webhook.MutateApiKeyPath, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			"this webhook admits only keys.apikey-operator.io/v1alpha1 ApiKey, not a request that names no kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := review(t, hs[c.path], c.body)
			if resp.Allowed || resp.Result == nil || resp.Result.Message == "" {
				t.Fatalf("got allowed=%v result=%+v, want a denial with a message", resp.Allowed, resp.Result)
			}
			if !strings.HasPrefix(resp.Result.Message, c.want) {
				t.Errorf("message %q, want it to start with %q", resp.Result.Message, c.want)
			}
		})
	}
}

// TestValidRequestIsDefaulted makes sure the requests above were refused
// for what they lacked, not because the handlers refuse everything.
func TestValidRequestIsDefaulted(t *testing.T) {
	resp := review(t, handlers(t)[webhook.MutateApiKeyPath], admissionReview(apiKeyGVK, admissionv1.Create, validKey))
	if !resp.Allowed || !bytes.Contains(resp.Patch, []byte("/spec/expiresAt")) || !bytes.Contains(resp.Patch, []byte("/spec/name")) {
		t.Fatalf("got allowed=%v patch=%s result=%+v, want allowed with spec.expiresAt and spec.name added", resp.Allowed, resp.Patch, resp.Result)
	}
}

// FuzzAdmissionReview feeds arbitrary bodies to every webhook: each must
// answer with an AdmissionReview, and deny with a message what it does
// not allow.
func FuzzAdmissionReview(f *testing.F) {
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update, admissionv1.Delete} {
		f.Add(admissionReview(apiKeyGVK, op, validKey))
		f.Add(admissionReview(roleGVK, op, `{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKeyRole","metadata":{"name":"r","namespace":"team-a"},"spec":{"permissions":["*"]}}`))
	}
	f.Add(admissionReview(apiKeyGVK, admissionv1.Create, `{"apiVersion":"keys.apikey-operator.io/v1alpha1","kind":"ApiKey","metadata":{"name":"k"},"spec":{"expiresAt":"2000-01-01T00:00:00Z","roleRef":{"name":"r"},"secretName":"s"}}`))
	f.Add([]byte(`{"request":{"kind":{"group":"keys.apikey-operator.io","version":"v1alpha1","kind":"ApiKey"},"operation":"UPDATE","object":{},"oldObject":null}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	hs := handlers(f)
	ps := paths(hs)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range ps {
			resp := review(t, hs[p], body)
			if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
				t.Fatalf("%s: denied without a message", p)
			}
		}
	})
}
