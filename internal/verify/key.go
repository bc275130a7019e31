package verify

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/quota"
)

// Key is what a verification learns about the ApiKey a token belongs to.
// It is an immutable snapshot: the index replaces it whole when the ApiKey
// or its role changes, so a verification never sees half an update.
type Key struct {
	Namespace string
	// Name is the ApiKey's metadata.name: stable and unique in its
	// namespace, so gateways can key on it.
	Name      string
	KeyPrefix string
	// Role is the ApiKeyRole the key names; empty when none.
	Role    string
	Enabled bool
	// RoleMissing is set while spec.roleRef names a role that does not
	// exist: the key does not verify then, as its Ready condition says.
	RoleMissing bool
	// Consumer is the ApiConsumer the key belongs to (spec.consumerRef);
	// empty when none. ConsumerMissing is set while it does not exist:
	// the key does not verify then, or it would escape the consumer's
	// shared limit.
	Consumer        string
	ConsumerMissing bool
	// ExpiresAt is when the key stops verifying; zero for never.
	ExpiresAt  time.Time
	AllowedIPs []netip.Prefix
	// Permissions are the effective permissions, the role's and the key's,
	// sorted and without duplicates.
	Permissions []string
	// Audiences are the APIs the key is made for: spec.audiences, or its
	// role's when it names none (build).
	Audiences []string
	// PermissionsHeader is Permissions joined with ",", built once so the
	// forward-auth answer allocates nothing for it.
	PermissionsHeader string

	// Usage and LastUsedAt are the key's status.usage and lastUsedAt as
	// the informer last saw them (up to a flush interval behind); Usage
	// is shared and must not be changed.
	Usage      *keysv1.KeyUsage
	LastUsedAt time.Time

	// identity holds the forward-auth answer's header values, built once
	// with the snapshot: header values are slices, and making them per
	// request would cost allocations on the hot path. The fourth, the
	// consumer, is "" for a key without one.
	identity [4][]string

	expiresAt int64 // Unix nanoseconds; 0 for never
	limit     limits.Limit
	quota     quota.Counter // nil: no quota
	// consumerLimit is the consumer's rate limit, one Limit shared by
	// every key of the consumer; nil when it has none.
	consumerLimit limits.Limit
	// consumerQuota is the consumer's quota counter, likewise shared;
	// nil when it has none.
	consumerQuota quota.Counter
	use           *usage
}

// spec is what the index keeps of an ApiKey to rebuild its Key when its
// role changes, without holding the whole object.
type spec struct {
	id         types.NamespacedName
	keyPrefix  string
	enabled    bool
	role       string
	consumer   string
	perms      []string
	audiences  []string
	allowed    []netip.Prefix
	expiresAt  time.Time
	rateLimit  keysv1.RateLimitSpec // zero: no limit
	uid        types.UID
	quota      quota.Quota         // Limit 0: no quota
	quotaSeed  *keysv1.QuotaStatus // status.quota as last seen; read-only
	badAllowed bool                // an allowedIPs entry did not parse: allow no address
	usage      *keysv1.KeyUsage    // as status last recorded it; read-only
	lastUsedAt time.Time
}

func specOf(k *keysv1.ApiKey) spec {
	s := spec{
		id:        types.NamespacedName{Namespace: k.Namespace, Name: k.Name},
		keyPrefix: k.Status.KeyPrefix,
		enabled:   k.IsEnabled(),
	}
	if k.Spec.RoleRef != nil {
		s.role = k.Spec.RoleRef.Name
	}
	if k.Spec.ConsumerRef != nil {
		s.consumer = k.Spec.ConsumerRef.Name
	}
	for _, p := range k.Spec.Permissions {
		s.perms = append(s.perms, string(p))
	}
	for _, a := range k.Spec.Audiences {
		s.audiences = append(s.audiences, string(a))
	}
	s.allowed, s.badAllowed = allowedOf(k.Spec.AllowedIPs)
	if t, ok := k.Expiry(); ok {
		s.expiresAt = t
	}
	s.usage = k.Status.Usage.DeepCopy()
	if k.Status.LastUsedAt != nil {
		s.lastUsedAt = k.Status.LastUsedAt.Time
	}
	s.uid = k.UID
	if q, ok := quota.FromSpec(k.Spec.Quota, k.CreationTimestamp.Time); ok {
		s.quota = q
		s.quotaSeed = k.Status.Quota.DeepCopy()
	}
	s.rateLimit = rateOf(k.Spec.RateLimit)
	return s
}

