//go:build e2e

package e2e

import (
	. "github.com/onsi/ginkgo/v2"
)

// One cluster, one release: the scenarios run in this order (later ones
// uninstall and reinstall the chart), and each still reports on its own.
var _ = Describe("apikey-operator installed with its chart", Ordered, ContinueOnFailure, func() {
	chartScenarios()
	keyScenarios()
	disruptionScenarios()
	lifecycleScenarios()
})
