package keystore_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
	"github.com/apikey-operator/apikey-operator/internal/keystore/keystoretest"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// The tests of this file run on a real kube-apiserver with the CRDs
// installed, started once for the package through devenv.Start and
// stopped by TestMain; the package's other tests need none.

var plane struct {
	once  sync.Once
	err   error
	env   *devenv.Env
	k8s   client.Client
	cache cache.Cache // indexed for the store, as operator.Build indexes it
	stop  context.CancelFunc
}

func TestMain(m *testing.M) {
	code := m.Run()
	if plane.stop != nil {
		plane.stop()
	}
	if plane.env != nil {
		if err := plane.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the control plane:", err)
		}
	}
	os.Exit(code)
}

// controlPlane starts the package's control plane on first use, and a
// cache of ApiKeys, ApiKeyRoles and Namespaces with the store's indexes.
func controlPlane(t *testing.T) {
	t.Helper()
	testkit.ControlPlane(t)
	plane.once.Do(func() {
		env, err := devenv.Start(devenv.Options{})
		if plane.err = err; err != nil {
			return
		}
		plane.env = env
		if plane.k8s, plane.err = client.NewWithWatch(env.Config, client.Options{Scheme: devenv.Scheme()}); plane.err != nil {
			return
		}
		if plane.cache, plane.err = cache.New(env.Config, cache.Options{Scheme: devenv.Scheme()}); plane.err != nil {
			return
		}
		ctx, stop := context.WithCancel(context.Background())
		plane.stop = stop
		for _, obj := range []client.Object{&keysv1.ApiKey{}, &keysv1.ApiKeyRole{}, &corev1.Namespace{}} {
			if _, plane.err = plane.cache.GetInformer(ctx, obj); plane.err != nil {
				return
			}
		}
		go func() { _ = plane.cache.Start(ctx) }()
		if !plane.cache.WaitForCacheSync(ctx) {
			plane.err = fmt.Errorf("the cache did not sync")
		}
	})
	if plane.err != nil {
		t.Fatalf("control plane: %v", plane.err)
	}
}

var namespaces atomic.Int32

// newNamespace creates a namespace and waits until the cache has it.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaces.Add(1))
	ctx := context.Background()
	if err := plane.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for plane.cache.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the cache never saw namespace %s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return name
}

// TestConformance holds the Kubernetes-backed store to the contract the
// in-memory store is held to (keystoretest.RunConformance).
func TestConformance(t *testing.T) {
	controlPlane(t)
	keystoretest.RunConformance(t, func(t *testing.T, authz *access.Authorizer) keystoretest.Fixture {
		store := &keystore.Kube{
			Cache: plane.cache, Client: plane.k8s, Authorizer: authz, Informers: plane.cache,
			DefaultLifetime: 365 * 24 * time.Hour, TokenPrefix: "ak",
		}
		return keystoretest.Fixture{
			Store: store, A: newNamespace(t, "conf-a"), B: newNamespace(t, "conf-b"), Missing: "conf-missing",
			AddRole: func(t *testing.T, ns, name string, perms ...string) {
				role := &keysv1.ApiKeyRole{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
				for _, p := range perms {
					role.Spec.Permissions = append(role.Spec.Permissions, keysv1.Permission(p))
				}
				if err := plane.k8s.Create(context.Background(), role); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
