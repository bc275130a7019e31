package webhook

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// The webhooks find keys by display name, role and consumer in the
// manager's cache, through indexes of their own (the controller registers
// its own role and consumer indexes under other names; one name cannot be
// registered twice). Keys by token hash come from the process's one index
// (Config.Hashes, internal/hashindex).
const (
	keyNameIndex  = "webhook.keyName"
	roleIndex     = "webhook.roleRef.name"
	consumerIndex = "webhook.consumerRef.name"
)

// AddIndexes registers the cache indexes the webhooks read.
func AddIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, keyNameIndex, indexKeyName); err != nil {
		return fmt.Errorf("index keys by name: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, roleIndex, indexRole); err != nil {
		return fmt.Errorf("index keys by role: %w", err)
	}
	if err := indexer.IndexField(ctx, &keysv1.ApiKey{}, consumerIndex, indexConsumer); err != nil {
		return fmt.Errorf("index keys by consumer: %w", err)
	}
	return nil
}

// indexKeyName indexes only display names that differ from the key's
// object name: the others are found by name (uniqueName), and at 10,000
// keys the index of every name would cost about 5 MB (two entries per key,
// the namespace's and the cluster's, each a set of its own).
func indexKeyName(o client.Object) []string {
	key := o.(*keysv1.ApiKey)
	if name := key.DisplayName(); name != key.Name {
		return []string{name}
	}
	return nil
}

func indexRole(o client.Object) []string {
	if ref := o.(*keysv1.ApiKey).Spec.RoleRef; ref != nil {
		return []string{ref.Name}
	}
	return nil
}

func indexConsumer(o client.Object) []string {
	if ref := o.(*keysv1.ApiKey).Spec.ConsumerRef; ref != nil {
		return []string{ref.Name}
	}
	return nil
}
