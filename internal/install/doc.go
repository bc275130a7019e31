// Package install holds the tests of what users install: the Helm chart
// (charts/apikey-operator), the kustomize configuration (config/default),
// their RBAC, and the Dockerfile. The tests render them with bin/helm and
// bin/kubectl, apply them to the local control plane, and run the operator
// binary with nothing but the chart's ServiceAccounts' permissions.
package install
