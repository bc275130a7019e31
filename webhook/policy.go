package webhook

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// lifetimeLimit is the longest a key may live, and where that rule comes
// from, so a refusal can tell the user whom to ask.
type lifetimeLimit struct {
	max    time.Duration // zero: no limit
	source string
}

func (l lifetimeLimit) set() bool { return l.max > 0 }

// lifetimePolicy combines --max-key-lifetime with the Namespace annotation.
type lifetimePolicy struct {
	clusterMax time.Duration
	// live reads the Namespace uncached: a policy an admin just set
	// applies to the very next key.
	live client.Reader
}

// limit returns the stricter of the cluster's and the key's namespace's
// limits.
func (p lifetimePolicy) limit(ctx context.Context, key *keysv1.ApiKey) (lifetimeLimit, error) {
	namespace := key.Namespace
	lim := lifetimeLimit{max: p.clusterMax, source: "--max-key-lifetime of apikey-operator"}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := p.live.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return lim, apierrors.NewInternalError(fmt.Errorf("read Namespace %q for its key lifetime policy: %w", namespace, err))
	}
	value, ok := ns.Annotations[MaxKeyLifetimeAnnotation]
	if !ok {
		return lim, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		// Fail closed: a mistyped policy must not let keys live forever.
		return lim, apierrors.NewForbidden(keysResource, key.Name, fmt.Errorf(
			"Namespace %q has annotation %s=%q, which is not a positive duration; ask a cluster admin to set it to one such as 720h, or to remove it",
			namespace, MaxKeyLifetimeAnnotation, value))
	}
	if !lim.set() || d < lim.max {
		lim = lifetimeLimit{max: d, source: fmt.Sprintf("annotation %s on Namespace %q", MaxKeyLifetimeAnnotation, namespace)}
	}
	return lim, nil
}
