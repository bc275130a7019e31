package leak

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	tokens   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikey_leak_requests_total",
			Help: "Leak reports received from secret scanners, by reporter and result (accepted, unsigned, bad_signature, too_large, replayed, malformed, keys_unavailable, revoke_failed, method_not_allowed).",
		}, []string{"reporter", "result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikey_leak_tokens_total",
			Help: "Tokens in accepted leak reports, by reporter and label: true_positive (a key verifies with it and was acted on) or false_positive.",
		}, []string{"reporter", "label"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.tokens} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
