package image

// The images this repository builds. Operator() is the Dockerfile's image;
// dockerfile_test.go fails when the two drift apart.

// OperatorBinary is where the operator's binary sits in its image.
const OperatorBinary = "/apikey-operator"

// OperatorLabels are the OCI labels the Dockerfile sets.
var OperatorLabels = map[string]string{
	"org.opencontainers.image.title":       "apikey-operator",
	"org.opencontainers.image.description": "API keys managed the Kubernetes way: ApiKey and ApiKeyRole resources, verified at gateway speed.",
	"org.opencontainers.image.source":      "https://github.com/apikey-operator/apikey-operator",
}

// Operator is the operator's image around binary: both Deployments run it.
func Operator(binary, caBundle string) Spec {
	return Spec{
		Binary:     binary,
		Path:       OperatorBinary,
		Entrypoint: []string{OperatorBinary},
		User:       "65532:65532",
		Labels:     OperatorLabels,
		CABundle:   caBundle,
	}
}

// Static is a minimal image around any other static binary (the pause
// container, the e2e's test client), run as nonroot.
func Static(binary, path string) Spec {
	return Spec{Binary: binary, Path: path, Entrypoint: []string{path}, User: "65532:65532"}
}
