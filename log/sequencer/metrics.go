package sequencer

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a sequencer's Prometheus metrics, registered once. A
// process that replaces its sequencer (a frontend that loses the writer's
// role and later takes it again, log/trillianstore) hands the same
// Metrics to each one through Config.Metrics, so that the metrics are
// registered once and stay live across the replacement: counters go on
// counting, gauges follow the current sequencer.
type Metrics struct {
	reg prometheus.Registerer
	m   *metrics
	cm  *clockMetrics

	witnessOnce sync.Once
	witnessErr  error
	age         atomic.Pointer[func() float64]
}

// NewMetrics registers a sequencer's metrics with r (nil: none).
func NewMetrics(r prometheus.Registerer) (*Metrics, error) {
	m, err := newMetrics(r)
	if err != nil {
		return nil, err
	}
	cm, err := newClockMetrics(r)
	if err != nil {
		return nil, err
	}
	return &Metrics{reg: r, m: m, cm: cm}, nil
}

// registerWitnessing registers the witness loop's metrics once; the age
// gauge reads the quorum age of the sequencer that registered last.
func (ms *Metrics) registerWitnessing(age func() float64) error {
	ms.age.Store(&age)
	ms.witnessOnce.Do(func() {
		ms.witnessErr = ms.m.registerWitnessing(ms.reg, func() float64 {
			if f := ms.age.Load(); f != nil {
				return (*f)()
			}
			return math.NaN()
		})
	})
	return ms.witnessErr
}

type metrics struct {
	submissions   prometheus.Counter
	rejections    *prometheus.CounterVec
	appended      prometheus.Counter
	batchSize     prometheus.Histogram
	latency       prometheus.Histogram
	treeSize      prometheus.Gauge
	storageErrors prometheus.Counter
	witnessErrors prometheus.Counter

	cosignRounds   *prometheus.CounterVec
	cosignRetries  prometheus.Counter
	cosignFailures *prometheus.CounterVec
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
		witnessErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_witness_errors_total", Help: "Witness rounds whose quorum was not met, and cosigned checkpoints that could not be stored."}),
		cosignRounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_log_cosign_rounds_total",
			Help: "Rounds asking every witness to cosign the latest checkpoint, by why: start, checkpoint (newly published), interval (re-cosigning)."}, []string{"reason"}),
		cosignRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_cosign_retries_total",
			Help: "Retries of the witnesses that failed while a round's quorum was not met."}),
		cosignFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_log_cosign_failures_total",
			Help: "Requests to a witness that brought no valid cosignature, by witness."}, []string{"witness"}),
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

// registerWitnessing registers the witness loop's metrics, and the age of
// the stored quorum computed at scrape time by age.
func (m *metrics) registerWitnessing(r prometheus.Registerer, age func() float64) error {
	if r == nil {
		return nil
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keycommit_log_cosigned_quorum_age_seconds",
		Help: "Age, by the log's clock, of the oldest cosignature of the freshest witness quorum stored (NaN before there is one)."}, age)
	for _, c := range []prometheus.Collector{m.cosignRounds, m.cosignRetries, m.cosignFailures, g} {
		if err := r.Register(c); err != nil {
			return errors.Join(errors.New("couldn't register witness loop metrics"), err)
		}
	}
	return nil
}
