package server

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	// inFlightLimit is each handler's number of slots (429 beyond it).
	inFlightLimit *prometheus.GaugeVec
	// bodyBudget is the bytes of request bodies a handler holds at once
	// (429 beyond it).
	bodyBudget *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_http_requests_total", Help: "HTTP requests by handler and status code."}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keycommit_http_request_duration_seconds", Help: "HTTP request latency by handler.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"handler"}),
		rejections:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_http_submit_rejections_total", Help: "Submissions refused by the policy, by rule."}, []string{"rule"}),
		inFlightLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keycommit_http_in_flight_limit", Help: "Requests each handler works on at once; beyond it the server answers 429."}, []string{"handler"}),
		bodyBudget:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keycommit_http_body_budget_bytes", Help: "Bytes of request bodies each handler holds at once (each request counts its Content-Length, at least 1 KiB); beyond it the server answers 429."}, []string{"handler"}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rejections, m.inFlightLimit, m.bodyBudget} {
		if err := r.Register(c); err != nil {
			return nil, errors.Join(errors.New("couldn't register server metrics"), err)
		}
	}
	return m, nil
}
