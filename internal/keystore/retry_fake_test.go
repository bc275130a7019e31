package keystore_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The retry rules of kube_retry.go on controller-runtime's fake client,
// which applies JSON patches (tests included) as kube-apiserver does; the
// same scenarios run on a real kube-apiserver in retry_test.go.

// fakeCluster is one namespace on the fake client; it stamps what
// kube-apiserver would (UID, generation 1) on what is created.
func fakeCluster(t *testing.T) (client.WithWatch, string) {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(devenv.Scheme()).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}})
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

// A tenant attacker who knows, or guesses, the exact create another
// caller's crash left unfinished replays it: from another namespace, as
// another user, as the same user name with another UID, as an API key
// of the namespace or of another one. None of them gets a token for the
// key (403 or 409), the key and its pending state are untouched, and the
// creator's own retry still completes it. The fingerprint on the key
// (create-request) is a hash that names neither caller nor token, and no
// answer, error or annotation holds a token (testkit.Leaks).
//
// Not distinguished: an API key deleted and re-created under the same
// name is the same caller here (access.Caller has no key UID). Whoever
// can do that holds write on the namespace's keys, and so could delete
// the unfinished key and create it anew with the same request; the
// retry gives them nothing more, and still only within what they may
// grant (access.CanGrant runs before it).
func TestRetryIsNotAReplayForOtherCallers(t *testing.T) {
	c, ns := fakeCluster(t)
	// mallory may write keys in "other" only; alice and bob anywhere.
	authz := &access.Authorizer{Kubernetes: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		switch n := a.GetUser().GetName(); {
		case n == "alice" || n == "bob":
			return authorizer.DecisionAllow, "", nil
		case n == "mallory" && a.GetNamespace() == "other":
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	})}
	caller := func(u *user.DefaultInfo, key *access.KeyCaller) context.Context {
		return access.WithCaller(context.Background(), &access.Caller{User: u, Key: key})
	}
	alice := caller(&user.DefaultInfo{Name: "alice", UID: "u-1"}, nil)
	req := keystore.NewKey{Name: "billing", Permissions: []string{"invoices:read"}}

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
	crashed := &keystore.Kube{Cache: c, Client: crashing, Authorizer: authz, DefaultLifetime: time.Hour, TokenPrefix: "ak", WriteTimeout: time.Second}
	if _, err := crashed.Create(alice, retryScopes, ns, req); err == nil {
		t.Fatal("the crashing create succeeded")
	}
	later := &keystore.Kube{Cache: c, Client: c, Authorizer: authz, DefaultLifetime: time.Hour, TokenPrefix: "ak", WriteTimeout: time.Second,
		Clock: clocktesting.NewFakePassiveClock(time.Now().Add(time.Minute))}
	before := &keysv1.ApiKey{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(req.Name)}, before); err != nil {
		t.Fatal(err)
	}
	if fp := before.Annotations[keysv1.CreateRequestAnnotation]; !strings.HasPrefix(fp, "sha256:") || strings.Contains(fp, "alice") {
		t.Errorf("create-request is %q, want a hash that does not name its caller", fp)
	}

	var refusals []string
	for what, try := range map[string]struct {
		ctx  context.Context
		ns   string
		want error
	}{
		"a user of another namespace": {caller(&user.DefaultInfo{Name: "mallory"}, nil), ns, access.ErrForbidden},
		"an API key of another namespace": {caller(&user.DefaultInfo{Name: "apikey:other/admin", Groups: []string{access.APIKeyGroup}},
			&access.KeyCaller{Namespace: "other", Name: "admin", Permissions: []string{"*"}}), ns, access.ErrOtherNamespace},
		"an API key of the namespace": {caller(&user.DefaultInfo{Name: "apikey:team/admin", Groups: []string{access.APIKeyGroup}},
			&access.KeyCaller{Namespace: ns, Name: "admin", Permissions: []string{"*"}}), ns, keystore.ErrConflict},
		"another user of the namespace":   {caller(&user.DefaultInfo{Name: "bob", UID: "u-1"}, nil), ns, keystore.ErrConflict},
		"the same user name, another UID": {caller(&user.DefaultInfo{Name: "alice", UID: "u-2"}, nil), ns, keystore.ErrConflict},
		"the same user name, no UID":      {caller(&user.DefaultInfo{Name: "alice"}, nil), ns, keystore.ErrConflict},
		"alice with another namespace":    {alice, "other", nil}, // a key of its own there, not this one
	} {
		issued, err := later.Create(try.ctx, retryScopes, try.ns, req)
		if err != nil {
			refusals = append(refusals, err.Error())
		}
		switch {
		case try.want == nil && err == nil:
			if issued.ID == keystore.IDOf(before.UID) {
				t.Errorf("%s: completed the other namespace's key", what)
			}
		case try.want == nil || !errors.Is(err, try.want):
			t.Errorf("%s: %v, want %v", what, err, try.want)
		}
	}
	after := &keysv1.ApiKey{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(req.Name)}, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Error("a refused replay changed the key")
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: keystore.ObjectName(req.Name)}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused replay wrote the key's Secret: %v", err)
	}

	issued, err := later.Create(alice, retryScopes, ns, req)
	if err != nil {
		t.Fatalf("the creator's own retry after the replays: %v", err)
	}
	if issued.ID != keystore.IDOf(before.UID) || keysecret.Token(fakeSecret(t, c, ns, req.Name)) != issued.Token {
		t.Error("the creator's retry did not complete its key")
	}
	meta, _ := json.Marshal(after.ObjectMeta)
	haystacks := map[string]string{"the key's metadata": string(meta), "refusals": fmt.Sprint(refusals)}
	if _, err := later.Create(alice, retryScopes, ns, req); err != nil {
		haystacks["the completed create, retried"] = err.Error()
	}
	if leaks := testkit.Leaks([]string{issued.Token}, haystacks); len(leaks) > 0 {
		t.Errorf("the token leaked: %v", leaks)
	}
}
