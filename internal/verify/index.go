package verify

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/quota"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// Sum is the SHA-256 of a token: the index's key.
type Sum = [sha256.Size]byte

// indexShards spreads lookups over many locks so that readers on many
// cores do not contend on one lock word.
const indexShards = 64

// Index maps token sums to keys. Lookups take one shard's read lock and
// allocate nothing; writes come from informer events, one at a time.
type Index struct {
	shards [indexShards]indexShard
	// limits makes each key's rate limit, quotas its quota counter; set
	// once, before any key.
	limits limits.Provider
	quotas quota.Provider

	mu      sync.Mutex // serialises writers; guards the fields below
	records map[types.NamespacedName]*record
	// contested are hashes that two or more keys claim (two ApiKeys
	// whose Secrets hold the same token): they resolve to no key until
	// one claimant is left. One token belongs to one key; the controller
	// refuses the second key, and this covers the moment before it does.
	contested  map[Sum][]*record
	roles      map[types.NamespacedName]*role
	keysOfRole map[types.NamespacedName]map[types.NamespacedName]struct{}
	// consumers and keysOfConsumer do the same for ApiConsumers: a
	// consumer's keys share its one Limit.
	consumers      map[types.NamespacedName]*consumer
	keysOfConsumer map[types.NamespacedName]map[types.NamespacedName]struct{}
}

type indexShard struct {
	mu sync.RWMutex
	m  map[Sum]entry
}

// entry is one hash of a key: its current hash (validUntil 0) or a
// rotated-out one that verifies until validUntil (Unix nanoseconds).
type entry struct {
	key        *Key
	validUntil int64
}

type hashRef struct {
	sum        Sum
	validUntil int64
}

// record is the index's state for one ApiKey.
type record struct {
	spec   spec
	hashes []hashRef
	key    *Key
	limit  limits.Limit
	quota  quota.Counter
	use    *usage
}

// NewIndex returns an empty index whose keys are limited in this process
// alone (limits.Local, each replica the whole limit).
func NewIndex() *Index {
	return NewIndexWithLimits(limits.Local{})
}

// NewIndexWithLimits returns an empty index whose keys' rate limits come
// from p: shared through Redis, or each replica's share.
func NewIndexWithLimits(p limits.Provider) *Index {
	ix := &Index{
		limits:     p,
		quotas:     quota.Local{},
		records:    map[types.NamespacedName]*record{},
		contested:  map[Sum][]*record{},
		roles:      map[types.NamespacedName]*role{},
		keysOfRole: map[types.NamespacedName]map[types.NamespacedName]struct{}{},

		consumers:      map[types.NamespacedName]*consumer{},
		keysOfConsumer: map[types.NamespacedName]map[types.NamespacedName]struct{}{},
	}
	for i := range ix.shards {
		ix.shards[i].m = map[Sum]entry{}
	}
	return ix
}

// WithQuotas sets where the keys' quotas are counted (quota.Shared in
// Redis, or quota.Local, exact with one replica); call it before any key
// is added. Default: quota.Local counting as one replica.
func (ix *Index) WithQuotas(p quota.Provider) *Index {
	ix.quotas = p
	return ix
}

// lookup finds the key a token sum belongs to.
func (ix *Index) lookup(sum *Sum) (entry, bool) {
	sh := &ix.shards[sum[0]%indexShards]
	sh.mu.RLock()
	e, ok := sh.m[*sum]
	sh.mu.RUnlock()
	return e, ok
}

// Len is the number of keys in the index.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.records)
}

// SetKey adds or replaces an ApiKey.
func (ix *Index) SetKey(k *keysv1.ApiKey) {
	s := specOf(k)
	hashes := hashesOf(k)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	rec := ix.records[s.id]
	if rec == nil {
		rec = &record{use: &usage{id: s.id}}
		ix.records[s.id] = rec
	}
	ix.unlinkRole(rec)
	if rec.limit == nil || rec.spec.rateLimit != s.rateLimit {
		rec.limit = ix.limiterOf(limits.Subject{Namespace: s.id.Namespace, Name: s.id.Name}, s.rateLimit)
	}
	// A counter lives as long as the key's quota and UID: status.quota
	// changing (every flush) only reseeds it.
	if (rec.quota == nil) != (s.quota.Limit == 0) || !sameQuota(&rec.spec.quota, &s.quota) || rec.spec.uid != s.uid {
		old := rec.quota
		rec.quota = nil
		if s.quota.Limit > 0 {
			rec.quota = ix.quotas.Counter(quota.Subject{Kind: "ApiKey", Namespace: s.id.Namespace, Name: s.id.Name, UID: string(s.uid)}, s.quota)
			// A changed limit or refill keeps what was used (a new
			// UID is a new key, and starts afresh).
			if last, ok := lastOf(old); ok && rec.spec.uid == s.uid {
				last.Tick = s.quota.Tick(time.Unix(0, last.At))
				rec.quota.Seed(last)
			}
		}
		rec.use.setQuota(rec.quota, s.quota)
	}
	if rec.quota != nil {
		if seed, ok := quota.SeedOf(s.quotaSeed, &s.quota); ok {
			rec.quota.Seed(seed)
		}
	}
	rec.spec = s
	ix.linkRole(rec)
	ix.publish(rec, hashes)
}

