package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/durable"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func newMonitorCmd() *cobra.Command {
	var (
		logs, vkeys, peers, witnesses, watches          []string
		once, asJSON                                    bool
		data, listen, webhook, level, tokenFile, policy string
		poll, gossip, crossGrace                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "monitor --log URL --log-vkey VKEY [--once] [--data DIR]",
		Short: "Follow logs, replay every policy decision, gossip checkpoints and raise alerts",
		Long: `monitor follows one or more keycommit logs through their C2SP tlog-tiles read
path, verifies every checkpoint, proves every entry's inclusion, replays the
policy on every entry in order and recomputes every snapshot. Alerts are JSON
lines on stdout (and POSTed to --webhook). With --listen it serves gossip:
the latest verified checkpoint per log at /<hex sha256(origin)>/checkpoint,
POST /v1/checkpoint, split-view and time evidence at /v1/evidence, GET and
POST /watch (POST needs the operator's token from --admin-token-file, sent as
Authorization: Bearer <token>; without the flag POST /watch is off), and
Prometheus metrics at /metrics. Lists are paginated (?after=, ?limit=, Link
rel="next").

Entry times are checked against the monitor's clock and, with
--witness-policy, against the cosignatures of its witnesses on the checkpoints
it sees (the log's, pulled from --witness and --peer, POSTed): a violation is
a time alert with evidence (docs/time.md).

Following several logs, it cross-checks every issuer it sees in two or more:
different commitments in force in two logs at once, for longer than
--cross-log-grace as the logs' snapshots show, are a cross-log alert with
evidence (docs/monitor.md).

With --once it verifies every log up to its current checkpoint, pulls once
from peers and witnesses, and exits: 0 if everything checked out, 2 if it
raised an alert or holds split-view evidence for a followed log, 1 if it
could not check everything. Its report is a summary on stderr; with --json it
is one JSON object on stdout (schema/jsonschema/cli/monitor-once.json) that
also holds the alerts raised, instead of the JSON lines.

--log and --log-vkey default to $KEYCOMMIT_LOG and $KEYCOMMIT_LOG_VKEY. The
data directory is locked while the monitor runs (DIR/keycommit.lock): a second
monitor on it refuses to start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(logs) == 0 && os.Getenv("KEYCOMMIT_LOG") != "" {
				logs = []string{os.Getenv("KEYCOMMIT_LOG")}
			}
			if len(vkeys) == 0 && os.Getenv("KEYCOMMIT_LOG_VKEY") != "" {
				vkeys = []string{os.Getenv("KEYCOMMIT_LOG_VKEY")}
			}
			if asJSON && !once {
				return errors.New("--json needs --once (without it, alerts are JSON lines on stdout already)")
			}
			if len(logs) == 0 || len(logs) != len(vkeys) {
				return fmt.Errorf("give each --log URL with its --log-vkey VKEY (got %d logs and %d keys)", len(logs), len(vkeys))
			}
			logger, err := newLogger(cmd.ErrOrStderr(), level)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if data == "" {
				tmp, err := os.MkdirTemp("", "keycommit-monitor-")
				if err != nil {
					return fmt.Errorf("couldn't make a temporary data directory: %w", err)
				}
				defer os.RemoveAll(tmp)
				data = tmp
				logger.Warn("no --data directory: the monitor's state is not kept after it exits", "dir", tmp)
			}
			if err := durable.MkdirAll(data, 0o700); err != nil {
				return fmt.Errorf("couldn't create the monitor's data directory: %w", err)
			}
			release, err := lockDir(data, "monitor")
			if err != nil {
				return err
			}
			defer release()
			var token *httpguard.Token
			if tokenFile != "" {
				if token, err = httpguard.LoadToken(tokenFile); err != nil {
					return err
				}
			}
			reg := prometheus.NewRegistry()
			pol, err := readWitnessPolicy(policy)
			if err != nil {
				return err
			}
			// With --once --json the alerts go into the report object.
			var alertBuf bytes.Buffer
			alertOut := cmd.OutOrStdout()
			if asJSON {
				alertOut = &alertBuf
			}
			cfg := monitor.Config{AdminToken: token, DataDir: data, WitnessPolicy: pol, Peers: peers, Witnesses: witnesses, Watch: watches, Webhook: webhook,
				AlertOut: alertOut, Logger: logger, Registerer: reg, PollInterval: poll, GossipInterval: gossip,
				CrossLogGrace: crossGrace}
			if crossGrace < 0 {
				return errors.New("--cross-log-grace must not be negative")
			}
			if crossGrace == 0 {
				cfg.CrossLogGrace = -1 // no grace (zero in the Config means the default)
			}
			for i := range logs {
				cfg.Logs = append(cfg.Logs, monitor.LogConfig{URL: logs[i], VKey: vkeys[i]})
			}
			m, err := monitor.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			serveErr := make(chan error, 1)
			if listen != "" {
				srv, errc, err := monitorServe(listen, m, reg, logger)
				if err != nil {
					return err
				}
				defer func() {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					srv.Shutdown(sctx)
				}()
				// A server that stops on its own stops the monitor.
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				go func() {
					select {
					case err := <-errc:
						serveErr <- err
						cancel()
					case <-ctx.Done():
					}
				}()
			}
			// serveFailed returns the serving error, if the server stopped.
			serveFailed := func() error {
				select {
				case err := <-serveErr:
					return fmt.Errorf("monitor server stopped: %w", err)
				default:
					return nil
				}
			}
			if once {
				rep, err := m.Once(ctx)
				if serr := serveFailed(); serr != nil {
					return serr
				}
				if err != nil {
					return err
				}
				w := cmd.ErrOrStderr() // stdout holds the alerts, as JSON lines
				if asJSON {
					w = cmd.OutOrStdout()
				}
				return reportOnce(w, rep, asJSON, alertBuf.Bytes())
			}
			err = m.Run(ctx)
			if serr := serveFailed(); serr != nil {
				return serr
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&logs, "log", nil, "URL prefix of a log's tlog-tiles read path (repeatable; pair each with --log-vkey; default $KEYCOMMIT_LOG)")
	f.StringArrayVar(&vkeys, "log-vkey", nil, "the log's C2SP verifier key (repeatable, in the order of --log; default $KEYCOMMIT_LOG_VKEY)")
	f.BoolVar(&once, "once", false, "verify up to the current checkpoints, gossip once, and exit (0 only if everything checked out)")
	f.StringVar(&data, "data", "", "directory for the monitor's state (default: a temporary directory, removed on exit)")
	f.StringVar(&listen, "listen", "", "address to serve gossip, evidence, watches and metrics on")
	f.StringArrayVar(&peers, "peer", nil, "URL of a peer monitor to gossip with (repeatable)")
	f.StringArrayVar(&witnesses, "witness", nil, "URL of a witness whose cosigned checkpoints to pull (repeatable)")
	f.StringVar(&policy, "witness-policy", "", "witness policy file: entry times are checked against its witnesses' cosignatures (docs/time.md)")
	f.StringArrayVar(&watches, "watch", nil, "issuer origin whose key changes raise an alert (repeatable)")
	f.StringVar(&webhook, "webhook", "", "URL to POST every alert to, as JSON")
	f.DurationVar(&poll, "poll", 10*time.Second, "pause between checks of each log")
	f.DurationVar(&gossip, "gossip", 30*time.Second, "pause between pulls from peers and witnesses")
	f.DurationVar(&crossGrace, "cross-log-grace", verify.DefaultGrace, "following several logs: an issuer's different commitments in two logs are a cross-log alert once the logs show both in force together for longer than this (0: no grace)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&tokenFile, "admin-token-file", "", "file (mode 0600) holding the operator's token that POST /watch needs as Authorization: Bearer; without it POST /watch is off")
	addJSONFlag(cmd, &asJSON, "monitor-once")
	cmd.Flags().Lookup("json").Usage = "with --once: print the report (and the alerts it raised) as one JSON object (schema/jsonschema/cli/monitor-once.json); errors too (cli/error.json), with the same exit codes"
	cmd.AddCommand(newMonitorCheckEvidenceCmd())
	return cmd
}

// monitorServe serves the monitor's gossip handler and metrics on addr.
// The channel receives the error if the server stops on its own.
func monitorServe(addr string, m *monitor.Monitor, reg *prometheus.Registry, logger *slog.Logger) (*http.Server, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't listen on %s: %w", addr, err)
	}
	mex, err := monitorExplorer(m, logger)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	mux := monitorMux(m, mex, reg)
	srv := server.NewHTTPServer(ln.Addr().String(), mux, logger)
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("monitor server stopped", "err", err)
			errc <- err
		}
	}()
	logger.Info("monitor listening", "url", "http://"+ln.Addr().String())
	return srv, errc, nil
}

// monitorMux is the monitor server's routes: its Handler, the explorer
// at GET /, /metrics and the version, every GET inside the monitor's
// read in-flight limit.
func monitorMux(m *monitor.Monitor, mex http.Handler, reg *prometheus.Registry) *http.ServeMux {
	lim := m.ReadLimit()
	mux := http.NewServeMux()
	mux.Handle("/metrics", lim.Wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("GET "+api.PathVersion, lim.Wrap(server.VersionHandler()))
	mux.Handle("/", m.Handler())
	mux.Handle("GET /{$}", lim.Wrap(mex))
	return mux
}

// readWitnessPolicy parses the witness policy file at path; "" gives nil.
func readWitnessPolicy(path string) (*quorum.Policy, error) {
	if path == "" {
		return nil, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the witness policy: %w", err)
	}
	pol, err := quorum.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the witness policy %s: %w", path, err)
	}
	return pol, nil
}

func newMonitorCheckEvidenceCmd() *cobra.Command {
	var vkeys, policies []string
	var grace time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check-evidence FILE --log-vkey VKEY [--log-vkey VKEY] [--witness-policy FILE]",
		Short: "Check a split-view, time or cross-log evidence bundle offline against the logs' verifier keys",
		Long: `check-evidence checks an evidence bundle a monitor produced, offline: a
split view (two inconsistent checkpoints signed by the log), or a time
violation (an entry, its inclusion proof and the cosigned checkpoint(s) its
time contradicts; docs/time.md), which needs the witness policy whose
cosignatures it cites. Evidence of an entry dated in the monitor's future is
checked against this machine's clock.

Cross-log evidence (an issuer with different commitments in force in two
logs at once; docs/monitor.md) needs the verifier key of both logs
(--log-vkey twice) and the witness policy: one --witness-policy for every
log, or one per --log-vkey in the same order. The overlap it shows must be
longer than both its own grace and --cross-log-grace. Exit 0 if the evidence
holds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(vkeys) == 0 && os.Getenv("KEYCOMMIT_LOG_VKEY") != "" {
				vkeys = []string{os.Getenv("KEYCOMMIT_LOG_VKEY")}
			}
			if len(vkeys) == 0 {
				return errors.New("no log verifier key: set --log-vkey or $KEYCOMMIT_LOG_VKEY")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("couldn't read evidence: %w", err)
			}
			var res evidenceResult
			var text string
			switch typ := monitor.EvidenceTypeOf(b); {
			case typ == monitor.CrossLogEvidenceType:
				var pols []*quorum.Policy
				for _, p := range policies {
					pol, err := readWitnessPolicy(p)
					if err != nil {
						return err
					}
					pols = append(pols, pol)
				}
				ev, err := monitor.CheckCrossLog(b, monitor.CrossLogCheck{VKeys: vkeys, Policies: pols, MinGrace: grace})
				if err != nil {
					return fmt.Errorf("evidence %s does not hold: %w", args[0], err)
				}
				res = evidenceResult{Valid: true, ID: ev.ID(), Origin: ev.Logs[0].Origin, Reason: ev.Reason, Issuer: ev.Issuer,
					Logs: []string{ev.Logs[0].Origin, ev.Logs[1].Origin}}
				text = fmt.Sprintf("valid cross-log evidence %s for issuer %s in logs %s and %s: %s", ev.ID(), ev.Issuer, ev.Logs[0].Origin, ev.Logs[1].Origin, ev.Reason)
			case len(vkeys) > 1 || len(policies) > 1:
				return errors.New("split-view and time evidence are about one log: give one --log-vkey and at most one --witness-policy")
			case typ == monitor.TimeEvidenceType:
				pol, err := readWitnessPolicy(first(policies))
				if err != nil {
					return err
				}
				ev, err := monitor.VerifyTimeEvidence(b, vkeys[0], pol, time.Now())
				if err != nil {
					return fmt.Errorf("evidence %s does not hold: %w", args[0], err)
				}
				res = evidenceResult{Valid: true, ID: ev.ID(), Origin: ev.Origin, Reason: ev.Reason}
				text = fmt.Sprintf("valid time evidence %s (%s) for log %s: %s", ev.ID(), ev.Rule, ev.Origin, ev.Reason)
			default:
				ev, err := monitor.VerifyEvidence(b, vkeys[0])
				if err != nil {
					return fmt.Errorf("evidence %s does not hold: %w", args[0], err)
				}
				res = evidenceResult{Valid: true, ID: ev.ID(), Origin: ev.Origin, Reason: ev.Reason}
				text = fmt.Sprintf("valid split-view evidence %s for log %s: %s", ev.ID(), ev.Origin, ev.Reason)
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), text)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&vkeys, "log-vkey", nil, "a log's C2SP verifier key (repeatable: cross-log evidence needs both logs'; default $KEYCOMMIT_LOG_VKEY)")
	cmd.Flags().StringArrayVar(&policies, "witness-policy", nil, "witness policy file (needed for time evidence against cosignatures and for cross-log evidence; repeatable: one for every log, or one per --log-vkey)")
	cmd.Flags().DurationVar(&grace, "cross-log-grace", verify.DefaultGrace, "cross-log evidence must show the two commitments in force together for longer than this")
	addJSONFlag(cmd, &asJSON, "monitor-check-evidence")
	return cmd
}

