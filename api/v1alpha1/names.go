package v1alpha1

import "time"

// Names fixed by the design: tests outside this repository depend on them.
const (
	// SecretKeyField is the Secret data key that holds the plaintext token.
	SecretKeyField = "api-key"

	// ManagedByLabel and ManagedByValue mark every Secret the operator owns;
	// the operator's cache selects Secrets by this label.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "apikey-operator"

	// ApiKeyLabel names the ApiKey that owns a Secret.
	ApiKeyLabel = "keys.apikey-operator.io/apikey"

	// RotateAnnotation on an ApiKey asks for a rotation whenever its value
	// changes (for example `kubectl annotate ak my-key keys.apikey-operator.io/rotate=$(date +%s) --overwrite`).
	RotateAnnotation = "keys.apikey-operator.io/rotate"

	// EndGracePeriodAnnotation on an ApiKey ends every running grace
	// period at once whenever its value changes: the tokens a rotation
	// replaced stop verifying now, so a leaked one can be killed without
	// deleting the key. Set it together with RotateAnnotation to replace
	// the current token too (`kubectl annotate ak my-key
	// keys.apikey-operator.io/rotate=$(date +%s) keys.apikey-operator.io/end-grace-period=$(date +%s) --overwrite`).
	EndGracePeriodAnnotation = "keys.apikey-operator.io/end-grace-period"

	// TokenInUseAnnotation on a key's Secret records the hash of a token
	// the operator refused because another ApiKey already uses it: the
	// key stays refused with that token even after the other key is gone,
	// so a token copied from another tenant never starts working.
	TokenInUseAnnotation = "keys.apikey-operator.io/token-in-use"

	// TokenWriterAnnotation, set to TokenWriterAPIServer on an ApiKey,
	// says the API server is writing the key's Secret with the token it
	// returns in its create answer: the controller waits up to
	// TokenWriterGrace after the key's creation before it mints a token
	// of its own. The API server creates the key first and its Secret,
	// owned by the key, second, so a crash between the two leaves a key
	// without a token (minted after the grace), never a Secret holding a
	// token without its key. On the Secret it marks one the API server
	// wrote, whose creation the controller must see.
	TokenWriterAnnotation = "keys.apikey-operator.io/token-writer"
	TokenWriterAPIServer  = "apiserver"

	// CreateRequestAnnotation on an ApiKey a REST dialect created records
	// which create made it: a SHA-256 over the namespace, the caller's
	// identity and the request as sent (a chosen secret only as its hash).
	// A retry of that same create by that same caller completes the key
	// with a fresh token while no create answer carried one
	// (UndeliveredAnnotation), instead of answering 409.
	CreateRequestAnnotation = "keys.apikey-operator.io/create-request"
	// CreateWriterAnnotation names the API server process that created
	// the key (random per process start): a retry reaching another
	// process waits until the first one's write deadline has surely
	// passed, so two processes never complete one key at once.
	CreateWriterAnnotation = "keys.apikey-operator.io/create-writer"
	// UndeliveredAnnotation, set to UndeliveredValue on a key's Secret,
	// says no create answer has carried its token yet: the API server
	// writes it with the Secret and removes it once its 201 is sent, and
	// the controller sets it on a token it mints for a REST-created key
	// whose Secret never came (TokenWriterGrace). A retry of the key's
	// create (CreateRequestAnnotation) may replace such a token, in one
	// JSON patch that tests the mark and removes it; any other token of
	// the key is never replaced by a create.
	UndeliveredAnnotation = "keys.apikey-operator.io/undelivered"
	UndeliveredValue      = "true"
)

// TokenWriterGrace is how long after a key's creation the controller
// leaves its Secret to the API server (TokenWriterAnnotation): longer than
// any write deadline of the API server (--rest-write-timeout).
const TokenWriterGrace = 30 * time.Second

// Condition types and reasons of ApiKey.status.conditions.
const (
	ConditionReady = "Ready"

	ReasonIssued       = "KeyIssued"
	ReasonExpired      = "Expired"
	ReasonDisabled     = "Disabled"
	ReasonRoleNotFound = "RoleNotFound"
	// ReasonConsumerNotFound: spec.consumerRef names an ApiConsumer that
	// does not exist; the key does not verify until it does.
	ReasonConsumerNotFound = "ConsumerNotFound"
	ReasonSecretInvalid    = "SecretInvalid"
	ReasonSecretTaken      = "SecretNotOwned"
	ReasonTokenInUse       = "TokenInUse"
	ReasonLeaked           = "Leaked"
)

// Reasons of ApiConsumer.status.conditions (type Ready).
const (
	// ReasonConsumerActive: the consumer's limits apply to its keys.
	ReasonConsumerActive = "Active"
	// ReasonConsumerUnused: no ApiKey names the consumer yet; its limits
	// apply as soon as one does. Ready stays True: nothing is wrong.
	ReasonConsumerUnused = "NoKeys"
)

// LeakReactionAnnotation on a Namespace chooses what the leak endpoint
// does to that namespace's keys when a scanner reports one of their
// tokens: disable (the default of --leak-reaction), rotate or report.
const LeakReactionAnnotation = "keys.apikey-operator.io/leak-reaction"
