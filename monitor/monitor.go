// Package monitor follows keycommit logs and checks everything they
// publish, so that a log that lies is caught.
//
// For each log it reads only the C2SP tlog-tiles read path: it verifies
// each new checkpoint's signature and its consistency with the last
// verified one, proves every entry's inclusion by hashing the entry
// bundles and authenticating the resulting tiles against the checkpoint,
// parses every entry, re-runs policy.Evaluate in log order and applies it,
// and recomputes every snapshot. Anything the log admitted that the
// policy refuses, a wrong snapshot, an issuer's timestamps going
// backwards, an entry dated against the witnesses' cosignatures or in the
// future of the monitor's clock (time.go, docs/time.md), or an entry that
// is not canonical is an alert naming the entry's index and the rule.
//
// It gossips: it serves the latest verified checkpoint of each log (at the
// C2SP witness monitoring path /<hex sha256(origin)>/checkpoint), accepts
// checkpoints POSTed by peers and user agents, and pulls from peer
// monitors and witnesses. Two checkpoints signed by one log that cannot
// both be true are kept as split-view evidence (see Evidence and
// VerifyEvidence) and served.
//
// Following several logs, it cross-checks every issuer seen in two or
// more of them: different commitments shown in force in two logs at once
// for longer than Config.CrossLogGrace are a cross-log alert with evidence
// (crosslog.go, CrossLogEvidence and CheckCrossLog).
//
// Its state lives in one SQLite database, so it resumes where it stopped.
// Alerts are JSON lines (see Alert) written to Config.AlertOut and
// optionally POSTed to a webhook.
package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/durable"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/prometheus/client_golang/prometheus"
)

// LogConfig names a log to follow.
type LogConfig struct {
	// URL is the prefix under which the log serves /checkpoint and
	// /tile/... (its consistency proof endpoint, used only to settle
	// gossip, is URL/v1/proof/consistency).
	URL string
	// VKey is the log's C2SP verifier key.
	VKey string
	// Origin is the log's checkpoint origin line; empty means the key's
	// name.
	Origin string
}

// Config configures a Monitor.
type Config struct {
	// Logs are the logs to follow.
	Logs []LogConfig
	// DataDir holds the monitor's database (monitor.db), created if
	// missing.
	DataDir string
	// Peers are other monitors to pull checkpoints and evidence from
	// (their Handler's URL).
	Peers []string
	// Witnesses are C2SP witnesses to pull cosigned checkpoints from
	// (URL/<hex sha256(origin)>/checkpoint).
	Witnesses []string
	// WitnessPolicy, if set, is the witness policy whose witnesses'
	// cosignatures the monitor verifies and checks entry times against
	// (docs/time.md); without it only the monitor's own clock is.
	WitnessPolicy *quorum.Policy
	// Watch lists issuer origins whose key changes raise alerts (more can
	// be added with Watch or POST /watch; watches are kept).
	Watch []string
	// Webhook, if set, receives every alert as a JSON POST.
	Webhook string
	// AlertOut receives alerts as JSON lines (default os.Stdout).
	AlertOut io.Writer
	// Logger receives progress and errors (default: discard).
	Logger *slog.Logger
	// Registerer receives the monitor's metrics (default: none).
	Registerer prometheus.Registerer
	// HTTPClient is used for every request (default: 30 s timeout).
	HTTPClient *http.Client
	// PollInterval is the pause between rounds in Run (default 10 s);
	// GossipInterval between gossip pulls (default 30 s).
	PollInterval, GossipInterval time.Duration
	// SaveEvery and SaveInterval bound the replay work a crash can lose:
	// progress is saved at least every SaveEvery entries (default 65,536)
	// and every SaveInterval (default 10 s), and whenever an alert is
	// raised.
	SaveEvery    int64
	SaveInterval time.Duration
	// ProgressInterval is how often a progress line is logged while
	// catching up (default 5 s).
	ProgressInterval time.Duration
	// BatchBundles is the number of entry bundles verified together
	// (default 8); FetchWorkers the number fetched and parsed in parallel
	// (default 4). Memory use is bounded by about three batches.
	BatchBundles, FetchWorkers int
	// Now returns the current time (default time.Now): alert and
	// evidence timestamps, and the time check of entries against the
	// monitor's clock, use it.
	Now func() time.Time
	// AdminToken is the operator's token that POST /watch needs (Bearer);
	// nil turns POST /watch off (403). Watches in Watch and Config.Watch
	// need none.
	AdminToken *httpguard.Token
	// CrossLogGrace is the grace window of the cross-log check
	// (crosslog.go): two different commitments of one issuer in two logs
	// are an alert only when the logs' entries show both in force together
	// for longer than it. Zero means verify.DefaultGrace; a negative value
	// means no grace (an overlap of any length is an alert).
	CrossLogGrace time.Duration
	// MaxInFlight bounds the POST requests (/v1/checkpoint, /watch)
	// worked on at once (default 64), and four times it the GET requests;
	// beyond it the monitor answers 429 with Retry-After before reading
	// the body.
	MaxInFlight int
}