// first returns the first element of s, "" if none.
func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// evidenceResult is `monitor check-evidence --json`
// (schema/jsonschema/cli/monitor-check-evidence.json).
type evidenceResult struct {
	Valid bool   `json:"valid"`
	ID    string `json:"id"`
	// Origin is the log (for cross-log evidence, the first of Logs).
	Origin string `json:"origin"`
	Reason string `json:"reason"`
	// Issuer and Logs: for cross-log evidence, the issuer and both logs.
	Issuer string   `json:"issuer,omitempty"`
	Logs   []string `json:"logs,omitempty"`
}

// onceReport is `monitor --once --json`
// (schema/jsonschema/cli/monitor-once.json): the monitor's report, whether
// everything checked out, and the alerts this run raised.
type onceReport struct {
	OK bool `json:"ok"`
	*monitor.Report
	AlertList []json.RawMessage `json:"alert_list"`
}

// reportOnce prints the report of `monitor --once` (a summary, or with
// asJSON the onceReport with the alerts) and returns the
// error carrying its exit code: 2 for alerts or evidence, 1 when not
// everything could be checked.
func reportOnce(w io.Writer, rep *monitor.Report, asJSON bool, alerts []byte) error {
	var err error
	switch {
	case rep.Alerts > 0 || rep.Evidence > 0:
		err = &exitError{code: 2, err: fmt.Errorf("%d alerts raised, %d evidence bundles (split-view or time) on record", rep.Alerts, rep.Evidence)}
	case len(rep.Errors) > 0:
		err = &exitError{code: 1, err: fmt.Errorf("couldn't check everything: %s", rep.Errors[0])}
	}
	if asJSON {
		out := onceReport{OK: rep.OK(), Report: rep, AlertList: []json.RawMessage{}}
		for _, line := range bytes.Split(alerts, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 && json.Valid(line) {
				out.AlertList = append(out.AlertList, json.RawMessage(line))
			}
		}
		if out.Logs == nil {
			out.Logs = []monitor.LogStatus{}
		}
		if werr := writeJSONOut(w, &out); werr != nil {
			return werr
		}
		if err != nil {
			return printed{err}
		}
		return nil
	}
	for _, l := range rep.Logs {
		fmt.Fprintf(w, "log %s (%s): verified and replayed up to size %d", l.Origin, l.URL, l.VerifiedSize)
		if l.Stuck != "" {
			fmt.Fprintf(w, "; stuck: %s", l.Stuck)
		}
		fmt.Fprintln(w)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if rep.OK() {
		fmt.Fprintf(w, "ok: every checkpoint, inclusion proof, policy decision and snapshot checked out\n")
	} else {
		fmt.Fprintf(w, "NOT OK: %d alerts raised, %d evidence bundles (split-view or time), %d errors\n", rep.Alerts, rep.Evidence, len(rep.Errors))
	}
	return err
}
