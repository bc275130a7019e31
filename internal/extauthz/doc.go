// Package extauthz serves Envoy's gRPC external authorization API
// (envoy.service.auth.v3.Authorization/Check) over the verify core, for
// Envoy, Envoy Gateway, Istio and any other Envoy-based gateway.
//
// It is a second front door to the same Verifier that forward-auth uses:
// the same verdicts, metrics, brute-force guard and per-key rate limits.
// It adds only the translation between a CheckRequest and a verify.Request,
// and between a verdict and a CheckResponse.
//
// What the gateway states (the required permissions, and which keys it
// accepts) comes from the route's context extensions, which the client
// cannot set. A permission header is read too, but permissions only add
// requirements, so a client that sends one can only make its own request
// stricter.
//
// The client's address is Envoy's source.address, believed only when the
// gRPC peer is in --trusted-proxies: anyone else who reaches the port
// could claim any address.
//
// The plaintext key never leaves the Check call that carried it: it is
// not logged, echoed or returned, and on an allowed request the gateway
// is told to remove its header before the request goes upstream.
package extauthz