// Monitor follows logs, gossips and alerts. Create it with New.
type Monitor struct {
	cfg       Config
	log       *slog.Logger
	out       io.Writer
	hc        *http.Client
	store     *store
	followers []*follower
	byOrigin  map[string]*follower
	byID      map[string]*follower
	metrics   *metrics
	cross     *crossLog

	watchMu sync.RWMutex
	// watches maps a watched issuer to the first index watched in each
	// log: a watch covers the entries a log adds after the watch began
	// (from the size of the log's checkpoint then known), not its history.
	watches map[string]map[string]int64

	gossipMu sync.Mutex
	gossip   map[string]*GossipStatus // by kind and URL

	postLimit *httpguard.Limiter // POST /v1/checkpoint, POST /watch
	readLimit *httpguard.Limiter // every GET of Handler

	deliverMu sync.Mutex
	raised    atomic.Int64 // alerts delivered by this process
}

// New opens (or creates) the monitor's database in cfg.DataDir and
// prepares to follow cfg.Logs.
func New(ctx context.Context, cfg Config) (*Monitor, error) {
	if len(cfg.Logs) == 0 {
		return nil, errors.New("no log to follow: give at least one log URL and verifier key")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory for the monitor's state")
	}
	setDefaults(&cfg)
	if err := durable.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create data directory %s: %w", cfg.DataDir, err)
	}
	st, err := openStore(ctx, filepath.Join(cfg.DataDir, "monitor.db"))
	if err != nil {
		return nil, err
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, out: cfg.AlertOut, hc: cfg.HTTPClient, store: st, postLimit: httpguard.NewLimiter(cfg.MaxInFlight), readLimit: httpguard.NewLimiter(4 * cfg.MaxInFlight),
		byOrigin: map[string]*follower{}, byID: map[string]*follower{}, watches: map[string]map[string]int64{}, cross: newCrossLog(cfg.CrossLogGrace)}
	if m.metrics, err = newMetrics(cfg.Registerer); err != nil {
		st.close()
		return nil, err
	}
	for _, lc := range cfg.Logs {
		f, err := newFollower(ctx, m, lc)
		if err != nil {
			st.close()
			return nil, err
		}
		if m.byOrigin[f.origin] != nil {
			st.close()
			return nil, fmt.Errorf("log %s is given twice", f.origin)
		}
		m.followers = append(m.followers, f)
		m.byOrigin[f.origin] = f
		m.byID[originID(f.origin)] = f
		if f.verified != nil {
			m.metrics.verifiedSize.WithLabelValues(f.origin).Set(float64(f.verified.Size))
		}
		m.metrics.position.WithLabelValues(f.origin).Set(float64(f.position))
	}
	if err := st.loadCrossLog(ctx, m.cross); err != nil {
		st.close()
		return nil, err
	}
	// Logs recorded but no longer followed are not compared.
	m.cross.keepOnly(m.byOrigin)
	// Findings not stored before a crash are found again (and those
	// stored are not raised twice).
	m.cross.findAll()
	ws, err := st.watchSince(ctx)
	if err != nil {
		st.close()
		return nil, err
	}
	m.watches = ws
	for _, o := range cfg.Watch {
		if err := m.Watch(ctx, o); err != nil {
			st.close()
			return nil, err
		}
	}
	// Alerts committed but not delivered before a crash go out now.
	if err := m.deliver(ctx); err != nil {
		st.close()
		return nil, err
	}
	return m, nil
}

