package monitor

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	verifiedSize *prometheus.GaugeVec
	position     *prometheus.GaugeVec
	entries      *prometheus.CounterVec
	alerts       *prometheus.CounterVec
	gossip       *prometheus.CounterVec
	splitViews   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		verifiedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keycommit_monitor_verified_size",
			Help: "Size of the latest checkpoint whose entries were all verified and replayed."}, []string{"log"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keycommit_monitor_position",
			Help: "Number of entries verified and replayed."}, []string{"log"}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_monitor_entries_verified_total",
			Help: "Entries whose inclusion was proven and whose policy decision was replayed."}, []string{"log"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_monitor_alerts_total",
			Help: "Alerts raised, by kind."}, []string{"kind"}),
		gossip: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_monitor_gossip_checkpoints_total",
			Help: "Checkpoints received by gossip, by source kind and result."}, []string{"source", "result"}),
		splitViews: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_monitor_split_views_total",
			Help: "Distinct split-view evidence bundles found."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.verifiedSize, m.position, m.entries, m.alerts, m.gossip, m.splitViews} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("couldn't register monitor metrics: %w", err)
		}
	}
	return m, nil
}
