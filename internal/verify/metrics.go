package verify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the verify path. No label ever holds a token or a hash: keys
// are named by namespace and name only.
type metrics struct {
	results [numCodes]prometheus.Counter // resolved once: observing allocates nothing
	latency prometheus.Histogram
}

var (
	resultsDesc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_verifications_total",
		Help: "API key verifications by result (Valid, Malformed, NotFound, Disabled, Expired, IPNotAllowed, MissingPermission, RateLimited).",
	}, []string{"result"})
	latencyDesc = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "apikey_verify_duration_seconds",
		Help: "Time the verify core takes for one verification, without HTTP.",
		// 100ns to ~26ms: the core takes well under a microsecond.
		Buckets: prometheus.ExponentialBuckets(100e-9, 4, 10),
	})
	keysDesc = prometheus.NewDesc("apikey_keys",
		"ApiKeys in the verify index by state (active, disabled, expired, role_missing, no_token).",
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
	m := &metrics{latency: latency}
	for c := range numCodes {
		m.results[c] = results.WithLabelValues(c.String())
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

func (m *metrics) observe(c Code, start time.Time) {
	if m == nil {
		return
	}
	m.results[c].Inc()
	m.latency.Observe(time.Since(start).Seconds())
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
	counts := map[string]float64{"active": 0, "disabled": 0, "expired": 0, "role_missing": 0, "no_token": 0}
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
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}
