package verify

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Watch feeds the index from the informers of ApiKey, ApiKeyRole and
// ApiConsumer in a
// controller-runtime cache (the manager's, so the controller and the
// verifier share one watch). It returns functions that report when the
// index has seen every object listed at start.
func (ix *Index) Watch(ctx context.Context, informers cache.Informers) ([]func() bool, error) {
	keys, err := informers.GetInformer(ctx, &keysv1.ApiKey{})
	if err != nil {
		return nil, fmt.Errorf("get ApiKey informer: %w", err)
	}
	roles, err := informers.GetInformer(ctx, &keysv1.ApiKeyRole{})
	if err != nil {
		return nil, fmt.Errorf("get ApiKeyRole informer: %w", err)
	}
	consumers, err := informers.GetInformer(ctx, &keysv1.ApiConsumer{})
	if err != nil {
		return nil, fmt.Errorf("get ApiConsumer informer: %w", err)
	}
	// Roles and consumers first, so that keys listed at start find them.
	rr, err := roles.AddEventHandler(roleHandler{ix})
	if err != nil {
		return nil, fmt.Errorf("watch ApiKeyRoles: %w", err)
	}
	cr, err := consumers.AddEventHandler(consumerHandler{ix})
	if err != nil {
		return nil, fmt.Errorf("watch ApiConsumers: %w", err)
	}
	kr, err := keys.AddEventHandler(keyHandler{ix})
	if err != nil {
		return nil, fmt.Errorf("watch ApiKeys: %w", err)
	}
	return []func() bool{rr.HasSynced, cr.HasSynced, kr.HasSynced}, nil
}

// consumerHandler applies ApiConsumer events to the index.
type consumerHandler struct{ ix *Index }

func (h consumerHandler) OnAdd(obj any, _ bool) { h.set(obj) }

func (h consumerHandler) OnUpdate(_, obj any) { h.set(obj) }

func (h consumerHandler) OnDelete(obj any) {
	if id, ok := deletedID(obj); ok {
		h.ix.DeleteConsumer(id)
	}
}

func (h consumerHandler) set(obj any) {
	if c, ok := obj.(*keysv1.ApiConsumer); ok {
		h.ix.SetConsumer(c)
	}
}

// keyHandler applies ApiKey events to the index.
type keyHandler struct{ ix *Index }

func (h keyHandler) OnAdd(obj any, _ bool) { h.set(obj) }

func (h keyHandler) OnUpdate(_, obj any) { h.set(obj) }

func (h keyHandler) OnDelete(obj any) {
	if id, ok := deletedID(obj); ok {
		h.ix.DeleteKey(id)
	}
}

func (h keyHandler) set(obj any) {
	if k, ok := obj.(*keysv1.ApiKey); ok {
		h.ix.SetKey(k)
	}
}

// roleHandler applies ApiKeyRole events to the index.
type roleHandler struct{ ix *Index }

func (h roleHandler) OnAdd(obj any, _ bool) { h.set(obj) }

func (h roleHandler) OnUpdate(_, obj any) { h.set(obj) }

func (h roleHandler) OnDelete(obj any) {
	if id, ok := deletedID(obj); ok {
		h.ix.DeleteRole(id)
	}
}

func (h roleHandler) set(obj any) {
	if r, ok := obj.(*keysv1.ApiKeyRole); ok {
		h.ix.SetRole(r)
	}
}

// deletedID names a deleted object, including one the informer only
// learned was gone after a relist (DeletedFinalStateUnknown).
func deletedID(obj any) (types.NamespacedName, bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		ns, name, err := toolscache.SplitMetaNamespaceKey(d.Key)
		return types.NamespacedName{Namespace: ns, Name: name}, err == nil
	}
	type named interface {
		GetNamespace() string
		GetName() string
	}
	if o, ok := obj.(named); ok {
		return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, true
	}
	return types.NamespacedName{}, false
}
