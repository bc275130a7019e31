package operator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestWatchNamespacesFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		bind func(fs *pflag.FlagSet) func() []string
	}{
		{"controller", func(fs *pflag.FlagSet) func() []string {
			o := NewOptions()
			o.AddFlags(fs)
			return func() []string { return o.WatchNamespaces }
		}},
		{"apiserver", func(fs *pflag.FlagSet) func() []string {
			o := NewAPIServerOptions()
			o.AddFlags(fs, true)
			return func() []string { return o.WatchNamespaces }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet(tc.name, pflag.ContinueOnError)
			got := tc.bind(fs)
			if len(got()) != 0 {
				t.Fatalf("default = %v, want all namespaces (empty)", got())
			}
			if err := fs.Parse([]string{"--watch-namespaces=team-a,team-b", "--watch-namespaces=team-c"}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"team-a", "team-b", "team-c"}, got()); diff != "" {
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
	// Both components refuse a bad list before they start.
	o := NewOptions()
	o.Webhook.Disable = true
	o.WatchNamespaces = []string{"Bad"}
	if err := o.Validate(); err == nil {
		t.Error("controller options accepted --watch-namespaces=Bad")
	}
	a := NewAPIServerOptions()
	a.WatchNamespaces = []string{"Bad"}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "--watch-namespaces") {
		t.Errorf("API server options: %v, want a --watch-namespaces error", err)
	}
}

func TestCacheOptionsNamespaces(t *testing.T) {
	for name, opts := range map[string]func(...string) cache.Options{
		"controller": func(ns ...string) cache.Options { return CacheOptions(time.Hour, ns...) },
		"apiserver":  APIServerCacheOptions,
	} {
		if got := opts().DefaultNamespaces; got != nil {
			t.Errorf("%s: no namespaces gave DefaultNamespaces %v, want nil (all)", name, got)
		}
		got := opts("team-a", "team-b").DefaultNamespaces
		if diff := cmp.Diff(map[string]cache.Config{"team-a": {}, "team-b": {}}, got); diff != "" {
			t.Errorf("%s: DefaultNamespaces (-want +got):\n%s", name, diff)
		}
	}
	// The owned-Secrets-only selector stays with a namespace list.
	if len(CacheOptions(time.Hour, "team-a").ByObject) != 1 {
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
