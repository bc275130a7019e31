// Package certs gives the webhook server a certificate when none is
// mounted from files: each replica makes its own short-lived CA and
// serving certificate, adds the CA to the caBundle of the webhook
// configurations, and replaces both well before they expire.
//
// Replicas do not share keys. The caBundle holds the CA of every replica
// that is alive (and of those that died, until their CA expires), so any
// replica the API server reaches is trusted. Only CAs this package made
// are kept in the bundle; expired ones are dropped on every write.
package certs
