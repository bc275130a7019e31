package operator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AddWatchNamespacesFlag binds --watch-namespaces.
func AddWatchNamespacesFlag(fs *pflag.FlagSet, namespaces *[]string) {
	fs.StringSliceVar(namespaces, "watch-namespaces", *namespaces, "Namespaces to serve (comma-separated); empty: all. With it, objects are watched and served in these namespaces only, so Roles in them are all the RBAC it needs (docs/install.md); keys elsewhere are ignored.")
}

// ValidateWatchNamespaces reports a --watch-namespaces value that is not a
// list of distinct namespace names.
func ValidateWatchNamespaces(namespaces []string) error {
	seen := sets.New[string]()
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, errs[0])
		}
		if seen.Has(ns) {
			return fmt.Errorf("--watch-namespaces: %q is listed twice", ns)
		}
		seen.Insert(ns)
	}
	return nil
}

// namespaceConfigs is the cache's DefaultNamespaces for a watch list: nil
// (every namespace) when the list is empty.
func namespaceConfigs(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	m := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		m[ns] = cache.Config{}
	}
	return m
}

// watchedNamespaces is the API server's reader when it serves only some
// namespaces. A cache of Namespaces would need list and watch on all of
// them, which only a ClusterRole grants; instead a Namespace in the list
// is read by name, uncached (a Role in that namespace allows GET of the
// Namespace itself), and any other does not exist as far as the REST
// dialects are concerned: a 404 in their shape. Every other read goes to
// the cache.
//
// The last answer for each listed namespace is remembered: it is reused
// for namespaceFresh, and served stale when kube-apiserver does not
// answer within namespaceReadTimeout, so reads keep working from the
// cache during an outage, as they do without --watch-namespaces.
type watchedNamespaces struct {
	client.Reader
	live  client.Reader
	names sets.Set[string]
	now   func() time.Time

	mu   sync.Mutex
	last map[string]namespaceAnswer
}

type namespaceAnswer struct {
	ns   *corev1.Namespace // nil: not found
	when time.Time
}

const (
	namespaceFresh       = 10 * time.Second
	namespaceReadTimeout = 2 * time.Second
)

func newWatchedNamespaces(cached, live client.Reader, namespaces []string) client.Reader {
	if len(namespaces) == 0 {
		return cached
	}
	return &watchedNamespaces{Reader: cached, live: live, names: sets.New(namespaces...), now: time.Now, last: map[string]namespaceAnswer{}}
}

func (r *watchedNamespaces) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return r.Reader.Get(ctx, key, obj, opts...)
	}
	if !r.names.Has(key.Name) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), key.Name)
	}
	r.mu.Lock()
	last, known := r.last[key.Name]
	r.mu.Unlock()
	if known && r.now().Sub(last.when) < namespaceFresh {
		return last.into(key.Name, ns)
	}
	readCtx, cancel := context.WithTimeout(ctx, namespaceReadTimeout)
	defer cancel()
	got := &corev1.Namespace{}
	err := r.live.Get(readCtx, key, got, opts...)
	switch {
	case err == nil:
		r.remember(key.Name, got)
	case apierrors.IsNotFound(err):
		r.remember(key.Name, nil)
	case known:
		// kube-apiserver did not answer: the last answer, stale.
		return last.into(key.Name, ns)
	default:
		return err
	}
	r.mu.Lock()
	last = r.last[key.Name]
	r.mu.Unlock()
	return last.into(key.Name, ns)
}

func (r *watchedNamespaces) remember(name string, ns *corev1.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[name] = namespaceAnswer{ns: ns, when: r.now()}
}

func (a namespaceAnswer) into(name string, out *corev1.Namespace) error {
	if a.ns == nil {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	a.ns.DeepCopyInto(out)
	return nil
}
