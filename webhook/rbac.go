package webhook

// What the webhooks read. Secrets: a metadata-only GET of the one Secret a
// new key names, uncached; the operator keeps no cache of Secrets it does
// not own. Namespaces: a GET for the lifetime annotation.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeys,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apikeyroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=keys.apikey-operator.io,resources=apiconsumers,verbs=get;list;watch