func setDefaults(c *Config) {
	if c.AlertOut == nil {
		c.AlertOut = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32 // the fetch workers reuse their connections
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.GossipInterval <= 0 {
		c.GossipInterval = 30 * time.Second
	}
	if c.SaveEvery <= 0 {
		c.SaveEvery = 65536
	}
	if c.SaveInterval <= 0 {
		c.SaveInterval = 10 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 5 * time.Second
	}
	if c.BatchBundles <= 0 {
		c.BatchBundles = 8
	}
	if c.FetchWorkers <= 0 {
		c.FetchWorkers = 4
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.CrossLogGrace == 0:
		c.CrossLogGrace = verify.DefaultGrace
	case c.CrossLogGrace < 0:
		c.CrossLogGrace = 0
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
}

// Close closes the database.
func (m *Monitor) Close() error { return m.store.close() }

func (m *Monitor) now() time.Time { return m.cfg.Now() }

// Watch adds an issuer origin to the watched set: every later change of
// its committed keys or account key raises one alert.
func (m *Monitor) Watch(ctx context.Context, origin string) error {
	o, err := schema.NormalizeOrigin(origin)
	if err != nil {
		return fmt.Errorf("couldn't watch %q: %w", origin, err)
	}
	if err := m.store.addWatch(ctx, o); err != nil {
		return err
	}
	m.watchMu.Lock()
	if m.watches[o] == nil {
		m.watches[o] = map[string]int64{}
	}
	m.watchMu.Unlock()
	for _, f := range m.followers {
		if a := f.getAnchor(); a != nil {
			if err := m.startWatches(ctx, f.origin, a.Size); err != nil {
				return err
			}
		}
	}
	return nil
}

// startWatches makes every watch not yet started on log begin at index
// since.
func (m *Monitor) startWatches(ctx context.Context, log string, since int64) error {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	for issuer, logs := range m.watches {
		if _, ok := logs[log]; ok {
			continue
		}
		if err := m.store.setWatchSince(ctx, issuer, log, since); err != nil {
			return err
		}
		logs[log] = since
	}
	return nil
}

// Watches returns the watched origins.
func (m *Monitor) Watches(ctx context.Context) ([]string, error) { return m.store.watches(ctx, "", 0) }

// WatchesPage returns at most limit watched origins after the origin
// after, in order.
func (m *Monitor) WatchesPage(ctx context.Context, after string, limit int) ([]string, error) {
	return m.store.watches(ctx, after, max(limit, 1))
}

// watched reports whether entry idx of log, by issuer, is watched.
func (m *Monitor) watched(log, issuer string, idx int64) bool {
	m.watchMu.RLock()
	defer m.watchMu.RUnlock()
	since, ok := m.watches[issuer][log]
	return ok && idx >= since
}

// raise stores and delivers alerts found outside replay.
func (m *Monitor) raise(ctx context.Context, alerts ...Alert) {
	for i := range alerts {
		if alerts[i].Time.IsZero() {
			alerts[i].Time = m.now().UTC()
		}
	}
	if err := m.store.addAlerts(ctx, alerts); err != nil {
		m.unstored(alerts, err)
		return
	}
	if err := m.deliver(ctx); err != nil {
		m.log.Error("couldn't deliver alerts", "err", err)
	}
}

func (m *Monitor) noteAlert() { m.raised.Add(1) }

// unstored delivers alerts that could not be stored, so that none is
// lost: written to AlertOut at once (not to the webhook, which is retried
// only from the store) and counted as raised, so that Once reports them
// (exit 2). A replay whose save failed raises them again once it is
// replayed, so they may be delivered twice.
func (m *Monitor) unstored(alerts []Alert, err error) {
	m.log.Error("couldn't store alerts; writing them out unstored", "alerts", len(alerts), "err", err)
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	for _, a := range alerts {
		b, jerr := json.Marshal(a)
		if jerr != nil {
			continue
		}
		if _, werr := m.out.Write(append(b, '\n')); werr != nil {
			m.log.Error("couldn't write an alert", "err", werr)
		}
		m.metrics.alerts.WithLabelValues(a.Kind).Inc()
		m.noteAlert()
	}
}

// recordEvidence stores split-view evidence and raises its alert.
func (m *Monitor) recordEvidence(ctx context.Context, ev *Evidence) error {
	a := Alert{Time: m.now().UTC(), Log: ev.Origin, Kind: KindSplitView, Rule: RuleConsistency, Evidence: ev.ID(),
		Message: fmt.Sprintf("split view: the log signed two inconsistent checkpoints (%s); evidence %s", ev.Reason, ev.ID())}
	isNew, err := m.store.addEvidence(ctx, ev.ID(), ev.Origin, ev, ev.Found, a)
	if err != nil {
		return err
	}
	if isNew {
		m.metrics.splitViews.Inc()
		m.log.Error("split view", "log", ev.Origin, "evidence", ev.ID(), "reason", ev.Reason)
	}
	return m.deliver(ctx)
}

// LogStatus is a log's progress.
type LogStatus struct {
	Origin string `json:"origin"`
	URL    string `json:"url"`
	// VerifiedSize is the size of the latest checkpoint whose entries
	// were all verified and replayed; Checkpoint is that signed note.
	VerifiedSize int64  `json:"verified_size"`
	VerifiedRoot string `json:"verified_root,omitempty"`
	Checkpoint   string `json:"checkpoint,omitempty"`
	// AnchorSize is the size of the latest checkpoint verified consistent
	// (replay may still be catching up to it); Position is the number of
	// entries replayed.
	AnchorSize int64 `json:"anchor_size"`
	Position   int64 `json:"position"`
	// Stuck says why following stopped, if it did.
	Stuck string `json:"stuck,omitempty"`
}

// Status returns the progress of every log.
func (m *Monitor) Status() []LogStatus {
	var out []LogStatus
	for _, f := range m.followers {
		out = append(out, f.status())
	}
	return out
}

// StateDigest returns the SHA-256 of the policy state replayed from log
// origin's entries (two monitors that replayed the same entries agree).
// It must not run concurrently with Run or Once.
func (m *Monitor) StateDigest(origin string) ([32]byte, error) {
	f := m.byOrigin[origin]
	if f == nil {
		return [32]byte{}, fmt.Errorf("not following log %s", origin)
	}
	f.runMu.Lock()
	defer f.runMu.Unlock()
	b, err := f.st.MarshalBinary()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// AlertFilter selects alerts: Kind, if set, is the alert kind; Issuer, if
// set, is a substring of the alert's issuer (ASCII letters match in
// either case).
type AlertFilter struct {
	Kind   string
	Issuer string
}

// AlertsPage returns at most limit stored alerts matching f, newest
// first, after skipping the offset newest matches. It reads only those
// rows from the store.
func (m *Monitor) AlertsPage(ctx context.Context, f AlertFilter, offset, limit int) ([]Alert, error) {
	return m.store.alertsPage(ctx, f, offset, limit)
}

// AlertCount returns the number of stored alerts matching f.
func (m *Monitor) AlertCount(ctx context.Context, f AlertFilter) (int, error) {
	where, args := alertWhere(f)
	return m.store.count(ctx, "alerts", `SELECT COUNT(*) FROM alerts`+where, args...)
}

// EvidencePage returns at most limit stored evidence entries with ids
// after the id after, in id order.
func (m *Monitor) EvidencePage(ctx context.Context, after string, limit int) ([]EvidenceInfo, error) {
	return m.store.evidencePage(ctx, after, max(limit, 1))
}

// EvidenceCount returns the number of stored evidence bundles.
func (m *Monitor) EvidenceCount(ctx context.Context) (int, error) {
	return m.store.count(ctx, "evidence", `SELECT COUNT(*) FROM evidence`)
}

// WatchCount returns the number of watched origins.
func (m *Monitor) WatchCount(ctx context.Context) (int, error) {
	return m.store.count(ctx, "watches", `SELECT COUNT(*) FROM watches`)
}

// EvidenceBundle returns the stored evidence bundle id.
func (m *Monitor) EvidenceBundle(ctx context.Context, id string) ([]byte, error) {
	return m.store.evidence(ctx, id)
}

// Report is the outcome of Once.
type Report struct {
	Logs []LogStatus `json:"logs"`
	// Alerts is the number of alerts raised by this process.
	Alerts int64 `json:"alerts"`
	// Evidence is the number of evidence bundles (split-view, time or
	// cross-log) on record for the logs followed.
	Evidence int      `json:"evidence"`
	Errors   []string `json:"errors,omitempty"`
}

// OK reports whether everything checked out.
func (r *Report) OK() bool { return r.Alerts == 0 && r.Evidence == 0 && len(r.Errors) == 0 }

// Once verifies every log up to its current checkpoint, pulls once from
// every peer and witness, and reports.
func (m *Monitor) Once(ctx context.Context) (*Report, error) {
	rep := &Report{}
	for _, f := range m.followers {
		if err := f.round(ctx); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			m.log.Error("couldn't verify log", "log", f.origin, "err", err)
		}
	}
	for _, err := range m.pullAll(ctx) {
		rep.Errors = append(rep.Errors, err.Error())
		m.log.Error("gossip", "err", err)
	}
	for _, f := range m.followers {
		if err := f.recheckPending(ctx); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	if err := m.deliver(ctx); err != nil {
		return nil, err
	}
	ev, err := m.store.evidenceList(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range ev {
		if m.byOrigin[e.Origin] != nil {
			rep.Evidence++
		}
	}
	rep.Logs = m.Status()
	rep.Alerts = m.raised.Load()
	return rep, nil
}

// Run follows every log and gossips until ctx is done.
func (m *Monitor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range m.followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if err := f.round(ctx); err != nil && ctx.Err() == nil {
					m.log.Error("couldn't verify log", "log", f.origin, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(m.cfg.PollInterval):
				}
			}
		}()
	}
	if len(m.cfg.Peers)+len(m.cfg.Witnesses) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(m.cfg.GossipInterval):
				}
				for _, err := range m.pullAll(ctx) {
					if ctx.Err() == nil {
						m.log.Warn("gossip", "err", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
