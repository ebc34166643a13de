package witness

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricsRegisterer is where a Witness registers its collectors: a
// per-instance registry, never the global one.
type MetricsRegisterer = prometheus.Registerer

type metrics struct {
	requests       *prometheus.CounterVec
	requestSeconds prometheus.Histogram
	cosigned       prometheus.Counter
	recosigned     prometheus.Counter
	evidence       *prometheus.CounterVec
	commitSeconds  prometheus.Histogram
	batchOps       prometheus.Histogram
	commitFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "witness_add_checkpoint_requests_total",
			Help: "add-checkpoint requests by HTTP status code.",
		}, []string{"code"}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "witness_add_checkpoint_duration_seconds",
			Help:    "Time to answer an add-checkpoint request.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		cosigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "witness_cosignatures_total",
			Help: "Checkpoints cosigned (after their state was durable).",
		}),
		recosigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "witness_recosignatures_total",
			Help: "Of those, re-cosignatures of the checkpoint already held (answered without a write).",
		}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "witness_fork_evidence_total",
			Help: "Validly signed checkpoints refused as inconsistent with a cosigned one, by kind.",
		}, []string{"kind"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "witness_state_commit_duration_seconds",
			Help:    "Time to commit one batch of state updates to SQLite.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		batchOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "witness_state_commit_batch_ops",
			Help:    "Updates committed per SQLite transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "witness_state_commit_failures_total",
			Help: "SQLite transactions that failed (their requests got 503).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.requestSeconds, m.cosigned, m.recosigned, m.evidence, m.commitSeconds, m.batchOps, m.commitFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("couldn't register witness metrics: %w", err)
		}
	}
	return m, nil
}
