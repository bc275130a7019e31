// Package webhook holds the operator's admission webhooks. ApiKeys get
// their defaults here (expiry, display name, enabled), and the rules about
// a key that need other objects to check: the lifetime policy of the
// cluster and of the key's Namespace, names unique in a namespace, the role
// and the consumer the key names, and the Secret it would write to.
// Changes to an ApiKeyRole that leave keys with fewer permissions, and the
// deletion of an ApiConsumer that keys name, are allowed, with warnings
// that name those keys.
//
// Every webhook admits one kind only and denies anything it cannot read
// with a message that says so; see docs/webhook.md.
package webhook
