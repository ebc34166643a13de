package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keycommit/keycommit/log/durable"

	"github.com/keycommit/keycommit/log/challenge"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// The dev deployment's fixed names.
const (
	devLogOrigin    = "localhost/keycommit-dev/log"
	devIssuer       = "https://demo-issuer.example"
	devWitnesses    = 3
	devQuorum       = 2
	devJSONFile     = "dev.json"
	devPolicyFile   = "witness-policy.txt"
	devIssuerKey    = "issuer.key"
	devIssuerKeys   = "issuer-commitment-keys.json"
	devAlertsFile   = "monitor-alerts.jsonl"
	devCosignWait   = 30 * time.Second
	devListenHost   = "127.0.0.1"
	devDefaultPorts = 7370
)

// devConfig configures runDev.
type devConfig struct {
	// Dir holds every component's state. An existing deployment in Dir is
	// started again, not replaced.
	Dir string
	// BasePort is the log's port; witnesses take the next three, the
	// monitor the one after. Zero picks free ports.
	BasePort int
	// CosignInterval and CosignRetryMax are the log's witness loop
	// settings (see logServeConfig).
	CosignInterval, CosignRetryMax time.Duration
	// Logger receives the components' logs.
	Logger *slog.Logger
	// Out receives the human-readable summary.
	Out io.Writer
	// AlertOut receives the monitor's alerts (JSON lines) besides
	// Dir/monitor-alerts.jsonl.
	AlertOut io.Writer
	// Self is how the printed commands run keycommit; "" means
	// selfCommand of this executable.
	Self string
	// Ready, when set (dev --json), receives one devReady JSON object
	// once the deployment is up; Out and AlertOut then go to stderr.
	Ready io.Writer
}

// devInfo is Dir/dev.json: what scripts and tests need to use the
// deployment.
type devInfo struct {
	LogURL        string         `json:"log_url"`
	LogVKey       string         `json:"log_vkey"`
	LogOrigin     string         `json:"log_origin"`
	Witnesses     []devWitness   `json:"witnesses"`
	WitnessPolicy string         `json:"witness_policy"`
	MonitorURL    string         `json:"monitor_url"`
	Issuer        devIssuerState `json:"issuer"`
}

// devReady is what dev --json prints on stdout once the deployment is
// up (schema/jsonschema/cli/dev.json): dev.json's content, where it is,
// whether the log was resumed, and the commands to try next.
type devReady struct {
	devInfo
	DataDir  string `json:"data_dir"`
	InfoFile string `json:"info_file"`
	// Resumed is set when dev picked up an existing log; ResumedSize is the
	// size of its checkpoint when dev started.
	Resumed     bool   `json:"resumed"`
	ResumedSize uint64 `json:"resumed_size"`
	// TryNext are the commands dev prints, to run in order in one shell.
	TryNext []string `json:"try_next"`
}

type devWitness struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	VKey string `json:"vkey"`
}

type devIssuerState struct {
	Origin  string `json:"origin"`
	KeyFile string `json:"key_file"`
	// Server is the loopback address serving the origin over HTTPS
	// (its challenges), with a certificate from the CA in CAFile.
	Server string `json:"server"`
	CAFile string `json:"ca_file"`
}

