package sequencer

// The clock check: log time is anchored in the witnesses (docs/time.md).
// Every fresh cosignature a witness returns is an observation of the
// witness's clock (its timestamp) against the log's (Config.Clock when
// the answer arrived). The sequencer refuses to sequence, rather than
// date entries with a time it cannot stand behind, when
//
//   - its clock is behind its own last entry's time (it would date an
//     entry backwards, or have to reuse that time), or
//   - the witnesses whose latest recent observation disagrees with its
//     clock by more than verify.TimeSkew meet the quorum (every entry it
//     dated now would break the time rule).
//
// With no quorum of recent observations either way (no witnesses, or
// none answering) it sequences as before and says its clock is unchecked:
// a dead witness never blocks sequencing.

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultClockMaxAge is how long a witness's observation of the log's
// clock counts (Config.ClockMaxAge): as long as a user agent accepts a
// cosignature by default (verify.DefaultMaxAge). The witness loop
// re-cosigns far more often, so a healthy log always has recent ones.
const DefaultClockMaxAge = verify.DefaultMaxAge

// ClockError is the error submitters get while the sequencer refuses to
// sequence because of its clock. The HTTP server answers it with 503.
type ClockError struct {
	// Reason says what is wrong with the clock.
	Reason string
}

func (e *ClockError) Error() string {
	return "the log refuses to sequence: its clock " + e.Reason
}

type clockState int

const (
	clockUnchecked clockState = iota
	clockOK
	clockRefused
)

// clockObservation is one witness's latest cosignature timestamp and the
// log's clock when it arrived.
type clockObservation struct {
	cosig, local time.Time
}

// offset is how far the log's clock is ahead of the witness's.
func (o clockObservation) offset() time.Duration { return o.local.Sub(o.cosig) }

type clockVerdict struct {
	state  clockState
	reason string
}

// judgeClock is the clock check: now is the log's clock, last its last
// entry's time, obs the latest observation per witness, quorum the
// witness policy's quorum (nil: no witnesses), maxAge how long an
// observation counts.
func judgeClock(now, last time.Time, obs map[string]clockObservation, quorum func(map[string]bool) bool, maxAge time.Duration) clockVerdict {
	if now.Before(last) {
		return clockVerdict{clockRefused, fmt.Sprintf("is behind its last entry: it reads %s, the last entry is dated %s, %v later; entry times never go backwards",
			now.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano), last.Sub(now))}
	}
	if quorum == nil {
		return clockVerdict{clockUnchecked, "is unchecked: the log has no witnesses"}
	}
	agree, disagree := map[string]bool{}, map[string]bool{}
	var off, stale []string
	names := make([]string, 0, len(obs))
	for w := range obs {
		names = append(names, w)
	}
	sort.Strings(names)
	for _, w := range names {
		o := obs[w]
		if now.Sub(o.local) > maxAge {
			stale = append(stale, w)
			continue
		}
		d := o.offset()
		if d > verify.TimeSkew || d < -verify.TimeSkew {
			disagree[w] = true
			off = append(off, fmt.Sprintf("%s (log clock %v %s)", w, abs(d), aheadBehind(d)))
		} else {
			agree[w] = true
		}
	}
	switch {
	case len(disagree) > 0 && quorum(disagree):
		return clockVerdict{clockRefused, fmt.Sprintf("disagrees by more than %v with a quorum of its witnesses' cosignature timestamps: %s",
			verify.TimeSkew, strings.Join(off, ", "))}
	case quorum(agree):
		return clockVerdict{clockOK, ""}
	}
	reason := fmt.Sprintf("is unchecked: no quorum of witnesses has cosigned within %v", maxAge)
	if len(stale) > 0 {
		reason += fmt.Sprintf(" (only older cosignatures from %s)", strings.Join(stale, ", "))
	}
	if len(off) > 0 {
		reason += fmt.Sprintf("; disagreeing, short of a quorum: %s", strings.Join(off, ", "))
	}
	return clockVerdict{clockUnchecked, reason}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func aheadBehind(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead"
}

// clockCheck holds the observations and reports verdicts (log lines on
// every change of state, metrics).
type clockCheck struct {
	quorum func(map[string]bool) bool
	maxAge time.Duration
	m      *clockMetrics
	logf   func(v clockVerdict)

	mu   sync.Mutex
	obs  map[string]clockObservation
	last clockVerdict
	told bool
}

type clockMetrics struct {
	ok, refusing prometheus.Gauge
	offset       *prometheus.GaugeVec
	refusals     prometheus.Counter
}

func newClockMetrics(r prometheus.Registerer) (*clockMetrics, error) {
	m := &clockMetrics{
		ok: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_log_clock_ok",
			Help: "1 when a quorum of witnesses' recent cosignatures vouches for the log's clock (and it is not behind the last entry), 0 when it is unchecked or refused."}),
		refusing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_log_clock_refusing",
			Help: "1 while the sequencer refuses to sequence because of its clock (behind its last entry, or a quorum of witnesses disagrees), else 0."}),
		offset: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keycommit_log_clock_offset_seconds",
			Help: "The log's clock minus the witness's cosignature timestamp, at the witness's latest cosignature."}, []string{"witness"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_log_clock_refusals_total",
			Help: "Submissions refused because of the log's clock."}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.ok, m.refusing, m.offset, m.refusals} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("couldn't register the clock metrics: %w", err)
			}
		}
	}
	return m, nil
}

// observe records a witness's cosignature timestamp and the log's clock
// when it arrived.
func (c *clockCheck) observe(witness string, cosig, local time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.obs == nil {
		c.obs = map[string]clockObservation{}
	}
	o := clockObservation{cosig: cosig, local: local}
	c.obs[witness] = o
	c.m.offset.WithLabelValues(witness).Set(o.offset().Seconds())
}

// judge returns the verdict for the log's clock reading now and its last
// entry's time, and reports it.
func (c *clockCheck) judge(now, last time.Time) clockVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := judgeClock(now, last, c.obs, c.quorum, c.maxAge)
	c.m.ok.Set(b2f(v.state == clockOK))
	c.m.refusing.Set(b2f(v.state == clockRefused))
	if !c.told || v.state != c.last.state {
		c.logf(v)
		c.told = true
	}
	c.last = v
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// logClock logs a change of the clock check's verdict.
func (s *Sequencer) logClock(v clockVerdict) {
	switch v.state {
	case clockRefused:
		s.log.Error("refusing to sequence: the log's clock "+v.reason, "reason", v.reason)
	case clockUnchecked:
		s.log.Warn("the log's clock "+v.reason+"; sequencing anyway", "reason", v.reason)
	default:
		s.log.Info("the log's clock agrees with a quorum of its witnesses")
	}
}

// checkClock judges the log's clock against its last entry and the
// witnesses. s.mu is held.
func (s *Sequencer) checkClock(now time.Time) clockVerdict {
	return s.clock.judge(now, time.UnixMilli(s.lastTime))
}

// observeCosignature is the clock check's part of Config.OnCosignature.
func (s *Sequencer) observeCosignature(witness string, cosig, local time.Time) {
	s.clock.observe(witness, cosig, local)
	s.mu.RLock()
	last := s.lastTime
	s.mu.RUnlock()
	s.clock.judge(s.cfg.Clock(), time.UnixMilli(last))
}
