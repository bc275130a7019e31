package limits

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/go-logr/logr"
)

// Replicas counts the ready verify replicas from the EndpointSlices of
// the verify Service, so that each replica enforces its share of every
// limit (Local.Replicas) without Redis, or while Redis is down.
//
// Why EndpointSlices: they are what the Service routes by, so the count
// is the number of replicas that receive requests (ready ones), kept up
// to date by the cluster as pods start, stop or fail their probes, with
// no coordination among the replicas. A replica that has not synced yet,
// or sees no ready endpoint (its own readiness still pending), counts 1:
// it then enforces the whole limit, never less.
type Replicas struct {
	n         atomic.Int32
	client    kubernetes.Interface
	namespace string
	service   string
	log       logr.Logger
}

// NewReplicas counts the ready endpoints of the Service namespace/name.
func NewReplicas(c kubernetes.Interface, service string, log logr.Logger) (*Replicas, error) {
	ns, name, err := splitService(service)
	if err != nil {
		return nil, err
	}
	r := &Replicas{client: c, namespace: ns, service: name, log: log}
	r.n.Store(1)
	return r, nil
}

// Count is the number of ready replicas, at least 1; Local reads it at
// every take.
func (r *Replicas) Count() *atomic.Int32 { return &r.n }

// NeedLeaderElection is false: every replica counts.
func (r *Replicas) NeedLeaderElection() bool { return false }

// Start watches the Service's EndpointSlices until ctx ends.
func (r *Replicas) Start(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 10*time.Hour,
		informers.WithNamespace(r.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelServiceName + "=" + r.service
		}))
	inf := f.Discovery().V1().EndpointSlices()
	lister := inf.Lister()
	recount := func(any) {
		slices, err := lister.EndpointSlices(r.namespace).List(labels.Everything())
		if err != nil {
			return
		}
		n := ReadyReplicas(slices)
		if old := r.n.Swap(int32(n)); old != int32(n) {
			r.log.Info("verify replicas sharing each rate limit", "service", r.namespace+"/"+r.service, "ready", n)
		}
	}
	if _, err := inf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    recount,
		UpdateFunc: func(_, o any) { recount(o) },
		DeleteFunc: recount,
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	return nil
}

// ReadyReplicas counts the ready endpoints of a Service's slices, at
// least 1. A dual-stack Service has a slice per address family for the
// same pods, so each family is counted on its own and the largest count
// wins; an endpoint without a ready condition counts as ready, as the
// EndpointSlice API defines.
func ReadyReplicas(slices []*discoveryv1.EndpointSlice) int {
	byFamily := map[discoveryv1.AddressType]int{}
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				byFamily[s.AddressType]++
			}
		}
	}
	n := 1
	for _, c := range byFamily {
		n = max(n, c)
	}
	return n
}

// podNamespaceFile is where every Pod finds its own namespace.
var podNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// splitService reads namespace/name, or a name alone in the Pod's own
// namespace (what config/default passes, since kustomize's namespace
// transformer does not rewrite flags).
func splitService(s string) (string, string, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		b, err := os.ReadFile(podNamespaceFile)
		if err != nil {
			return "", "", fmt.Errorf("--limits-verify-service %q names no namespace, and the Pod's own is unknown outside a cluster (%v): write namespace/name", s, err)
		}
		ns, name = strings.TrimSpace(string(b)), s
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--limits-verify-service must be namespace/name (or the name alone, in the Pod's namespace) of the verify Service, not %q", s)
	}
	return ns, name, nil
}
