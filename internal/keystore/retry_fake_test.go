package keystore_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// The retry rules of kube_retry.go on controller-runtime's fake client,
// which applies JSON patches (tests included) as kube-apiserver does; the
// same scenarios run on a real kube-apiserver in retry_test.go.

type builderIndexer struct{ b *fake.ClientBuilder }

func (x builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	x.b.WithIndex(obj, field, fn)
	return nil
}

// fakeCluster is one namespace on the fake client; it stamps what
// kube-apiserver would (UID, generation 1) on what is created.
func fakeCluster(t *testing.T) (client.WithWatch, string) {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(devenv.Scheme()).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	if err := keystore.IndexFields(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if obj.GetUID() == "" {
			obj.SetUID(uuid.NewUUID())
		}
		if k, ok := obj.(*keysv1.ApiKey); ok {
			k.Generation = 1
			k.CreationTimestamp = metav1.Now()
		}
		return c.Create(ctx, obj, opts...)
	}, Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		// kube-apiserver answers a failed JSON patch test with 422; the
		// fake client with json-patch's own error.
		err := c.Patch(ctx, obj, patch, opts...)
		if err != nil && strings.Contains(err.Error(), "test failed") {
			return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Resource: "secrets"}, obj.GetName(), err.Error(), 0, false)
		}
		return err
	}}).Build()
	return c, "team"
}

func fakeProcess(c client.WithWatch, later time.Duration) *keystore.Kube {
	s := &keystore.Kube{Cache: c, Client: c, Authorizer: retryAuthz(), DefaultLifetime: time.Hour, TokenPrefix: "ak", WriteTimeout: time.Second}
	if later > 0 {
		s.Clock = clocktesting.NewFakePassiveClock(time.Now().Add(later))
	}
	return s
}

func fakeSecret(t *testing.T, c client.Client, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(name)}, s); err != nil {
		t.Fatalf("the Secret of %s: %v", name, err)
	}
	return s
}

func TestRetryRulesOnFakeClient(t *testing.T) {
	c, ns := fakeCluster(t)
	req := keystore.NewKey{Name: "billing", Permissions: []string{"invoices:read"}}

	// Stopped after its key: no Secret, no undo.
	crashing := interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				return errors.New("killed")
			}
			return cl.Create(ctx, obj, opts...)
		},
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return errors.New("killed")
		},
	})
	crashed := &keystore.Kube{Cache: c, Client: crashing, Authorizer: retryAuthz(), DefaultLifetime: time.Hour, TokenPrefix: "ak", WriteTimeout: time.Second}
	if _, err := crashed.Create(as("alice"), retryScopes, ns, req); err == nil {
		t.Fatal("the crashing create succeeded")
	}
	if _, err := fakeProcess(c, 0).Create(as("alice"), retryScopes, ns, req); !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("retry on another process within the first one's deadline: %v, want ErrUnavailable", err)
	}
	later := fakeProcess(c, time.Minute)
	wider := req
	wider.Permissions = []string{"*"}
	if _, err := later.Create(as("bob"), retryScopes, ns, req); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("another caller: %v, want ErrConflict", err)
	}
	if _, err := later.Create(as("alice"), retryScopes, ns, wider); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("another request: %v, want ErrConflict", err)
	}
	issued, err := later.Create(as("alice"), retryScopes, ns, req)
	if err != nil {
		t.Fatalf("the same create by the same caller: %v", err)
	}
	if got := keysecret.Token(fakeSecret(t, c, ns, req.Name)); got != issued.Token {
		t.Errorf("the Secret holds another token than the one answered")
	}
	if _, err := later.Create(as("alice"), retryScopes, ns, req); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("retry of a completed create: %v, want ErrConflict", err)
	}

	// Stopped after its Secret, before the answer.
	store := fakeProcess(c, 0)
	lost := keystore.NewKey{Name: "lost-answer"}
	ctx, cancel := context.WithCancel(keystore.WithDelivery(as("alice")))
	first, err := store.Create(ctx, retryScopes, ns, lost)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if fakeSecret(t, c, ns, lost.Name).Annotations[keysv1.UndeliveredAnnotation] != keysv1.UndeliveredValue {
		t.Fatal("not marked undelivered")
	}
	if _, err := store.Create(as("bob"), retryScopes, ns, lost); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("another caller: %v, want ErrConflict", err)
	}
	retry, err := store.Create(as("alice"), retryScopes, ns, lost)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	secret := fakeSecret(t, c, ns, lost.Name)
	if retry.Token == first.Token || keysecret.Token(secret) != retry.Token || secret.Annotations[keysv1.UndeliveredAnnotation] != "" {
		t.Errorf("the retry did not replace the undelivered token and mark it delivered")
	}
	if _, err := store.Create(as("alice"), retryScopes, ns, lost); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("a second retry: %v, want ErrConflict", err)
	}

	// Answered: the retry waits for the answer, then gets 409.
	sent := keystore.NewKey{Name: "answered"}
	ctx, cancel = context.WithCancel(keystore.WithDelivery(as("alice")))
	defer cancel()
	answered, err := store.Create(ctx, retryScopes, ns, sent)
	if err != nil {
		t.Fatal(err)
	}
	retried := make(chan error, 1)
	go func() { _, err := store.Create(as("alice"), retryScopes, ns, sent); retried <- err }()
	select {
	case err := <-retried:
		t.Fatalf("the retry did not wait for the answer: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	answered.Delivered()
	if err := <-retried; !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("retry of an answered create: %v, want ErrConflict", err)
	}
	if keysecret.Token(fakeSecret(t, c, ns, sent.Name)) != answered.Token {
		t.Error("an answered token was replaced")
	}

	// No WithDelivery (a direct caller): delivered when Create returns.
	direct := keystore.NewKey{Name: "direct"}
	if _, err := store.Create(as("alice"), retryScopes, ns, direct); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(as("alice"), retryScopes, ns, direct); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("the same create twice without WithDelivery: %v, want ErrConflict", err)
	}
}
