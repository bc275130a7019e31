package keystore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// Retried creates (kube_retry.go) on a real kube-apiserver: a create
// whose token no answer carried is completed by the same create of the
// same caller, and by nothing else.

var retryScopes = access.Scopes{Read: "tenant.apiKey:read", Write: "tenant.apiKey:write"}

// alice and bob may do anything with keys; they are different callers.
func retryAuthz() *access.Authorizer {
	return &access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		if n := a.GetUser().GetName(); n == "alice" || n == "bob" {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	})}
}

func as(name string) context.Context {
	return access.WithCaller(context.Background(), &access.Caller{User: &user.DefaultInfo{Name: name}})
}

// newProcess is the store of one API server process; later moves its
// clock past the time another process's create may still run.
func newProcess(c client.Client, later time.Duration) *keystore.Kube {
	s := &keystore.Kube{Cache: plane.cache, Client: c, Authorizer: retryAuthz(), Informers: plane.cache,
		DefaultLifetime: time.Hour, TokenPrefix: "ak", WriteTimeout: time.Second}
	if later > 0 {
		s.Clock = clocktesting.NewFakePassiveClock(time.Now().Add(later))
	}
	return s
}

// crashingAfterKey writes the ApiKey and then fails as a process killed
// there would: no Secret, and no undo of the key.
func crashingAfterKey() client.Client {
	return interceptor.NewClient(plane.k8s.(client.WithWatch), interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				return errors.New("killed")
			}
			return c.Create(ctx, obj, opts...)
		},
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return errors.New("killed")
		},
	})
}

func secretOf(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := plane.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(name)}, s); err != nil {
		t.Fatalf("the Secret of %s: %v", name, err)
	}
	return s
}

func waitCached(t *testing.T, ns, name string) *keysv1.ApiKey {
	t.Helper()
	key := &keysv1.ApiKey{}
	deadline := time.Now().Add(20 * time.Second)
	for plane.cache.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(name)}, key) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the cache never saw %s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return key
}

func TestRetryCompletesACreateThatStoppedAfterItsKey(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t, "retry-key")
	req := keystore.NewKey{Name: "billing", Permissions: []string{"invoices:read"}}
	if _, err := newProcess(crashingAfterKey(), 0).Create(as("alice"), retryScopes, ns, req); err == nil {
		t.Fatal("the crashing create succeeded")
	}
	key := waitCached(t, ns, "billing")

	restarted := newProcess(plane.k8s, 0)
	if _, err := restarted.Create(as("alice"), retryScopes, ns, req); !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("a retry on another process while the first create may still run: %v, want ErrUnavailable (503, Retry-After)", err)
	}
	later := newProcess(plane.k8s, time.Minute)
	wider := req
	wider.Permissions = []string{"*"}
	for what, try := range map[string]func() error{
		"another caller, same request": func() error { _, err := later.Create(as("bob"), retryScopes, ns, req); return err },
		"same caller, another request": func() error { _, err := later.Create(as("alice"), retryScopes, ns, wider); return err },
	} {
		if err := try(); !errors.Is(err, keystore.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", what, err)
		}
	}
	issued, err := later.Create(as("alice"), retryScopes, ns, req)
	if err != nil {
		t.Fatalf("the same create by the same caller: %v", err)
	}
	secret := secretOf(t, ns, "billing")
	if keysecret.Token(secret) != issued.Token || issued.ID != keystore.IDOf(key.UID) {
		t.Errorf("the retry answered a token the key's Secret does not hold, or another key")
	}
	if owner := metav1.GetControllerOf(secret); owner == nil || owner.UID != key.UID {
		t.Errorf("the Secret's owner: %v", secret.OwnerReferences)
	}
	if _, marked := secret.Annotations[keysv1.UndeliveredAnnotation]; marked {
		t.Error("a retry's token is delivered with its answer, and stays marked undelivered")
	}
	if _, err := later.Create(as("alice"), retryScopes, ns, req); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("a create once completed, retried: %v, want ErrConflict", err)
	}
	if keysecret.Token(secretOf(t, ns, "billing")) != issued.Token {
		t.Error("a completed key was re-minted by a create")
	}
}

func TestRetryReplacesOnlyAnUndeliveredToken(t *testing.T) {
	controlPlane(t)
	ns := newNamespace(t, "retry-secret")
	store := newProcess(plane.k8s, 0)
	req := keystore.NewKey{Name: "crashed-before-answer"}

	// The answer is never sent: the process died after the Secret.
	ctx, cancel := context.WithCancel(keystore.WithDelivery(as("alice")))
	first, err := store.Create(ctx, retryScopes, ns, req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if secretOf(t, ns, req.Name).Annotations[keysv1.UndeliveredAnnotation] != keysv1.UndeliveredValue {
		t.Fatal("the Secret of an answer not yet sent is not marked undelivered")
	}
	waitCached(t, ns, req.Name)
	if _, err := store.Create(as("bob"), retryScopes, ns, req); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("another caller: %v, want ErrConflict", err)
	}
	retry, err := store.Create(as("alice"), retryScopes, ns, req)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if retry.Token == first.Token || keysecret.Token(secretOf(t, ns, req.Name)) != retry.Token {
		t.Error("the retry did not replace the token nobody received")
	}
	if _, err := store.Create(as("alice"), retryScopes, ns, req); !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("a second retry: %v, want ErrConflict", err)
	}

	// The answer was sent: no retry replaces its token, and one that
	// arrives while it is being sent waits for it.
	sent := keystore.NewKey{Name: "answered"}
	ctx, cancel = context.WithCancel(keystore.WithDelivery(as("alice")))
	defer cancel()
	issued, err := store.Create(ctx, retryScopes, ns, sent)
	if err != nil {
		t.Fatal(err)
	}
	waitCached(t, ns, sent.Name)
	retried := make(chan error, 1)
	go func() { _, err := store.Create(as("alice"), retryScopes, ns, sent); retried <- err }()
	select {
	case err := <-retried:
		t.Fatalf("a retry did not wait for the create being answered: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	issued.Delivered()
	if err := <-retried; !errors.Is(err, keystore.ErrConflict) {
		t.Errorf("a retry of an answered create: %v, want ErrConflict", err)
	}
	secret := secretOf(t, ns, sent.Name)
	if keysecret.Token(secret) != issued.Token || secret.Annotations[keysv1.UndeliveredAnnotation] != "" {
		t.Error("an answered create's token was replaced, or is still marked undelivered")
	}

	// A token the controller minted for a key whose Secret never came is
	// marked undelivered too, and the retry replaces it.
	taken := keystore.NewKey{Name: "taken-over"}
	if _, err := newProcess(crashingAfterKey(), 0).Create(as("alice"), retryScopes, ns, taken); err == nil {
		t.Fatal("the crashing create succeeded")
	}
	key := waitCached(t, ns, taken.Name)
	minted := keysecret.New(key, "ak_minted_by_the_controller_0123456789abcdef")
	minted.Annotations = map[string]string{keysv1.UndeliveredAnnotation: keysv1.UndeliveredValue}
	if err := plane.k8s.Create(context.Background(), minted); err != nil {
		t.Fatal(err)
	}
	retry, err = newProcess(plane.k8s, time.Minute).Create(as("alice"), retryScopes, ns, taken)
	if err != nil {
		t.Fatalf("retry after the controller took over: %v", err)
	}
	if got := keysecret.Token(secretOf(t, ns, taken.Name)); got != retry.Token || got == keysecret.Token(minted) {
		t.Error("the retry did not replace the controller's undelivered token")
	}
}
