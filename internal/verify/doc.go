// Package verify answers "may this API key do this, from here, now?" on
// the hot path of every gateway request.
//
// The answer comes from an in-memory index that informer events on ApiKey
// and ApiKeyRole keep current: a verification makes no API call and reads
// no Secret, and a delete, disable, rotation or role change takes effect
// when its watch event arrives. One core (Verifier.Verify) serves the JSON
// verify endpoint, the forward-auth endpoint for gateways, and any other
// caller such as the aggregated ApiKeyReview.
//
// The plaintext key never leaves the request that carried it: it is not
// logged, echoed, kept, or used in a metric label. The index holds only
// SHA-256 sums.
package verify