// DeleteKey removes an ApiKey: its tokens stop verifying at once.
func (ix *Index) DeleteKey(id types.NamespacedName) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	rec := ix.records[id]
	if rec == nil {
		return
	}
	ix.unlinkRole(rec)
	ix.publish(rec, nil)
	delete(ix.records, id)
}

// SetRole adds or replaces an ApiKeyRole and rebuilds the keys naming it.
func (ix *Index) SetRole(r *keysv1.ApiKeyRole) {
	id := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	kept := roleFrom(r)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.roles[id] = &kept
	ix.republishRole(id)
}

// DeleteRole removes an ApiKeyRole: the keys naming it stop verifying.
func (ix *Index) DeleteRole(id types.NamespacedName) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.roles, id)
	ix.republishRole(id)
}

func (ix *Index) republishRole(id types.NamespacedName) {
	for kid := range ix.keysOfRole[id] {
		rec := ix.records[kid]
		ix.publish(rec, rec.hashes)
	}
}

func (ix *Index) roleOf(rec *record) types.NamespacedName {
	return types.NamespacedName{Namespace: rec.spec.id.Namespace, Name: rec.spec.role}
}

func (ix *Index) consumerOf(rec *record) types.NamespacedName {
	return types.NamespacedName{Namespace: rec.spec.id.Namespace, Name: rec.spec.consumer}
}

// linkRole records the role and the consumer a key names, so that a
// change to either rebuilds the key.
func (ix *Index) linkRole(rec *record) {
	if rec.spec.role != "" {
		link(ix.keysOfRole, ix.roleOf(rec), rec.spec.id)
	}
	if rec.spec.consumer != "" {
		link(ix.keysOfConsumer, ix.consumerOf(rec), rec.spec.id)
	}
}

func (ix *Index) unlinkRole(rec *record) {
	if rec.spec.role != "" {
		unlink(ix.keysOfRole, ix.roleOf(rec), rec.spec.id)
	}
	if rec.spec.consumer != "" {
		unlink(ix.keysOfConsumer, ix.consumerOf(rec), rec.spec.id)
	}
}

func link(m map[types.NamespacedName]map[types.NamespacedName]struct{}, to, key types.NamespacedName) {
	if m[to] == nil {
		m[to] = map[types.NamespacedName]struct{}{}
	}
	m[to][key] = struct{}{}
}

func unlink(m map[types.NamespacedName]map[types.NamespacedName]struct{}, from, key types.NamespacedName) {
	delete(m[from], key)
	if len(m[from]) == 0 {
		delete(m, from)
	}
}

// SetConsumer adds or replaces an ApiConsumer and rebuilds its keys. Its
// Limit is made again only when its rate limit changed, and its quota
// Counter only when its quota or UID did, so an edit of its description
// keeps the counts; status.quota changing (every flush) only reseeds the
// counter.
func (ix *Index) SetConsumer(c *keysv1.ApiConsumer) {
	id := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	rl := rateOf(c.Spec.RateLimit)
	q, hasQuota := quota.FromSpec(c.Spec.Quota, c.CreationTimestamp.Time)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.consumers[id]
	next := &consumer{rateLimit: rl, uid: c.UID, quotaDef: q}
	if old != nil && old.rateLimit == rl {
		next.limit = old.limit
	} else {
		next.limit = ix.limiterOf(limits.Subject{Kind: limits.KindConsumer, Namespace: id.Namespace, Name: id.Name}, rl)
	}
	if old != nil && old.quota != nil && hasQuota && old.uid == c.UID && sameQuota(&old.quotaDef, &q) {
		next.quota = old.quota
	} else if hasQuota {
		next.quota = ix.quotas.Counter(quota.Subject{Kind: "ApiConsumer", Namespace: id.Namespace, Name: id.Name, UID: string(c.UID)}, q)
		// A changed limit or refill keeps what was used (a new UID is a
		// new consumer, and starts afresh).
		if old != nil && old.uid == c.UID {
			if last, ok := lastOf(old.quota); ok {
				last.Tick = q.Tick(time.Unix(0, last.At))
				next.quota.Seed(last)
			}
		}
	}
	if next.quota != nil {
		if seed, ok := quota.SeedOf(c.Status.Quota, &q); ok {
			next.quota.Seed(seed)
		}
	}
	ix.consumers[id] = next
	if old == nil || old.limit != next.limit || old.quota != next.quota {
		ix.republishConsumer(id)
	}
}

// DeleteConsumer removes an ApiConsumer: its keys stop verifying.
func (ix *Index) DeleteConsumer(id types.NamespacedName) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.consumers, id)
	ix.republishConsumer(id)
}

func (ix *Index) republishConsumer(id types.NamespacedName) {
	for kid := range ix.keysOfConsumer[id] {
		rec := ix.records[kid]
		ix.publish(rec, rec.hashes)
	}
}

