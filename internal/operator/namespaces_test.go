package operator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestWatchNamespacesFlag(t *testing.T) {
	for name, c := range processes {
		t.Run(name, func(t *testing.T) {
			o, err := parse(c)
			if err != nil || len(o.Keys.WatchNamespaces) != 0 {
				t.Fatalf("default = %v (%v), want all namespaces (empty)", o.Keys.WatchNamespaces, err)
			}
			if o, err = parse(c, "--watch-namespaces=team-a,team-b", "--watch-namespaces=team-c"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"team-a", "team-b", "team-c"}, o.Keys.WatchNamespaces); diff != "" {
				t.Errorf("--watch-namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateWatchNamespaces(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"team-a", "kube-system"}, ""},
		{[]string{""}, `"" is not a namespace name`},
		{[]string{"Team-A"}, `"Team-A" is not a namespace name`},
		{[]string{"a.b"}, `"a.b" is not a namespace name`},
		{[]string{"team-a", "team-a"}, `"team-a" is listed twice`},
	} {
		err := ValidateWatchNamespaces(tc.in)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.wantErr)
		}
	}
	// Every component refuses a bad list before it starts.
	for _, c := range []Components{ControllerProcess, APIServerProcess, AllInOne} {
		o := NewOptions()
		o.Webhook.Disable = true
		o.Keys.WatchNamespaces = []string{"Bad"}
		if err := o.Validate(c); err == nil || !strings.Contains(err.Error(), "--watch-namespaces") {
			t.Errorf("%+v: %v, want a --watch-namespaces error", c, err)
		}
	}
}

func TestCacheOptionsNamespaces(t *testing.T) {
	o := NewOptions()
	if got := o.CacheOptions().DefaultNamespaces; got != nil {
		t.Errorf("no namespaces gave DefaultNamespaces %v, want nil (all)", got)
	}
	o.Keys.WatchNamespaces = []string{"team-a", "team-b"}
	got := o.CacheOptions().DefaultNamespaces
	if diff := cmp.Diff(map[string]cache.Config{"team-a": {}, "team-b": {}}, got); diff != "" {
		t.Errorf("DefaultNamespaces (-want +got):\n%s", diff)
	}
	// The owned-Secrets-only selector stays with a namespace list.
	if len(o.CacheOptions().ByObject) != 1 {
		t.Error("CacheOptions lost the Secret label selector when given namespaces")
	}
}

// countingReader records the keys it was asked for.
type countingReader struct {
	client.Reader
	gets []string
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets = append(r.gets, key.String())
	return r.Reader.Get(ctx, key, obj, opts...)
}

func TestWatchedNamespacesReader(t *testing.T) {
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "team-a"}},
	}
	cached := &countingReader{Reader: fake.NewClientBuilder().WithObjects(objs...).Build()}
	live := &countingReader{Reader: fake.NewClientBuilder().WithObjects(objs...).Build()}

	if r := newWatchedNamespaces(cached, live, nil); r != client.Reader(cached) {
		t.Fatal("with all namespaces served, the cache itself must be used")
	}
	r := newWatchedNamespaces(cached, live, []string{"team-a", "team-gone"})

	// A served namespace is read live, by name.
	if err := r.Get(ctx, client.ObjectKey{Name: "team-a"}, &corev1.Namespace{}); err != nil {
		t.Fatalf("get served namespace: %v", err)
	}
	// One that exists but is not served does not exist for the API server,
	// and costs no request.
	if err := r.Get(ctx, client.ObjectKey{Name: "other"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("get unserved namespace: %v, want NotFound", err)
	}
	// A served one that does not exist is NotFound from the API.
	if err := r.Get(ctx, client.ObjectKey{Name: "team-gone"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("get missing served namespace: %v, want NotFound", err)
	}
	// Everything else comes from the cache.
	if err := r.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "cm"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("get configmap: %v", err)
	}
	if diff := cmp.Diff([]string{"/team-a", "/team-gone"}, live.gets); diff != "" {
		t.Errorf("live reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"team-a/cm"}, cached.gets); diff != "" {
		t.Errorf("cached reads (-want +got):\n%s", diff)
	}
}

// failingReader is kube-apiserver not answering.
type failingReader struct{ client.Reader }

func (failingReader) Get(ctx context.Context, _ client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return context.DeadlineExceeded
}

// A served namespace's last answer is reused while fresh, and served
// stale when kube-apiserver does not answer; with no answer ever, the
// error stands.
func TestWatchedNamespacesOutage(t *testing.T) {
	ctx := context.Background()
	live := &countingReader{Reader: fake.NewClientBuilder().WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}).Build()}
	now := time.Unix(1000, 0)
	r := newWatchedNamespaces(nil, live, []string{"team-a", "team-b"}).(*watchedNamespaces)
	r.now = func() time.Time { return now }
	for range 3 {
		if err := r.Get(ctx, client.ObjectKey{Name: "team-a"}, &corev1.Namespace{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(live.gets) != 1 {
		t.Errorf("live reads within %s: %v, want one", namespaceFresh, live.gets)
	}
	now = now.Add(namespaceFresh)
	r.live = failingReader{}
	got := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: "team-a"}, got); err != nil || got.Name != "team-a" {
		t.Errorf("during an outage: %v, %q; want the last answer", err, got.Name)
	}
	if err := r.Get(ctx, client.ObjectKey{Name: "team-b"}, &corev1.Namespace{}); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("never answered, during an outage: %v, want the error", err)
	}
}
