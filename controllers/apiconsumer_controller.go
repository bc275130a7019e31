package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// apiConsumerReconciler keeps an ApiConsumer's status: how many keys name
// it, and its Ready condition. It enforces nothing: the verify path reads
// consumers' limits from its own informer. It is set up by the ApiKey
// reconciler, whose consumerRef index it reads.
type apiConsumerReconciler struct {
	client.Client
}

func (r *apiConsumerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &keysv1.ApiConsumer{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	keys := &keysv1.ApiKeyList{}
	if err := r.List(ctx, keys, client.InNamespace(c.Namespace), client.MatchingFields{consumerRefIndex: c.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list keys of consumer: %w", err)
	}
	original := c.DeepCopy()
	c.Status.Keys = int32(min(len(keys.Items), 1<<31-1))
	c.Status.ObservedGeneration = c.Generation
	meta.SetStatusCondition(&c.Status.Conditions, consumerReady(c))
	if equality.Semantic.DeepEqual(original.Status, c.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Patch(ctx, c, client.MergeFrom(original)); err != nil {
		return ctrl.Result{}, fmt.Errorf("write consumer status: %w", client.IgnoreNotFound(err))
	}
	return ctrl.Result{}, nil
}

// consumerReady is the Ready condition: always True, since nothing about
// a stored consumer can be wrong that the CRD has not refused; its reason
// and message tell whether any key shares it, and what.
func consumerReady(c *keysv1.ApiConsumer) metav1.Condition {
	cond := metav1.Condition{Type: keysv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: c.Generation}
	shared := "no limit"
	if rl := c.Spec.RateLimit; rl != nil {
		burst := rl.Burst
		if burst < 1 {
			burst = rl.RequestsPerSecond
		}
		shared = fmt.Sprintf("a rate limit of %d requests per second (burst %d)", rl.RequestsPerSecond, burst)
	}
	if c.Status.Keys == 0 {
		cond.Reason = keysv1.ReasonConsumerUnused
		cond.Message = fmt.Sprintf("No ApiKey names this consumer yet; keys whose spec.consumerRef names it will share %s", shared)
		return cond
	}
	cond.Reason = keysv1.ReasonConsumerActive
	cond.Message = fmt.Sprintf("%d ApiKey(s) share %s", c.Status.Keys, shared)
	return cond
}

func (r *apiConsumerReconciler) setup(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&keysv1.ApiConsumer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A key that joins or leaves changes the count: its creation,
		// deletion, or an edit of its consumerRef (the old consumer and
		// the new are both woken).
		Watches(&keysv1.ApiKey{}, handler.EnqueueRequestsFromMapFunc(consumerOfKey),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return consumerName(e.ObjectOld) != consumerName(e.ObjectNew)
			}})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Named("apiconsumer").
		Complete(r)
}

func consumerOfKey(_ context.Context, o client.Object) []ctrl.Request {
	name := consumerName(o)
	if name == "" {
		return nil
	}
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

func consumerName(o client.Object) string {
	if k, ok := o.(*keysv1.ApiKey); ok && k.Spec.ConsumerRef != nil {
		return k.Spec.ConsumerRef.Name
	}
	return ""
}

func indexConsumerRef(o client.Object) []string {
	if name := consumerName(o); name != "" {
		return []string{name}
	}
	return nil
}
