package verify

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics of the verify path. No label ever holds a token or a hash: keys
// are named by namespace and name only.
type metrics struct {
	results [numCodes]prometheus.Counter // resolved once: observing allocates nothing
	latency prometheus.Histogram
	// byNamespace counts the verdicts on known keys per namespace; each
	// key resolves its namespace's counters once (usage.counters).
	byNamespace *prometheus.CounterVec
	// responses count the verify endpoints' HTTP answers, resolved once.
	responses [numEndpoints][numStatuses]prometheus.Counter
}

// Endpoints and HTTP statuses the responses counter distinguishes; a
// status outside the list counts as "other".
type endpoint uint8

const (
	endpointVerify endpoint = iota
	endpointAuth
	endpointExtAuthz // the gRPC ext_authz server's answers, by their HTTP status
	numEndpoints
)

var (
	endpointNames = [numEndpoints]string{endpointVerify: "verify", endpointAuth: "auth", endpointExtAuthz: "ext_authz"}
	statuses      = [...]int{200, 400, 401, 403, 405, 413, 429, 500, 503}
)

const numStatuses = len(statuses) + 1 // + other

var (
	resultsDesc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_verifications_total",
		Help: "API key verifications by result (Valid, Malformed, NotFound, Disabled, Expired, IPNotAllowed, MissingPermission, RateLimited, QuotaExceeded, QuotaUnavailable).",
	}, []string{"result"})
	latencyDesc = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "apikey_verify_duration_seconds",
		Help: "Time the verify core takes for one verification, without HTTP.",
		// 100ns to ~26ms: the core takes well under a microsecond.
		Buckets: prometheus.ExponentialBuckets(100e-9, 4, 10),
	})
	namespaceDesc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_namespace_verifications_total",
		Help: "Verifications of known keys (the token belongs to an ApiKey) by the key's namespace and result; unknown and malformed tokens have no namespace and count only in apikey_verifications_total.",
	}, []string{"namespace", "result"})
	responsesDesc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_verify_responses_total",
		Help: "HTTP answers of the verify endpoints by endpoint (verify, auth, ext_authz: the HTTP status of a gRPC Check's answer) and status code; 400, 413 and 5xx are errors (a misconfigured gateway or a failing server), the others are verdicts.",
	}, []string{"endpoint", "code"})
	keysDesc = prometheus.NewDesc("apikey_keys",
		"ApiKeys in the verify index by state (active, disabled, expired, role_missing, consumer_missing, no_token).",
		[]string{"state"}, nil)
	expiryDesc = prometheus.NewDesc("apikey_expiration_timestamp_seconds",
		"When each ApiKey expires, as a Unix timestamp (like cert-manager's certificate expiry gauge).",
		[]string{"namespace", "name"}, nil)
)

// newMetrics registers the verify metrics and the index's collector. When
// they are registered already (a second Verifier in one process), the
// first registration's counters are reused.
func newMetrics(reg prometheus.Registerer, ix *Index, now func() time.Time) (*metrics, error) {
	results, err := register(reg, resultsDesc)
	if err != nil {
		return nil, err
	}
	latency, err := register(reg, latencyDesc)
	if err != nil {
		return nil, err
	}
	byNamespace, err := register(reg, namespaceDesc)
	if err != nil {
		return nil, err
	}
	responses, err := register(reg, responsesDesc)
	if err != nil {
		return nil, err
	}
	m := &metrics{latency: latency, byNamespace: byNamespace}
	for c := range numCodes {
		m.results[c] = results.WithLabelValues(c.String())
	}
	for e := range numEndpoints {
		for i := range numStatuses {
			code := "other"
			if i < len(statuses) {
				code = strconv.Itoa(statuses[i])
			}
			m.responses[e][i] = responses.WithLabelValues(endpointNames[e], code)
		}
	}
	if err := reg.Register(&indexCollector{ix: ix, now: now}); err != nil {
		if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
			return nil, err
		}
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			return c, err
		}
		return are.ExistingCollector.(C), nil
	}
	return c, nil
}

