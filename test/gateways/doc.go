// Package gateways validates the gateway wiring that users copy
// (config/samples/gateways/ and what the chart renders behind
// gateways.envoyGateway.enabled and gateways.istio.enabled) against the
// published Go types of those projects at pinned versions: Gateway API,
// Envoy Gateway, Istio and Envoy (go-control-plane). Every document is
// decoded strictly: an unknown field or kind fails.
//
// It is its own Go module so that the operator's go.mod does not carry
// these projects' dependencies; `make test` runs it.
package gateways
