package webhook

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

var (
	apiKeyKind      = keysv1.GroupVersion.WithKind("ApiKey")
	apiKeyRoleKind  = keysv1.GroupVersion.WithKind("ApiKeyRole")
	apiConsumerKind = keysv1.GroupVersion.WithKind("ApiConsumer")
	keysResource    = keysv1.GroupVersion.WithResource("apikeys").GroupResource()
)

// forKind lets through only requests for one kind. A webhook configuration
// that routes another resource here is a mistake to report plainly, not
// one to guess around.
func forKind(want schema.GroupVersionKind, next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		got := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
		if got != want {
			return admission.Denied(fmt.Sprintf(
				"this webhook admits only %s, not %s; fix the rules of the webhook configuration that sent this request",
				describeKind(want), describeKind(got)))
		}
		return next.Handle(ctx, req)
	})
}

// describeKind spells a kind the way kubectl users know it.
func describeKind(gvk schema.GroupVersionKind) string {
	if gvk.Empty() {
		return "a request that names no kind"
	}
	gv := gvk.GroupVersion().String()
	if gv == "" {
		gv = "<none>"
	}
	return fmt.Sprintf("%s %s", gv, gvk.Kind)
}
