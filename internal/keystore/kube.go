package keystore

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
)

// Annotations the store keeps on the ApiKeys it writes. None holds a secret.
const (
	CreatedByAnnotation  = "keys.apikey-operator.io/created-by"
	ModifiedByAnnotation = "keys.apikey-operator.io/modified-by"
	ModifiedAtAnnotation = "keys.apikey-operator.io/modified-at"
	// AttributePrefix starts the annotations that hold Key.Attributes.
	AttributePrefix = "attributes.keys.apikey-operator.io/"
)

// Kube is the Store backed by Kubernetes: reads from the informer cache
// (ApiKeys, ApiKeyRoles, Namespaces; never Secrets), writes through the
// API. It creates a key's Secret itself, because only the create response
// may show the token, and the API server has no read access to Secrets.
type Kube struct {
	Cache      client.Reader // the informer cache (no field indexes needed)
	Client     client.Client // uncached writes
	Authorizer *access.Authorizer
	// DefaultLifetime is a new key's life when the request gives none.
	DefaultLifetime time.Duration
	TokenPrefix     string
	Clock           clock.PassiveClock
	// Informers give List the ApiKey informer it keeps its ordered index
	// from; nil: Cache, when it is an informer cache too. Without one,
	// List reads, builds and sorts every key of the namespace per call.
	Informers cache.Informers
	// Recorder puts an Event on each ApiKey written, naming who wrote it;
	// nil: no Events (the audit annotations are written regardless).
	Recorder EventRecorder
	// Hashes tells which keys claim a token hash, to refuse a chosen
	// secret already in use; nil: every cached key is read to tell.
	Hashes *hashindex.Index
	// WriteTimeout is the API server's deadline of a write
	// (--rest-write-timeout): a retried create waits this long, and a
	// little more, after the key's creation by another process before it
	// completes the key (kube_retry.go). Zero: the longest allowed, 20 s.
	WriteTimeout time.Duration

	instanceOnce sync.Once
	instance     string
	inflightMu   sync.Mutex
	inflight     map[string]chan struct{}

	indexMu sync.Mutex
	index   *keyIndex
}

var _ Store = (*Kube)(nil)

func (s *Kube) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}