func newDevCmd() *cobra.Command {
	var cfg devConfig
	var level string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dev [--data DIR]",
		Short: "Run a complete local deployment: log, three witnesses (2-of-3), a monitor, a demo issuer",
		Long: `dev starts, on loopback, a complete keycommit deployment with its state under
DIR: the log (embedded SQLite), three witnesses whose 2-of-3 cosignatures the log
collects for every checkpoint, and a monitor that follows the log, replays every
policy decision and watches the demo issuer. The demo issuer's origin is served
over HTTPS on loopback with a throwaway CA (DIR/demo-issuer-ca.pem) that the log
trusts, and serves its challenge: the first time, dev registers the demo issuer
through the log's real proof-of-origin-control check and submits its first key
commitment so the log is not empty. It writes
DIR/dev.json (URLs and keys) and DIR/witness-policy.txt once everything is
listening, prints the commands to try next, and runs until interrupted. Run it
again with the same DIR to pick up where it stopped. With --json, stdout gets
one JSON object once everything is up (dev.json's content, the data
directory, whether the log was resumed and at what size, and the commands to
try next) and everything else goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), level)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.Out, cfg.AlertOut = cmd.OutOrStdout(), cmd.OutOrStdout()
			if asJSON {
				// stdout carries only the devReady object.
				cfg.Out, cfg.AlertOut, cfg.Ready = cmd.ErrOrStderr(), cmd.ErrOrStderr(), cmd.OutOrStdout()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "data", "keycommit-dev", "directory for the deployment's state (reused if it exists)")
	cmd.Flags().IntVar(&cfg.BasePort, "base-port", devDefaultPorts, "the log's port on 127.0.0.1; witnesses use the next three, the monitor the one after; 0 picks free ports")
	cmd.Flags().StringVar(&level, "log-level", "warn", "log level of the components: debug, info, warn, error")
	addCosignFlags(cmd, &cfg.CosignInterval, &cfg.CosignRetryMax)
	addJSONFlag(cmd, &asJSON, "dev")
	return cmd
}

// devAddr returns the listen address of component i (0 log, 1-3
// witnesses, 4 monitor).
func (c *devConfig) devAddr(i int) string {
	if c.BasePort == 0 {
		return net.JoinHostPort(devListenHost, "0")
	}
	return net.JoinHostPort(devListenHost, strconv.Itoa(c.BasePort+i))
}

// runDev runs the deployment until ctx is done.
func runDev(ctx context.Context, cfg devConfig) (err error) {
	logger := cfg.Logger
	// Flags first: nothing is created for a deployment that can't start.
	if cfg.BasePort < 0 || cfg.BasePort+4 > 65535 {
		return fmt.Errorf("--base-port %d is out of range: the deployment uses ports BASE to BASE+4, so BASE must be 0 (free ports) or 1 to 65531", cfg.BasePort)
	}
	if cfg.Dir == "" {
		return errors.New("--data must name a directory")
	}
	if err := durable.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("couldn't create %s: %w", cfg.Dir, err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	var closers []func()
	// A witness or monitor server that stops on its own stops dev.
	srvErr := make(chan error, 1)
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	// The lock comes before anything in dir is read or written.
	release, err := lockDir(dir, "keycommit dev")
	if err != nil {
		return err
	}
	closers = append(closers, release)
	// dev.json describes a running deployment: remove a stale one first.
	os.Remove(filepath.Join(dir, devJSONFile))

	// 1. The log's key and database.
	logDir := filepath.Join(dir, "log")
	resumed := true
	if _, err := os.Stat(filepath.Join(logDir, logDBFile)); errors.Is(err, os.ErrNotExist) {
		if _, err := initLog(ctx, logDir, devLogOrigin, time.Now); err != nil {
			return fmt.Errorf("couldn't create the dev log: %w", err)
		}
		fmt.Fprintf(cfg.Out, "created a new log in %s\n", logDir)
		resumed = false
	}
	releaseLog, err := lockDir(logDir, "keycommit dev's log")
	if err != nil {
		return err
	}
	closers = append(closers, releaseLog)
	logVKey, err := os.ReadFile(filepath.Join(logDir, "log.vkey"))
	if err != nil {
		return fmt.Errorf("couldn't read the log's verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(logVKey))

	// 2. The witnesses, each trusting the log.
	info := &devInfo{LogVKey: vkey, LogOrigin: devLogOrigin, WitnessPolicy: filepath.Join(dir, devPolicyFile)}
	for i := 1; i <= devWitnesses; i++ {
		w, stop, err := startDevWitness(ctx, filepath.Join(dir, fmt.Sprintf("witness-%d", i)), fmt.Sprintf("witness-%d.localhost", i), cfg.devAddr(i), vkey, logger, srvErr)
		if err != nil {
			return err
		}
		closers = append(closers, stop)
		info.Witnesses = append(info.Witnesses, *w)
	}

	// 3. The witness policy, then the log, which asks the witnesses for
	// cosignatures on every checkpoint it publishes.
	ln, err := net.Listen("tcp", cfg.devAddr(0))
	if err != nil {
		return fmt.Errorf("couldn't listen for the log on %s: %w", cfg.devAddr(0), err)
	}
	info.LogURL = "http://" + ln.Addr().String()
	policy := devWitnessPolicy(info)
	if _, err := quorum.Parse([]byte(policy)); err != nil {
		ln.Close()
		return fmt.Errorf("the dev witness policy is invalid: %w", err)
	}
	if err := writeFileAtomic(info.WitnessPolicy, []byte(policy), 0o644); err != nil {
		ln.Close()
		return err
	}
	// The demo issuer's HTTPS origin, whose challenges the log fetches.
	demo, err := startDevOrigin(dir)
	if err != nil {
		ln.Close()
		return err
	}
	closers = append(closers, demo.close)
	fetcher, err := demo.fetcher()
	if err != nil {
		ln.Close()
		return err
	}
	lg, err := startLog(ctx, logServeConfig{Dir: logDir, Listener: ln, WitnessPolicy: info.WitnessPolicy,
		CosignInterval: cfg.CosignInterval, CosignRetryMax: cfg.CosignRetryMax, OriginControl: fetcher.Check, Logger: logger.With("component", "log")})
	if err != nil {
		return err
	}
	closers = append(closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lg.Shutdown(sctx)
	})

	// 4. The demo issuer: registered, with a first key commitment.
	c, err := client.New(info.LogURL, vkey, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	var resumedSize uint64
	if resumed {
		cp, _, err := c.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("couldn't read the dev log's checkpoint: %w", err)
		}
		resumedSize = cp.Size
		fmt.Fprintf(cfg.Out, "resumed log at size %d in %s\n", cp.Size, logDir)
	}
	info.Issuer = devIssuerState{Origin: devIssuer, KeyFile: filepath.Join(dir, devIssuerKey), Server: demo.addr, CAFile: filepath.Join(dir, devCAFile)}
	if err := devSeedIssuer(ctx, c, dir, demo.resp, info.Issuer, cfg.Out); err != nil {
		return err
	}

	// 5. The monitor, following the log and watching the demo issuer.
	mon, monURL, stopMon, err := startDevMonitor(ctx, dir, cfg, info, logger.With("component", "monitor"), srvErr)
	if err != nil {
		return err
	}
	closers = append(closers, stopMon)
	info.MonitorURL = monURL

	// 6. Wait for the witnesses' quorum on the log's latest checkpoint, so
	// that a verifier run now succeeds.
	if err := waitCosigned(ctx, c, policy); err != nil {
		return err
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, devJSONFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	self := cfg.Self
	if self == "" {
		exe, _ := os.Executable()
		wd, _ := os.Getwd()
		self = selfCommand(exe, wd)
	}
	printDevSummary(cfg.Out, dir, info, self)
	if cfg.Ready != nil {
		r := devReady{devInfo: *info, DataDir: dir, InfoFile: filepath.Join(dir, devJSONFile),
			Resumed: resumed, ResumedSize: resumedSize, TryNext: devTryNext(info, self)}
		if err := writeJSONOut(cfg.Ready, r); err != nil {
			return err
		}
	}

	monErr := make(chan error, 1)
	go func() { monErr <- mon.Run(ctx) }()
	select {
	case <-ctx.Done():
		fmt.Fprintln(cfg.Out, "shutting down")
		<-monErr
		return nil
	case err := <-lg.Done():
		return fmt.Errorf("log server stopped: %w", err)
	case err := <-monErr:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("monitor stopped: %w", err)
	case err := <-srvErr:
		return err
	}
}

// serveBackground serves srv on ln in a goroutine. If it stops on its
// own (not by Shutdown), the error is logged and sent on errc, naming
// what stopped, without blocking: dev stops on the first one.
func serveBackground(srv *http.Server, ln net.Listener, what string, logger *slog.Logger, errc chan<- error) {
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("server stopped", "server", what, "err", err)
			select {
			case errc <- fmt.Errorf("%s server stopped: %w", what, err):
			default:
			}
		}
	}()
}

// startDevWitness creates (once) and serves a witness that trusts the log.
func startDevWitness(ctx context.Context, dir, name, addr, logVKey string, logger *slog.Logger, srvErr chan<- error) (*devWitness, func(), error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := witness.InitDir(ctx, dir, name); err != nil {
			return nil, nil, fmt.Errorf("couldn't create witness %s: %w", name, err)
		}
	}
	release, err := lockDir(dir, "keycommit dev's witness "+name)
	if err != nil {
		return nil, nil, err
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		release()
		return nil, nil, err
	}
	if err := d.Store.AddLog(ctx, devLogOrigin, logVKey); err != nil && !errors.Is(err, witness.ErrLogKeyExists) {
		d.Close()
		release()
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	w, err := witness.New(witness.Config{Store: d.Store, Signer: d.Signer, VKey: d.VKey, Logger: logger.With("component", name), Metrics: reg})
	if err != nil {
		d.Close()
		release()
		return nil, nil, err
	}
	mux := witnessMux(w, reg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		w.Close()
		d.Close()
		release()
		return nil, nil, fmt.Errorf("couldn't listen for witness %s on %s: %w", name, addr, err)
	}
	srv := server.NewHTTPServer(addr, mux, logger)
	serveBackground(srv, ln, "witness "+name, logger, srvErr)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		w.Close()
		d.Close()
		release()
	}
	return &devWitness{Name: strings.TrimSuffix(name, ".localhost"), URL: "http://" + ln.Addr().String(), VKey: d.VKey}, stop, nil
}

// devWitnessPolicy is the deployment's policy: the log and a 2-of-3 group
// of the witnesses.
func devWitnessPolicy(info *devInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# keycommit dev: the log and a %d-of-%d group of witnesses.\n", devQuorum, len(info.Witnesses))
	fmt.Fprintf(&b, "log %s %s\n", info.LogVKey, info.LogURL)
	var names []string
	for _, w := range info.Witnesses {
		fmt.Fprintf(&b, "witness %s %s %s\n", w.Name, w.VKey, w.URL)
		names = append(names, w.Name)
	}
	fmt.Fprintf(&b, "group dev-witnesses %d %s\nquorum dev-witnesses\n", devQuorum, strings.Join(names, " "))
	return b.String()
}

// devSeedIssuer registers the demo issuer and submits its first key
// commitment, unless the log already has them.
func devSeedIssuer(ctx context.Context, c *client.Client, dir string, origin *challenge.Responder, is devIssuerState, out io.Writer) error {
	if _, err := os.Stat(is.KeyFile); errors.Is(err, os.ErrNotExist) {
		if _, err := issuer.WriteKeyFile(is.KeyFile); err != nil {
			return err
		}
	}
	key, err := issuer.ReadKeyFile(is.KeyFile)
	if err != nil {
		return err
	}
	demo, err := issuer.Open(ctx, c, is.Origin, key)
	if err != nil {
		return err
	}
	st := demo.Status
	// The demo origin serves the challenge for its key, as an issuer's
	// web server would: the log fetches it before it admits the first
	// registration (or one after a lapse).
	origin.Serve(c.Verifier().Name(), demo.Origin, key.Public().(ed25519.PublicKey))
	if st == nil {
		reg := &schema.Registration{Contact: "mailto:keys@demo-issuer.example", AccountKey: key.Public().(ed25519.PublicKey)}
		res, err := demo.Submit(ctx, schema.KindRegistration, reg)
		if err != nil {
			return fmt.Errorf("couldn't register the demo issuer: %w", err)
		}
		fmt.Fprintf(out, "registered demo issuer %s at index %d\n", is.Origin, res.Index)
	}
	if st != nil && st.Commitment != nil {
		return nil
	}
	pst, pairs, err := issuer.NewPSTCommitment(1, 1, 2, 10, time.Now().Add(90*24*time.Hour))
	if err != nil {
		return err
	}
	kb, err := json.MarshalIndent(pairs, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, devIssuerKeys), append(kb, '\n'), 0o600); err != nil {
		return err
	}
	res, err := demo.Submit(ctx, schema.KindKeyCommitment, &schema.KeyCommitment{PST: pst})
	if err != nil {
		return fmt.Errorf("couldn't submit the demo issuer's key commitment: %w", err)
	}
	fmt.Fprintf(out, "submitted the demo issuer's first key commitment at index %d\n", res.Index)
	return nil
}

// startDevMonitor creates the monitor and serves its gossip endpoint.
func startDevMonitor(ctx context.Context, dir string, cfg devConfig, info *devInfo, logger *slog.Logger, srvErr chan<- error) (*monitor.Monitor, string, func(), error) {
	alerts, err := os.OpenFile(filepath.Join(dir, devAlertsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", nil, fmt.Errorf("couldn't open the monitor's alert file: %w", err)
	}
	var alertOut io.Writer = alerts
	if cfg.AlertOut != nil {
		alertOut = io.MultiWriter(alerts, cfg.AlertOut)
	}
	var ws []string
	for _, w := range info.Witnesses {
		ws = append(ws, w.URL)
	}
	monDir := filepath.Join(dir, "monitor")
	if err := durable.MkdirAll(monDir, 0o700); err != nil {
		alerts.Close()
		return nil, "", nil, err
	}
	release, err := lockDir(monDir, "keycommit dev's monitor")
	if err != nil {
		alerts.Close()
		return nil, "", nil, err
	}
	reg := prometheus.NewRegistry()
	m, err := monitor.New(ctx, monitor.Config{
		DataDir: monDir, Logs: []monitor.LogConfig{{URL: info.LogURL, VKey: info.LogVKey}},
		Witnesses: ws, Watch: []string{info.Issuer.Origin}, AlertOut: alertOut, Logger: logger, Registerer: reg,
		PollInterval: 2 * time.Second, GossipInterval: 5 * time.Second,
	})
	if err != nil {
		alerts.Close()
		release()
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", cfg.devAddr(4))
	if err != nil {
		m.Close()
		alerts.Close()
		release()
		return nil, "", nil, fmt.Errorf("couldn't listen for the monitor on %s: %w", cfg.devAddr(4), err)
	}
	mex, err := monitorExplorer(m, logger)
	if err != nil {
		ln.Close()
		m.Close()
		alerts.Close()
		release()
		return nil, "", nil, err
	}
	mux := monitorMux(m, mex, reg)
	srv := server.NewHTTPServer(ln.Addr().String(), mux, logger)
	serveBackground(srv, ln, "monitor", logger, srvErr)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		m.Close()
		alerts.Close()
		release()
	}
	return m, "http://" + ln.Addr().String(), stop, nil
}

// waitCosigned waits until the log serves a checkpoint that meets the
// witness policy's quorum.
func waitCosigned(ctx context.Context, c *client.Client, policy string) error {
	pol, err := quorum.Parse([]byte(policy))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, devCosignWait)
	defer cancel()
	var last error
	for {
		_, raw, err := c.Checkpoint(ctx)
		if err == nil {
			if _, err = pol.Verify(raw); err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the log's checkpoint did not get its witnesses' cosignatures within %v: %v", devCosignWait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printDevSummary(w io.Writer, dir string, info *devInfo, self string) {
	fmt.Fprintf(w, "\nkeycommit dev is running (state in %s; details in %s)\n\n", dir, filepath.Join(dir, devJSONFile))
	fmt.Fprintf(w, "  log      %s   (origin %s)\n", info.LogURL, info.LogOrigin)
	for _, wt := range info.Witnesses {
		fmt.Fprintf(w, "  witness  %s   (%s)\n", wt.URL, wt.Name)
	}
	fmt.Fprintf(w, "  monitor  %s\n", info.MonitorURL)
	fmt.Fprintf(w, "  issuer   %s   (served over HTTPS at %s, CA %s: the log fetched its challenge)\n", info.Issuer.Origin, info.Issuer.Server, info.Issuer.CAFile)
	fmt.Fprintf(w, "  log vkey %s\n\n", info.LogVKey)
	fmt.Fprintf(w, "Try next, in another terminal (each command runs as printed, in order):\n\n")
	for _, line := range devTryNext(info, self) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

// devTryNext are the commands printed for trying the deployment, in the
// order to run them in one shell: self is how to run keycommit
// (selfCommand). TestDevPrintedCommands runs them as printed.
func devTryNext(info *devInfo, self string) []string {
	return []string{
		fmt.Sprintf("export KEYCOMMIT_LOG=%s KEYCOMMIT_LOG_VKEY=%s", shellQuote(info.LogURL), shellQuote(info.LogVKey)),
		"curl -fsS \"$KEYCOMMIT_LOG/checkpoint\"",
		"curl -fsS \"$KEYCOMMIT_LOG/v1/issuers/" + info.Issuer.Origin + "\"",
		self + " verify --bundle \"$KEYCOMMIT_LOG/v1/keys.bundle\" --witness-policy " + shellQuote(info.WitnessPolicy),
		self + " issuer status --origin " + info.Issuer.Origin,
		self + " monitor --once --log-level warn",
	}
}

// selfCommand is how a shell runs this keycommit, for the commands dev
// prints: the absolute path of the executable, or, when it is a
// temporary build of `go run` (which a second shell can't reuse), `go -C
// ROOT run ./cmd/keycommit` in the module root at or above cwd.
func selfCommand(exe, cwd string) string {
	if !isGoRunBuild(exe) {
		return shellQuote(exe)
	}
	for d := cwd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/keycommit/keycommit\n") {
			return "go -C " + shellQuote(d) + " run ./cmd/keycommit"
		}
		if filepath.Dir(d) == d {
			return shellQuote(exe)
		}
	}
}

// isGoRunBuild reports whether exe is a binary `go run` built in its
// temporary work directory ($GOTMPDIR or the system's, go-build*/).
func isGoRunBuild(exe string) bool {
	for _, part := range strings.Split(filepath.ToSlash(exe), "/") {
		if strings.HasPrefix(part, "go-build") {
			return true
		}
	}
	return false
}

// shellQuote quotes s for a POSIX shell, unless it needs no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomic is durable.Replace: readers never see a half-written
// file, and the new one survives a crash once this returns.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	return durable.Replace(path, b, perm)
}
