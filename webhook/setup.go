package webhook

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// Paths the webhooks are served at; the markers above each webhook name
// the same paths for config/webhook/manifests.yaml.
const (
	MutateApiKeyPath        = "/mutate-keys-apikey-operator-io-v1alpha1-apikey"
	ValidateApiKeyPath      = "/validate-keys-apikey-operator-io-v1alpha1-apikey"
	ValidateApiKeyRolePath  = "/validate-keys-apikey-operator-io-v1alpha1-apikeyrole"
	ValidateApiConsumerPath = "/validate-keys-apikey-operator-io-v1alpha1-apiconsumer"
)

// Setup registers the cache indexes the webhooks read and serves them on
// the manager's webhook server.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	if err := AddIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	hooks, err := Handlers(mgr.GetScheme(), mgr.GetClient(), mgr.GetAPIReader(), cfg)
	if err != nil {
		return err
	}
	server := mgr.GetWebhookServer()
	for path, hook := range hooks {
		server.Register(path, hook)
	}
	return nil
}

// Handlers builds the webhooks by path. cached must serve ApiKeys with
// the indexes of AddIndexes; live reads Namespaces, ApiKeyRoles,
// ApiConsumers and Secrets without a cache; cfg.Hashes finds keys by
// token hash.
func Handlers(scheme *runtime.Scheme, cached, live client.Reader, cfg Config) (map[string]*admission.Webhook, error) {
	if cfg.DefaultLifetime <= 0 {
		return nil, fmt.Errorf("webhook: the default key lifetime must be positive, got %s", cfg.DefaultLifetime)
	}
	if cfg.Hashes == nil {
		return nil, fmt.Errorf("webhook: Config.Hashes must be set (build the webhook with internal/operator.Build)")
	}
	decoder := admission.NewDecoder(scheme)
	policy := lifetimePolicy{clusterMax: cfg.MaxLifetime, live: live}
	newKey := func() *keysv1.ApiKey { return &keysv1.ApiKey{} }
	newRole := func() *keysv1.ApiKeyRole { return &keysv1.ApiKeyRole{} }
	newConsumer := func() *keysv1.ApiConsumer { return &keysv1.ApiConsumer{} }
	return map[string]*admission.Webhook{
		MutateApiKeyPath: {Handler: forKind(apiKeyKind, defaulting[*keysv1.ApiKey]{
			decoder: decoder, newObj: newKey, kind: "ApiKey",
			impl: &apiKeyDefaulter{defaultLifetime: cfg.DefaultLifetime, policy: policy, clock: cfg.clock()},
		})},
		ValidateApiKeyPath: {Handler: forKind(apiKeyKind, validating[*keysv1.ApiKey]{
			decoder: decoder, newObj: newKey, kind: "ApiKey",
			impl: &apiKeyValidator{defaultLifetime: cfg.DefaultLifetime, policy: policy, clock: cfg.clock(), cached: cached, live: live, hashes: cfg.Hashes},
		})},
		ValidateApiKeyRolePath: {Handler: forKind(apiKeyRoleKind, validating[*keysv1.ApiKeyRole]{
			decoder: decoder, newObj: newRole, kind: "ApiKeyRole",
			impl: &apiKeyRoleValidator{cached: cached},
		})},
		ValidateApiConsumerPath: {Handler: forKind(apiConsumerKind, validating[*keysv1.ApiConsumer]{
			decoder: decoder, newObj: newConsumer, kind: "ApiConsumer",
			impl: &apiConsumerValidator{cached: cached},
		})},
	}, nil
}
