package keystore

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Cache indexes the store looks keys and roles up by.
const (
	displayNameIndex = "keystore.displayName"
	idIndex          = "keystore.id"
)

// IndexFields registers the store's indexes on a cache; call it before the
// cache starts.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, displayNameIndex, func(o client.Object) []string {
		return []string{displayName(o.(*keysv1.ApiKey))}
	}); err != nil {
		return fmt.Errorf("index keys by name: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, idIndex, func(o client.Object) []string {
		return []string{IDOf(o.GetUID())}
	}); err != nil {
		return fmt.Errorf("index keys by id: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKeyRole{}, idIndex, func(o client.Object) []string {
		return []string{IDOf(o.GetUID())}
	}); err != nil {
		return fmt.Errorf("index roles by id: %w", err)
	}
	return nil
}
