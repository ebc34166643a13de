package sequencer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	submissions   prometheus.Counter
	rejections    *prometheus.CounterVec
	appended      prometheus.Counter
	batchSize     prometheus.Histogram
	latency       prometheus.Histogram
	treeSize      prometheus.Gauge
	storageErrors prometheus.Counter
	witnessErrors prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		submissions: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_submissions_total", Help: "Submissions received by the sequencer."}),
		rejections:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_log_rejections_total", Help: "Submissions refused, by policy rule."}, []string{"rule"}),
		appended:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_entries_appended_total", Help: "Entries appended, including log-written ones."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keycommit_log_batch_size", Help: "Submissions per sequenced batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keycommit_log_sequencing_latency_seconds", Help: "From submission to durable, published and answered.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		treeSize:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_log_tree_size", Help: "Size of the latest published checkpoint."}),
		storageErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_storage_errors_total", Help: "Batches that storage failed to persist."}),
		witnessErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_witness_errors_total", Help: "Failed witness hook calls."}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.submissions, m.rejections, m.appended, m.batchSize, m.latency, m.treeSize, m.storageErrors, m.witnessErrors} {
		if err := r.Register(c); err != nil {
			return nil, errors.Join(errors.New("couldn't register sequencer metrics"), err)
		}
	}
	return m, nil
}
