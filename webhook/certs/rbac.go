package certs

// The rotator reads and writes only the two webhook configurations, by
// name. These names are the defaults of --mutating-webhook-configuration
// and --validating-webhook-configuration; change both together.
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;update,resourceNames=apikey-operator-mutating-webhook-configuration;apikey-operator-validating-webhook-configuration
