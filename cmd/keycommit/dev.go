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
	"github.com/keycommit/keycommit/log/verify"
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
	devTrustFile    = "trust.txt"
	devMaxLogs      = 4
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
	// BasePort is the first log's port; its witnesses take the next
	// three, the monitor the one after. Log n of Logs (from 2) takes
	// BasePort+20+4(n-2) and its witnesses the next three (7390 to 7401
	// for the default base), clear of the ports the docs give `log
	// serve` and `witness serve` (7380 to 7383). Zero picks free ports.
	BasePort int
	// Logs is how many independent logs to run (1 to devMaxLogs), each
	// with its own key and witnesses.
	Logs int
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
// deployment. Its top-level log members describe the first log.
type devInfo struct {
	devLog
	MonitorURL string         `json:"monitor_url"`
	Issuer     devIssuerState `json:"issuer"`
	// Logs are every log of the deployment (one unless dev --logs),
	// the first one first.
	Logs []devLog `json:"logs"`
	// TrustFile is a trust file for `verify --trust` (log/verify)
	// naming every log.
	TrustFile string `json:"trust_file"`
}

// devLog is one log of the deployment: its URL and key, its witnesses
// and its witness policy file.
type devLog struct {
	LogURL        string       `json:"log_url"`
	LogVKey       string       `json:"log_vkey"`
	LogOrigin     string       `json:"log_origin"`
	Witnesses     []devWitness `json:"witnesses"`
	WitnessPolicy string       `json:"witness_policy"`
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
		Use:   "dev [--data DIR] [--logs N]",
		Short: "Run a complete local deployment: log, three witnesses (2-of-3), a monitor, a demo issuer",
		Long: `dev starts, on loopback, a complete keycommit deployment with its state under
DIR: the log (embedded SQLite), three witnesses whose 2-of-3 cosignatures the log
collects for every checkpoint, and a monitor that follows the log, replays every
policy decision and watches the demo issuer. The demo issuer's origin is served
over HTTPS on loopback with a throwaway CA (DIR/demo-issuer-ca.pem) that the log
trusts, and serves its challenge: the first time, dev registers the demo issuer
through the log's real proof-of-origin-control check and submits its first key
commitment so the log is not empty. With --logs N (2 to 4) it runs N
independent logs, each with its own key, its own three witnesses and its own
witness policy (DIR/witness-policy-N.txt), registers the demo issuer and
submits the same commitment in each, and the monitor follows them all. It
writes DIR/dev.json (URLs and keys; its top level describes the first log,
"logs" every log), DIR/witness-policy.txt and DIR/trust.txt (a trust file
for verify --trust naming every log) once everything is listening, prints
the commands to try next, and runs until interrupted. Run it
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
	cmd.Flags().IntVar(&cfg.BasePort, "base-port", devDefaultPorts, "the log's port on 127.0.0.1; witnesses use the next three, the monitor the one after; with --logs, log n (from 2) uses BASE+20+4(n-2) and its witnesses the next three; 0 picks free ports")
	cmd.Flags().IntVar(&cfg.Logs, "logs", 1, fmt.Sprintf("how many independent logs to run (1 to %d), each with its own key and witnesses", devMaxLogs))
	cmd.Flags().StringVar(&level, "log-level", "warn", "log level of the components: debug, info, warn, error")
	addCosignFlags(cmd, &cfg.CosignInterval, &cfg.CosignRetryMax)
	addJSONFlag(cmd, &asJSON, "dev")
	return cmd
}

// devAddr returns the listen address of component i of log n (1-based):
// 0 the log, 1-3 its witnesses, 4 the monitor (with the first log).
func (c *devConfig) devAddr(n, i int) string {
	if c.BasePort == 0 {
		return net.JoinHostPort(devListenHost, "0")
	}
	port := c.BasePort + i
	if n > 1 {
		port = c.BasePort + 20 + 4*(n-2) + i
	}
	return net.JoinHostPort(devListenHost, strconv.Itoa(port))
}

// devLastPort is the highest port offset from BasePort that a deployment
// of n logs uses.
func devLastPort(n int) int {
	if n <= 1 {
		return 4
	}
	return 20 + 4*(n-2) + 3
}

// devLayout is where log n (1-based) of the deployment keeps its state
// under dir, and its origin: the first log has the layout and origin of a
// single-log deployment, so that one made before --logs resumes as it was.
type devLayout struct {
	origin, logDir, policyFile, witnessPrefix string
}

func devLayoutOf(dir string, n int) devLayout {
	if n == 1 {
		return devLayout{devLogOrigin, filepath.Join(dir, "log"), filepath.Join(dir, devPolicyFile), "witness-"}
	}
	p := fmt.Sprintf("log-%d", n)
	return devLayout{devLogOrigin + "-" + strconv.Itoa(n), filepath.Join(dir, p), filepath.Join(dir, fmt.Sprintf("witness-policy-%d.txt", n)), p + "-witness-"}
}

// devRunning is one log of the deployment, started.
type devRunning struct {
	devLog
	client *client.Client
	lg     *server.Running
	// policy is the text of the witness policy.
	policy string
	// resumed is set when the log existed; resumedSize is then the size
	// of its checkpoint when dev started.
	resumed     bool
	resumedSize uint64
}

// runDev runs the deployment until ctx is done.
func runDev(ctx context.Context, cfg devConfig) (err error) {
	logger := cfg.Logger
	// Flags first: nothing is created for a deployment that can't start.
	if cfg.Logs < 1 || cfg.Logs > devMaxLogs {
		return fmt.Errorf("--logs %d is out of range: dev runs 1 to %d logs", cfg.Logs, devMaxLogs)
	}
	if last := devLastPort(cfg.Logs); cfg.BasePort < 0 || cfg.BasePort+last > 65535 {
		uses := "ports BASE to BASE+4"
		if cfg.Logs > 1 {
			uses = fmt.Sprintf("ports BASE to BASE+4 and BASE+20 to BASE+%d for %d logs", last, cfg.Logs)
		}
		return fmt.Errorf("--base-port %d is out of range: the deployment uses %s, so BASE must be 0 (free ports) or 1 to %d", cfg.BasePort, uses, 65535-last)
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
	// dev.json and the trust file describe a running deployment: remove
	// stale ones first.
	os.Remove(filepath.Join(dir, devJSONFile))
	os.Remove(filepath.Join(dir, devTrustFile))

	// The demo issuer's HTTPS origin, whose challenges every log fetches.
	demo, err := startDevOrigin(dir)
	if err != nil {
		return err
	}
	closers = append(closers, demo.close)
	fetcher, err := demo.fetcher()
	if err != nil {
		return err
	}

	// 1-3. Each log with its witnesses.
	var logs []*devRunning
	for n := 1; n <= cfg.Logs; n++ {
		l, stop, err := startDevLog(ctx, dir, n, cfg, fetcher.Check, srvErr)
		closers = append(closers, stop...)
		if err != nil {
			return err
		}
		logs = append(logs, l)
	}
	info := &devInfo{devLog: logs[0].devLog, TrustFile: filepath.Join(dir, devTrustFile)}
	var clients []*client.Client
	for _, l := range logs {
		info.Logs = append(info.Logs, l.devLog)
		clients = append(clients, l.client)
	}

	// 4. The demo issuer: registered, with a first key commitment, in
	// every log.
	info.Issuer = devIssuerState{Origin: devIssuer, KeyFile: filepath.Join(dir, devIssuerKey), Server: demo.addr, CAFile: filepath.Join(dir, devCAFile)}
	if err := devSeedIssuer(ctx, clients, dir, demo.resp, info.Issuer, cfg.Out); err != nil {
		return err
	}

	// 5. The monitor, following every log and watching the demo issuer.
	mon, monURL, stopMon, err := startDevMonitor(ctx, dir, cfg, info, logger.With("component", "monitor"), srvErr)
	if err != nil {
		return err
	}
	closers = append(closers, stopMon)
	info.MonitorURL = monURL

	// 6. Wait for each log's witnesses' quorum on its latest checkpoint,
	// so that a verifier run now succeeds.
	for _, l := range logs {
		if err := waitCosigned(ctx, l.client, l.policy); err != nil {
			return fmt.Errorf("log %s: %w", l.LogOrigin, err)
		}
	}
	trust, err := devTrust(info)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(info.TrustFile, trust, 0o644); err != nil {
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
			Resumed: logs[0].resumed, ResumedSize: logs[0].resumedSize, TryNext: devTryNext(info, self)}
		if err := writeJSONOut(cfg.Ready, r); err != nil {
			return err
		}
	}

	monErr := make(chan error, 1)
	go func() { monErr <- mon.Run(ctx) }()
	logDone := make(chan error, len(logs))
	for _, l := range logs {
		go func() {
			select {
			case err := <-l.lg.Done():
				logDone <- fmt.Errorf("log server %s stopped: %w", l.LogOrigin, err)
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(cfg.Out, "shutting down")
		<-monErr
		return nil
	case err := <-logDone:
		return err
	case err := <-monErr:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("monitor stopped: %w", err)
	case err := <-srvErr:
		return err
	}
}

// startDevLog creates (once) and starts log n of the deployment with its
// witnesses and witness policy. It returns what stops them, in the order
// they were started, also when it fails part way.
func startDevLog(ctx context.Context, dir string, n int, cfg devConfig, check func(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error), srvErr chan<- error) (*devRunning, []func(), error) {
	logger := cfg.Logger
	lay := devLayoutOf(dir, n)
	var closers []func()
	// The log's key and database.
	l := &devRunning{resumed: true}
	if _, err := os.Stat(filepath.Join(lay.logDir, logDBFile)); errors.Is(err, os.ErrNotExist) {
		if _, err := initLog(ctx, lay.logDir, lay.origin, time.Now); err != nil {
			return nil, closers, fmt.Errorf("couldn't create the dev log %s: %w", lay.origin, err)
		}
		fmt.Fprintf(cfg.Out, "created a new log in %s\n", lay.logDir)
		l.resumed = false
	}
	releaseLog, err := lockDir(lay.logDir, "keycommit dev's log")
	if err != nil {
		return nil, closers, err
	}
	closers = append(closers, releaseLog)
	logVKey, err := os.ReadFile(filepath.Join(lay.logDir, "log.vkey"))
	if err != nil {
		return nil, closers, fmt.Errorf("couldn't read the log's verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(logVKey))

	// The witnesses, each trusting the log.
	l.devLog = devLog{LogVKey: vkey, LogOrigin: lay.origin, WitnessPolicy: lay.policyFile}
	for i := 1; i <= devWitnesses; i++ {
		name := fmt.Sprintf("%s%d", lay.witnessPrefix, i)
		w, stop, err := startDevWitness(ctx, filepath.Join(dir, name), name+".localhost", cfg.devAddr(n, i), lay.origin, vkey, logger, srvErr)
		if err != nil {
			return nil, closers, err
		}
		closers = append(closers, stop)
		l.Witnesses = append(l.Witnesses, *w)
	}

	// The witness policy, then the log, which asks the witnesses for
	// cosignatures on every checkpoint it publishes.
	ln, err := net.Listen("tcp", cfg.devAddr(n, 0))
	if err != nil {
		return nil, closers, fmt.Errorf("couldn't listen for the log %s on %s: %w", lay.origin, cfg.devAddr(n, 0), err)
	}
	l.LogURL = "http://" + ln.Addr().String()
	l.policy = devWitnessPolicy(&l.devLog)
	if _, err := quorum.Parse([]byte(l.policy)); err != nil {
		ln.Close()
		return nil, closers, fmt.Errorf("the dev witness policy is invalid: %w", err)
	}
	if err := writeFileAtomic(l.WitnessPolicy, []byte(l.policy), 0o644); err != nil {
		ln.Close()
		return nil, closers, err
	}
	component := "log"
	if n > 1 {
		component = fmt.Sprintf("log-%d", n)
	}
	l.lg, err = startLog(ctx, logServeConfig{Dir: lay.logDir, Listener: ln, WitnessPolicy: l.WitnessPolicy,
		CosignInterval: cfg.CosignInterval, CosignRetryMax: cfg.CosignRetryMax, OriginControl: check, Logger: logger.With("component", component)})
	if err != nil {
		return nil, closers, err
	}
	lg := l.lg
	closers = append(closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lg.Shutdown(sctx)
	})
	if l.client, err = client.New(l.LogURL, vkey, &http.Client{Timeout: 30 * time.Second}); err != nil {
		return nil, closers, err
	}
	if l.resumed {
		cp, _, err := l.client.Checkpoint(ctx)
		if err != nil {
			return nil, closers, fmt.Errorf("couldn't read the dev log's checkpoint: %w", err)
		}
		l.resumedSize = cp.Size
		fmt.Fprintf(cfg.Out, "resumed log at size %d in %s\n", cp.Size, lay.logDir)
	}
	return l, closers, nil
}

// devTrust is the deployment's trust file (log/verify): every log, with
// its keys bundle URL and witness policy file; an issuer's keys are used
// when two logs (the one log, for one) hold the identical commitment.
func devTrust(info *devInfo) ([]byte, error) {
	var b strings.Builder
	k := min(2, len(info.Logs))
	fmt.Fprintf(&b, "# keycommit dev: its %d log(s); keys are used when %d of them hold the identical commitment.\n", len(info.Logs), k)
	fmt.Fprintf(&b, "min-logs %d\ngrace %s\n", k, verify.DefaultGrace)
	for _, l := range info.Logs {
		// The policy files are next to the trust file: relative paths,
		// which hold no space whatever dir is.
		fmt.Fprintf(&b, "log %s %s %s\n", l.LogVKey, l.LogURL+verify.BundleSuffix, filepath.Base(l.WitnessPolicy))
	}
	// What dev writes, verify must read.
	if _, err := verify.ParseTrust([]byte(b.String()), filepath.Dir(info.TrustFile), os.ReadFile); err != nil {
		return nil, fmt.Errorf("the dev trust file is invalid: %w", err)
	}
	return []byte(b.String()), nil
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

// startDevWitness creates (once) and serves a witness that trusts the log
// of logOrigin.
func startDevWitness(ctx context.Context, dir, name, addr, logOrigin, logVKey string, logger *slog.Logger, srvErr chan<- error) (*devWitness, func(), error) {
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
	if err := d.Store.AddLog(ctx, logOrigin, logVKey); err != nil && !errors.Is(err, witness.ErrLogKeyExists) {
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
func devWitnessPolicy(info *devLog) string {
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
// commitment in every log that does not have them yet: the same
// commitment in each (the one a log already holds, or a new one), so that
// the logs agree on the demo issuer's keys.
func devSeedIssuer(ctx context.Context, clients []*client.Client, dir string, origin *challenge.Responder, is devIssuerState, out io.Writer) error {
	if _, err := os.Stat(is.KeyFile); errors.Is(err, os.ErrNotExist) {
		if _, err := issuer.WriteKeyFile(is.KeyFile); err != nil {
			return err
		}
	}
	key, err := issuer.ReadKeyFile(is.KeyFile)
	if err != nil {
		return err
	}
	var missing []*issuer.Issuer
	var held *schema.KeyCommitment
	for _, c := range clients {
		demo, err := issuer.Open(ctx, c, is.Origin, key)
		if err != nil {
			return err
		}
		st := demo.Status
		// The demo origin serves the challenge for its key and this
		// log, as an issuer's web server would: the log fetches it
		// before it admits the first registration (or one after a lapse).
		origin.Serve(c.Verifier().Name(), demo.Origin, key.Public().(ed25519.PublicKey))
		if st == nil {
			reg := &schema.Registration{Contact: "mailto:keys@demo-issuer.example", AccountKey: key.Public().(ed25519.PublicKey)}
			res, err := demo.Submit(ctx, schema.KindRegistration, reg)
			if err != nil {
				return fmt.Errorf("couldn't register the demo issuer in %s: %w", c.Verifier().Name(), err)
			}
			fmt.Fprintf(out, "registered demo issuer %s at index %d of %s\n", is.Origin, res.Index, c.Verifier().Name())
		}
		if st != nil && st.Commitment != nil {
			if held == nil {
				if held, err = devCommitmentAt(ctx, c, *st.Commitment); err != nil {
					return err
				}
			}
			continue
		}
		missing = append(missing, demo)
	}
	if len(missing) == 0 {
		return nil
	}
	if held == nil {
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
		held = &schema.KeyCommitment{PST: pst}
	}
	for _, demo := range missing {
		res, err := demo.Submit(ctx, schema.KindKeyCommitment, &schema.KeyCommitment{PST: held.PST, PrivacyPass: held.PrivacyPass})
		if err != nil {
			return fmt.Errorf("couldn't submit the demo issuer's key commitment: %w", err)
		}
		fmt.Fprintf(out, "submitted the demo issuer's first key commitment at index %d of %s\n", res.Index, demo.Client.Verifier().Name())
	}
	return nil
}

// devCommitmentAt reads the key commitment entry at index idx of the log.
func devCommitmentAt(ctx context.Context, c *client.Client, idx uint64) (*schema.KeyCommitment, error) {
	es, err := c.Entries(ctx, idx, idx+1)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the demo issuer's commitment at index %d: %w", idx, err)
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("the log answered %d entries for index %d", len(es), idx)
	}
	e, err := schema.ParseEntry(es[0].Data)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	body, err := e.ParsedBody()
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	kc, ok := body.(*schema.KeyCommitment)
	if !ok {
		return nil, fmt.Errorf("entry %d is a %s, not a key commitment", idx, e.Kind)
	}
	return kc, nil
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
	var logs []monitor.LogConfig
	for _, l := range info.Logs {
		logs = append(logs, monitor.LogConfig{URL: l.LogURL, VKey: l.LogVKey})
		for _, w := range l.Witnesses {
			ws = append(ws, w.URL)
		}
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
		DataDir: monDir, Logs: logs,
		Witnesses: ws, Watch: []string{info.Issuer.Origin}, AlertOut: alertOut, Logger: logger, Registerer: reg,
		PollInterval: 2 * time.Second, GossipInterval: 5 * time.Second,
	})
	if err != nil {
		alerts.Close()
		release()
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", cfg.devAddr(1, 4))
	if err != nil {
		m.Close()
		alerts.Close()
		release()
		return nil, "", nil, fmt.Errorf("couldn't listen for the monitor on %s: %w", cfg.devAddr(1, 4), err)
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
	for _, l := range info.Logs {
		fmt.Fprintf(w, "  log      %s   (origin %s)\n", l.LogURL, l.LogOrigin)
		for _, wt := range l.Witnesses {
			fmt.Fprintf(w, "  witness  %s   (%s)\n", wt.URL, wt.Name)
		}
	}
	fmt.Fprintf(w, "  monitor  %s\n", info.MonitorURL)
	fmt.Fprintf(w, "  issuer   %s   (served over HTTPS at %s, CA %s: the log fetched its challenge)\n", info.Issuer.Origin, info.Issuer.Server, info.Issuer.CAFile)
	for _, l := range info.Logs {
		fmt.Fprintf(w, "  log vkey %s\n", l.LogVKey)
	}
	fmt.Fprintf(w, "  trust    %s   (every log, for verify --trust)\n\n", info.TrustFile)
	fmt.Fprintf(w, "Try next, in another terminal (each command runs as printed, in order):\n\n")
	for _, line := range devTryNext(info, self) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

// devTryNext are the commands printed for trying the deployment, in the
// order to run them in one shell: self is how to run keycommit
// (selfCommand). The single-log commands use the first log; the last,
// verify --trust, every log. TestDev runs them as printed.
func devTryNext(info *devInfo, self string) []string {
	return []string{
		fmt.Sprintf("export KEYCOMMIT_LOG=%s KEYCOMMIT_LOG_VKEY=%s", shellQuote(info.LogURL), shellQuote(info.LogVKey)),
		"curl -fsS \"$KEYCOMMIT_LOG/checkpoint\"",
		"curl -fsS \"$KEYCOMMIT_LOG/v1/issuers/" + info.Issuer.Origin + "\"",
		self + " verify --bundle \"$KEYCOMMIT_LOG/v1/keys.bundle\" --witness-policy " + shellQuote(info.WitnessPolicy),
		self + " issuer status --origin " + info.Issuer.Origin,
		self + " monitor --once --log-level warn",
		self + " verify --trust " + shellQuote(info.TrustFile),
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
