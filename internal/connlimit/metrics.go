package connlimit

import "github.com/prometheus/client_golang/prometheus"

// Metrics count, per listener, the connections refused (by the limit that
// refused them) and those open. Labels are the listener's name and the
// limit: never an address, a path or anything a client sent, so nothing
// a client chooses (a token among it) can reach a series.
type Metrics struct {
	refusedVec *prometheus.CounterVec
	openVec    *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg, or takes the ones already
// there (a test builds the operator more than once in one process).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikey_connections_refused_total",
		Help: "Connections closed at once because a listener was at its --max-connections (reason total) or the client's address at its --max-connections-per-address (reason per_address), by listener.",
	}, []string{"listener", "reason"})
	open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "apikey_connections_open",
		Help: "Connections a listener holds now, by listener.",
	}, []string{"listener"})
	m := &Metrics{}
	for _, c := range []struct {
		c   prometheus.Collector
		set func(prometheus.Collector)
	}{
		{refused, func(c prometheus.Collector) { m.refusedVec = c.(*prometheus.CounterVec) }},
		{open, func(c prometheus.Collector) { m.openVec = c.(*prometheus.GaugeVec) }},
	} {
		err := reg.Register(c.c)
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			c.set(are.ExistingCollector)
			continue
		}
		if err != nil {
			return nil, err
		}
		c.set(c.c)
	}
	return m, nil
}

func (m *Metrics) refused(n Name, reason string) {
	if m != nil {
		m.refusedVec.WithLabelValues(string(n), reason).Inc()
	}
}

func (m *Metrics) open(n Name, d float64) {
	if m != nil {
		m.openVec.WithLabelValues(string(n)).Add(d)
	}
}
