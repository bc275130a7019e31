// Package limits decides whether a key may make one more request: its
// rate limit (spec.rateLimit), and its consumer's that all the consumer's
// keys share (Subject.Kind KindConsumer), counted either in this replica
// (Local) or in Redis for the whole cluster (Shared).
//
// Invariants:
//   - A Limit is made when a key appears or its limit changes, never per
//     request; Take is the only call on the verify hot path.
//   - Without Redis, Local allocates nothing per Take.
//   - With Redis, Take costs at most one round trip (one EVALSHA of a
//     GCRA script), bounded by --limits-redis-timeout; past it, or while
//     Redis is known to be down, the local share answers instead. A busy
//     limit is leased (several requests per call, used within 100ms) and
//     a refusal is repeated until Redis's Retry-After (at most 1s), so
//     most Takes of a hot key cost none. No lock is held across a call.
//   - Redis keys are a hash of the subject's kind, namespace and name
//     ("apikey-operator:rate:<128-bit hex>" for a key,
//     "apikey-operator:consumer:<128-bit hex>" for a consumer); values
//     are times. No token,
//     hash of a token or object name ever reaches Redis.
package limits