// rateOf is a rate limit with its default burst (requestsPerSecond);
// zero for none.
func rateOf(rl *keysv1.RateLimitSpec) keysv1.RateLimitSpec {
	if rl == nil || rl.RequestsPerSecond <= 0 {
		return keysv1.RateLimitSpec{}
	}
	out := *rl
	if out.Burst < 1 {
		out.Burst = rl.RequestsPerSecond
	}
	return out
}

// allowedOf parses spec.allowedIPs. The API server validates them, so a
// failure means an object written around validation; the key then allows
// no address rather than every address.
func allowedOf(entries []keysv1.IPOrCIDR) ([]netip.Prefix, bool) {
	strs := make([]string, len(entries))
	for i, e := range entries {
		strs[i] = string(e)
	}
	p, err := parseAllowed(strs)
	if err != nil {
		return nil, true
	}
	return p, false
}

// role is what the index keeps of an ApiKeyRole.
type role struct {
	perms, audiences []string
}

func roleFrom(r *keysv1.ApiKeyRole) role {
	var out role
	for _, p := range r.Spec.Permissions {
		out.perms = append(out.perms, string(p))
	}
	for _, a := range r.Spec.Audiences {
		out.audiences = append(out.audiences, string(a))
	}
	return out
}

// consumer is what the index keeps of an ApiConsumer: its rate limit and
// quota, and the one Limit and quota Counter all its keys take from.
type consumer struct {
	rateLimit keysv1.RateLimitSpec // zero: no limit
	limit     limits.Limit
	uid       types.UID
	quotaDef  quota.Quota // Limit 0: no quota
	quota     quota.Counter
}

// build makes the Key snapshot of a spec with its role (nil: none, or
// not found) and its consumer (nil: none, or not found). It is the one home of a key's effective values on the
// verify path: its permissions and its role's, and its own audiences or,
// when it names none, its role's.
func build(s *spec, r *role, c *consumer, limit limits.Limit, q quota.Counter, use *usage) *Key {
	var rolePerms []string
	audiences := s.audiences
	if r != nil {
		rolePerms = r.perms
		if len(audiences) == 0 {
			audiences = r.audiences
		}
	}
	perms := append(slices.Clone(s.perms), rolePerms...)
	slices.Sort(perms)
	perms = slices.Compact(perms)
	k := &Key{
		Namespace:         s.id.Namespace,
		Name:              s.id.Name,
		KeyPrefix:         s.keyPrefix,
		Role:              s.role,
		Enabled:           s.enabled,
		RoleMissing:       s.role != "" && r == nil,
		Consumer:          s.consumer,
		ConsumerMissing:   s.consumer != "" && c == nil,
		ExpiresAt:         s.expiresAt,
		AllowedIPs:        s.allowed,
		Permissions:       perms,
		Audiences:         audiences,
		PermissionsHeader: strings.Join(perms, ","),
		Usage:             s.usage,
		LastUsedAt:        s.lastUsedAt,
		limit:             limit,
		quota:             q,
		use:               use,
	}
	k.identity = [4][]string{{k.Namespace}, {k.Name}, {k.PermissionsHeader}, {s.consumer}}
	if c != nil {
		k.consumerLimit, k.consumerQuota = c.limit, c.quota
	}
	if s.badAllowed {
		// An impossible block: nothing is inside it.
		k.AllowedIPs = []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), 128)}
	}
	if !s.expiresAt.IsZero() {
		k.expiresAt = s.expiresAt.UnixNano()
	}
	return k
}
