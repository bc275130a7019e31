package leak

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
)

// Reporter is the local stand-in for GitHub (internal/leak/leaktest).
type Reporter = leaktest.Reporter

// NewReporter generates a reporter's key pair and serves its public half.
var NewReporter = leaktest.NewReporter

func newTestRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
