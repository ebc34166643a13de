package witnessing

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	cosignatures   *prometheus.CounterVec
	size           *prometheus.GaugeVec
	collections    *prometheus.CounterVec
	collectSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "log_witness_requests_total",
			Help: "add-checkpoint requests sent, by witness and HTTP status (\"error\" when no answer).",
		}, []string{"witness", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "log_witness_request_duration_seconds",
			Help:    "add-checkpoint round trip, by witness.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"witness"}),
		cosignatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "log_witness_cosignatures_total",
			Help: "Verified cosignatures obtained, by witness.",
		}, []string{"witness"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "log_witness_cosigned_size",
			Help: "Size of the latest checkpoint each witness cosigned.",
		}, []string{"witness"}),
		collections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "log_witness_collections_total",
			Help: "Checkpoints sent to the witnesses, by whether the quorum was met.",
		}, []string{"quorum"}),
		collectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "log_witness_collection_duration_seconds",
			Help:    "Time to collect cosignatures for one checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.requestSeconds, m.cosignatures, m.size, m.collections, m.collectSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("couldn't register witnessing metrics: %w", err)
		}
	}
	return m, nil
}