// publish builds the record's Key and points its hashes at it, removing
// the hashes it no longer has. Readers see either the old or the new Key
// for each hash, never a mix within one Key.
func (ix *Index) publish(rec *record, hashes []hashRef) {
	var r *role
	if rec.spec.role != "" {
		r = ix.roles[ix.roleOf(rec)]
	}
	var c *consumer
	if rec.spec.consumer != "" {
		c = ix.consumers[ix.consumerOf(rec)]
	}
	rec.key = build(&rec.spec, r, c, rec.limit, rec.quota, rec.use)
	for _, old := range rec.hashes {
		if !containsSum(hashes, old.sum) {
			ix.release(old.sum, rec)
		}
	}
	rec.hashes = hashes
	for _, h := range hashes {
		ix.claim(h, rec)
	}
}

// claim points a hash at the record's Key, unless another record holds
// it: then the hash is contested and resolves to neither.
func (ix *Index) claim(h hashRef, rec *record) {
	if c, ok := ix.contested[h.sum]; ok {
		if !slices.Contains(c, rec) {
			ix.contested[h.sum] = append(c, rec)
		}
		return
	}
	if e, ok := ix.get(h.sum); ok && e.key.use != rec.use {
		ix.contested[h.sum] = []*record{ix.records[e.key.use.id], rec}
		ix.delete(h.sum)
		return
	}
	ix.put(h.sum, entry{key: rec.key, validUntil: h.validUntil})
}

// release takes a record's claim off a hash; a contested hash left with
// one claimant resolves to it again.
func (ix *Index) release(sum Sum, rec *record) {
	c, ok := ix.contested[sum]
	if !ok {
		ix.remove(sum, rec)
		return
	}
	c = slices.DeleteFunc(c, func(r *record) bool { return r == rec || r == nil })
	switch len(c) {
	case 0:
		delete(ix.contested, sum)
	case 1:
		delete(ix.contested, sum)
		for _, h := range c[0].hashes {
			if h.sum == sum {
				ix.put(sum, entry{key: c[0].key, validUntil: h.validUntil})
			}
		}
	default:
		ix.contested[sum] = c
	}
}

func (ix *Index) get(sum Sum) (entry, bool) { return ix.lookup(&sum) }

func (ix *Index) delete(sum Sum) {
	sh := &ix.shards[sum[0]%indexShards]
	sh.mu.Lock()
	delete(sh.m, sum)
	sh.mu.Unlock()
}

func (ix *Index) put(sum Sum, e entry) {
	sh := &ix.shards[sum[0]%indexShards]
	sh.mu.Lock()
	sh.m[sum] = e
	sh.mu.Unlock()
}

// remove deletes a hash if it still belongs to the record.
func (ix *Index) remove(sum Sum, rec *record) {
	sh := &ix.shards[sum[0]%indexShards]
	sh.mu.Lock()
	if e, ok := sh.m[sum]; ok && e.key.use == rec.use {
		delete(sh.m, sum)
	}
	sh.mu.Unlock()
}

func containsSum(hs []hashRef, s Sum) bool {
	for _, h := range hs {
		if h.sum == s {
			return true
		}
	}
	return false
}

// hashesOf reads status.hash and status.previousHashes. A hash that does
// not parse is skipped: it cannot match any token. An empty hash (the
// Secret holds no usable token) adds nothing, so the key verifies no
// token at all.
func hashesOf(k *keysv1.ApiKey) []hashRef {
	out := make([]hashRef, 0, 1+len(k.Status.PreviousHashes))
	if sum, err := token.ParseHash(k.Status.Hash); err == nil {
		out = append(out, hashRef{sum: sum})
	}
	for _, p := range k.Status.PreviousHashes {
		sum, err := token.ParseHash(p.Hash)
		if err != nil || containsSum(out, sum) {
			continue
		}
		out = append(out, hashRef{sum: sum, validUntil: nonZeroNanos(p.ValidUntil.Time)})
	}
	return out
}

// nonZeroNanos keeps a previous hash's validUntil distinct from 0, which
// marks the current hash.
func nonZeroNanos(t time.Time) int64 {
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1
}

func lastOf(c quota.Counter) (quota.State, bool) {
	if c == nil {
		return quota.State{}, false
	}
	return c.Last()
}

// sameQuota compares two quota definitions; the anchor by instant, as
// two reads of one creationTimestamp may differ in location.
func sameQuota(a, b *quota.Quota) bool {
	return a.Limit == b.Limit && a.Amount == b.Amount && a.Interval == b.Interval && a.Period == b.Period && a.Anchor.Equal(b.Anchor)
}

func (ix *Index) limiterOf(sub limits.Subject, rl keysv1.RateLimitSpec) limits.Limit {
	if rl.RequestsPerSecond <= 0 {
		return nil
	}
	return ix.limits.Limit(sub, limits.Rate{PerSecond: float64(rl.RequestsPerSecond), Burst: int(rl.Burst)})
}
