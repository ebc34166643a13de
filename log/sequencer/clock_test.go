package sequencer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// twoOfThree is the quorum of a policy with witnesses a, b and c.
func twoOfThree(ws map[string]bool) bool {
	n := 0
	for _, w := range []string{"a", "b", "c"} {
		if ws[w] {
			n++
		}
	}
	return n >= 2
}

// TestJudgeClock is the clock check as a table, with fake observations:
// a quorum agreeing or disagreeing, too few, stale ones, and a clock
// behind the last entry.
func TestJudgeClock(t *testing.T) {
	now := t0
	at := func(offset, age time.Duration) clockObservation {
		return clockObservation{cosig: now.Add(-age - offset), local: now.Add(-age)}
	}
	ahead := 1465 * time.Hour
	for _, tc := range []struct {
		name   string
		last   time.Time
		obs    map[string]clockObservation
		quorum func(map[string]bool) bool
		want   clockState
		reason string
	}{
		{"no witnesses", t0.Add(-time.Hour), nil, nil, clockUnchecked, "no witnesses"},
		{"no observations yet", t0.Add(-time.Hour), nil, twoOfThree, clockUnchecked, "no quorum of witnesses has cosigned within 24h0m0s"},
		{"quorum agrees", t0.Add(-time.Hour), map[string]clockObservation{"a": at(time.Second, time.Minute), "b": at(0, time.Hour)}, twoOfThree, clockOK, ""},
		{"quorum agrees within the skew", t0, map[string]clockObservation{"a": at(10*time.Minute, 0), "b": at(-10*time.Minute, 0)}, twoOfThree, clockOK, ""},
		{"quorum disagrees, clock ahead", t0.Add(-time.Hour), map[string]clockObservation{"a": at(ahead, 0), "b": at(ahead, time.Second), "c": at(0, 0)}, twoOfThree, clockRefused,
			"disagrees by more than 10m0s with a quorum of its witnesses' cosignature timestamps: a (log clock 1465h0m0s ahead), b (log clock 1465h0m0s ahead)"},
		{"quorum disagrees, clock behind", t0.Add(-48 * time.Hour), map[string]clockObservation{"a": at(-time.Hour, 0), "b": at(-11*time.Minute, 0)}, twoOfThree, clockRefused, "b (log clock 11m0s behind)"},
		{"one witness disagrees", t0.Add(-time.Hour), map[string]clockObservation{"a": at(ahead, 0), "b": at(0, 0)}, twoOfThree, clockUnchecked, "disagreeing, short of a quorum: a (log clock 1465h0m0s ahead)"},
		{"stale observations", t0.Add(-time.Hour), map[string]clockObservation{"a": at(ahead, 25*time.Hour), "b": at(ahead, 48*time.Hour)}, twoOfThree, clockUnchecked, "only older cosignatures from a, b"},
		{"one recent, one stale", t0.Add(-time.Hour), map[string]clockObservation{"a": at(0, time.Minute), "b": at(0, 25*time.Hour)}, twoOfThree, clockUnchecked, "only older cosignatures from b"},
		{"behind the last entry, no witnesses", t0.Add(time.Millisecond), nil, nil, clockRefused, "is behind its last entry"},
		{"behind the last entry, witnesses agree", t0.Add(time.Hour), map[string]clockObservation{"a": at(0, 0), "b": at(0, 0)}, twoOfThree, clockRefused, "the last entry is dated 2026-03-01T13:00:00Z, 1h0m0s later"},
		{"at the last entry", t0, nil, nil, clockUnchecked, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judgeClock(now, tc.last, tc.obs, tc.quorum, DefaultClockMaxAge)
			if v.state != tc.want || !strings.Contains(v.reason, tc.reason) {
				t.Errorf("got state %d %q, want %d containing %q", v.state, v.reason, tc.want, tc.reason)
			}
		})
	}
}

// clockLog is a test log whose clock is checked against witnesses a, b
// and c (2 of 3).
func clockLog(t *testing.T) (*testLog, *prometheus.Registry) {
	t.Helper()
	b := storage.NewMemory()
	cfg, c := newConfig(t, b)
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer, cfg.ClockQuorum = reg, twoOfThree
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seq.Close() })
	return &testLog{cfg: cfg, clock: c, seq: seq}, reg
}

