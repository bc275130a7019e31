// Package leak answers secret scanners that report tokens found in
// public, starting with GitHub's secret scanning partner program: it
// checks the report's signature, looks each token up by hash and reacts
// on the key it belongs to (disable, rotate, or only record), and answers
// which tokens were true positives.
//
// Invariants:
//   - Nothing is looked up, counted per token or changed before the
//     request's signature is verified against the reporter's published
//     key; an unsigned, badly signed, oversized, malformed or replayed
//     request gets an answer that says so and nothing else.
//   - A reported token is hashed on arrival and only its hash goes
//     further: into the Revoker, status, events, logs and metrics.
//   - A key is never deleted: the reactions are reversible edits of the
//     key (spec.enabled, the rotate and end-grace-period annotations),
//     made by the controller's own means.
//   - Only the token itself can get a key reported: whoever can make the
//     reporter sign a report with a tenant's token holds that token, which
//     is what "leaked" means.
package leak