func (m *metrics) observe(res *Result, start time.Time) {
	if m == nil {
		return
	}
	m.results[res.Code].Inc()
	if res.Key != nil && res.Key.use != nil {
		m.namespaceCounters(res.Key.use)[res.Code].Inc()
	}
	m.latency.Observe(time.Since(start).Seconds())
}

// namespaceCounters are the key's namespace's counters, looked up in the
// vector on the key's first verdict and kept with the key after that.
func (m *metrics) namespaceCounters(u *usage) *[numCodes]prometheus.Counter {
	if c := u.counters.Load(); c != nil {
		return c
	}
	c := new([numCodes]prometheus.Counter)
	for code := range numCodes {
		c[code] = m.byNamespace.WithLabelValues(u.id.Namespace, code.String())
	}
	u.counters.Store(c)
	return c
}

// respond counts one HTTP answer of a verify endpoint.
func (m *metrics) respond(e endpoint, status int) {
	if m == nil {
		return
	}
	i := len(statuses)
	for j, s := range statuses {
		if s == status {
			i = j
			break
		}
	}
	m.responses[e][i].Inc()
}

// CountExtAuthzAnswer counts one answer of the gRPC ext_authz server by
// the HTTP status it tells the gateway to give (200 when allowed), in
// apikey_verify_responses_total{endpoint="ext_authz"}.
func (v *Verifier) CountExtAuthzAnswer(status int) {
	v.metrics.respond(endpointExtAuthz, status)
}

// indexCollector reports the index's keys when Prometheus scrapes, so
// deleted keys disappear without bookkeeping.
type indexCollector struct {
	ix  *Index
	now func() time.Time
}

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keysDesc
	ch <- expiryDesc
}

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{"active": 0, "disabled": 0, "expired": 0, "role_missing": 0, "consumer_missing": 0, "no_token": 0}
	now := c.now()
	type expiry struct {
		ns, name string
		at       int64
	}
	// Copy under the lock and send after it: a slow scrape must not hold
	// up informer events, and with them revocations.
	c.ix.mu.Lock()
	expiries := make([]expiry, 0, len(c.ix.records))
	for _, rec := range c.ix.records {
		counts[stateOf(rec, now)]++
		if !rec.spec.expiresAt.IsZero() {
			expiries = append(expiries, expiry{rec.spec.id.Namespace, rec.spec.id.Name, rec.spec.expiresAt.Unix()})
		}
	}
	c.ix.mu.Unlock()
	for _, e := range expiries {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(e.at), e.ns, e.name)
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, n, state)
	}
}

func stateOf(rec *record, now time.Time) string {
	k := rec.key
	switch {
	case len(rec.hashes) == 0:
		return "no_token"
	case !k.Enabled:
		return "disabled"
	case k.RoleMissing:
		return "role_missing"
	case k.ConsumerMissing:
		return "consumer_missing"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

var perKeyDesc = prometheus.NewDesc("apikey_key_verifications_total",
	"Verifications of each ApiKey's tokens on this replica since it started, by result (allowed, refused); only with --metrics-per-key.",
	[]string{"namespace", "name", "result"}, nil)

// registerPerKey adds the per-key counters, read from the index at each
// scrape so a deleted key's series go with it.
func registerPerKey(reg prometheus.Registerer, ix *Index) error {
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	if err := reg.Register(perKeyCollector{ix}); err != nil {
		if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
			return fmt.Errorf("register per-key metrics: %w", err)
		}
	}
	return nil
}

type perKeyCollector struct{ ix *Index }

func (c perKeyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- perKeyDesc }

func (c perKeyCollector) Collect(ch chan<- prometheus.Metric) {
	c.ix.mu.Lock()
	uses := make([]*usage, 0, len(c.ix.records))
	for _, rec := range c.ix.records {
		uses = append(uses, rec.use)
	}
	c.ix.mu.Unlock()
	for _, u := range uses {
		ch <- prometheus.MustNewConstMetric(perKeyDesc, prometheus.CounterValue, float64(u.allowed.Load()), u.id.Namespace, u.id.Name, "allowed")
		ch <- prometheus.MustNewConstMetric(perKeyDesc, prometheus.CounterValue, float64(u.refused.Load()), u.id.Namespace, u.id.Name, "refused")
	}
}