// observe reports a cosignature from witness w made at cosig, arriving
// now by the log's clock, as the witness loop does.
func (l *testLog) observe(w string, cosig time.Time) {
	l.seq.cfg.OnCosignature(w, cosig, l.clock.Now())
}

func submitErr(t *testing.T, l *testLog, n int) error {
	t.Helper()
	is := issuertest.Numbered(t, n)
	_, err := l.seq.Submit(context.Background(), is.Register(t))
	return err
}

// TestClockDisagreementRefuses: a log whose clock a quorum of witnesses
// contradicts by 61 days refuses to sequence (ClockError naming the
// clock, the metric says so, nothing is appended); once the witnesses
// vouch for its clock again it sequences.
func TestClockDisagreementRefuses(t *testing.T) {
	l, reg := clockLog(t)
	if err := submitErr(t, l, 1); err != nil {
		t.Fatalf("no observations yet (unchecked clock): %v", err)
	}
	if got := metricValue(t, reg, "keycommit_log_clock_ok"); got != 0 {
		t.Errorf("keycommit_log_clock_ok = %v with no observations, want 0", got)
	}
	l.clock.Set(t0.Add(1465 * time.Hour))
	l.observe("a", t0)
	l.observe("b", t0.Add(time.Second))
	if got := metricValue(t, reg, "keycommit_log_clock_refusing"); got != 1 {
		t.Errorf("keycommit_log_clock_refusing = %v right after the observations, want 1", got)
	}
	size, _ := l.seq.Checkpoint()
	err := submitErr(t, l, 2)
	var ce *ClockError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "its clock disagrees") || !strings.Contains(err.Error(), "1465h0m0s ahead") {
		t.Fatalf("submission with a clock 61 days ahead: %v, want a ClockError naming the offset", err)
	}
	if s, _ := l.seq.Checkpoint(); s != size {
		t.Errorf("tree grew from %d to %d while refusing", size, s)
	}
	if got := metricValue(t, reg, "keycommit_log_clock_refusals_total"); got != 1 {
		t.Errorf("keycommit_log_clock_refusals_total = %v, want 1", got)
	}
	if n := metricCount(t, reg, "keycommit_log_clock_offset_seconds"); n != 2 {
		t.Errorf("offset gauges: %d, want one per witness observed", n)
	}
	// The clock is fixed; the next cosignatures agree.
	l.clock.Set(t0.Add(time.Minute))
	l.observe("a", t0.Add(time.Minute))
	l.observe("b", t0.Add(time.Minute))
	if err := submitErr(t, l, 3); err != nil {
		t.Fatalf("after the witnesses agree again: %v", err)
	}
	if got := metricValue(t, reg, "keycommit_log_clock_ok"); got != 1 {
		t.Errorf("keycommit_log_clock_ok = %v with a quorum agreeing, want 1", got)
	}
}

// TestClockStaleObservationsUnchecked: disagreeing observations older
// than ClockMaxAge no longer count; the log sequences, its clock
// unchecked.
func TestClockStaleObservationsUnchecked(t *testing.T) {
	l, reg := clockLog(t)
	l.clock.Set(t0.Add(1465 * time.Hour))
	l.observe("a", t0)
	l.observe("b", t0)
	if err := submitErr(t, l, 1); err == nil {
		t.Fatal("refusal expected with fresh disagreeing observations")
	}
	l.clock.Set(t0.Add(1465*time.Hour + DefaultClockMaxAge + time.Second))
	if err := submitErr(t, l, 2); err != nil {
		t.Fatalf("with only stale observations: %v, want sequenced (clock unchecked)", err)
	}
	if got := metricValue(t, reg, "keycommit_log_clock_ok") + metricValue(t, reg, "keycommit_log_clock_refusing"); got != 0 {
		t.Errorf("ok + refusing gauges = %v for an unchecked clock, want 0", got)
	}
}

// metricValue returns the value of the metric name (a gauge or counter
// without labels) in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// metricCount returns how many series of the metric name reg holds.
func metricCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
