package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func init() { rootCmd.AddCommand(newLogCmd()) }

// logDBFile is the log's SQLite database inside its data directory.
const logDBFile = "log.db"

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Run the key commitment log"}
	cmd.AddCommand(newLogInitCmd(), newLogServeCmd())
	return cmd
}

func newLogInitCmd() *cobra.Command {
	var dir, origin string
	cmd := &cobra.Command{
		Use:   "init --data DIR --origin ORIGIN",
		Short: "Create a new log: its Ed25519 key and its database (refuses to overwrite)",
		Long: `Creates DIR/log.key (mode 0600), DIR/log.vkey and DIR/log.db, whose entry 0
records the default policy parameters. Prints the log's verifier key (C2SP vkey)
as the last line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vkey, err := initLog(cmd.Context(), dir, origin, time.Now)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "log %s initialized in %s\n%s\n", origin, dir, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "log data directory (required; created if missing)")
	cmd.Flags().StringVar(&origin, "origin", "", "checkpoint origin line and key name, e.g. keycommit.example/log/2026 (required)")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("origin")
	return cmd
}

// initLog creates a log in dir and returns its vkey. It refuses a
// directory that already holds any of the log's files.
func initLog(ctx context.Context, dir, origin string, clock func() time.Time) (string, error) {
	if err := checkpoint.CheckOrigin(origin); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create data directory: %w", err)
	}
	for _, f := range []string{checkpoint.PrivateKeyFile, checkpoint.PublicKeyFile, logDBFile, logDBFile + ".init"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return "", fmt.Errorf("refusing to initialize a log in %s: %s already exists", dir, f)
		}
	}
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		return "", err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return "", err
	}
	// Build the database under a temporary name and rename it into place
	// once entry 0 is durable, so log.db is never a half-made log.
	tmp := filepath.Join(dir, logDBFile+".init")
	store, err := sqlitestore.Create(ctx, tmp)
	if err != nil {
		return "", err
	}
	_, err = sequencer.Init(ctx, sequencer.Config{Backend: store, Signer: signer, Verifier: verifier, Clock: clock})
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("couldn't close new log database: %w", cerr)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := checkpoint.WriteKeyFiles(dir, skey, vkey); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(dir, logDBFile)); err != nil {
		return "", fmt.Errorf("couldn't move the new database into place: %w", err)
	}
	return vkey, nil
}

// logServeConfig configures serveLog.
type logServeConfig struct {
	// Dir is the log's data directory (made by initLog).
	Dir string
	// Listen is the address to listen on (port 0 picks one).
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// ClockOffset shifts the log's clock (tests only).
	ClockOffset time.Duration
	// Witness is the optional witness hook (see sequencer.Config).
	Witness func(ctx context.Context, signed []byte) ([]byte, error)
	// WitnessPolicy, if set and Witness is nil, is a witness policy file
	// (Sigsum/Tessera format) naming the witnesses to ask for cosignatures.
	WitnessPolicy string
	Logger        *slog.Logger
}

// runningLog is a log being served.
type runningLog struct {
	URL  string
	VKey string
	Seq  *sequencer.Sequencer
	stop func(context.Context) error
	errc chan error
}

// Shutdown stops serving, finishes the batch in progress and closes the
// database.
func (r *runningLog) Shutdown(ctx context.Context) error { return r.stop(ctx) }

// Done returns a channel that receives the error if the server stops on
// its own.
func (r *runningLog) Done() <-chan error { return r.errc }

// startLog opens the log in cfg.Dir and serves it on cfg.Listen.
func startLog(ctx context.Context, cfg logServeConfig) (*runningLog, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	signer, err := checkpoint.LoadSigner(cfg.Dir)
	if err != nil {
		return nil, err
	}
	vkey, err := checkpoint.LoadVerifierKey(cfg.Dir)
	if err != nil {
		return nil, err
	}
	verifier, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	store, err := sqlitestore.Open(ctx, filepath.Join(cfg.Dir, logDBFile))
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	clock := time.Now
	if off := cfg.ClockOffset; off != 0 {
		clock = func() time.Time { return time.Now().Add(off) }
		logger.Warn("log clock is shifted (unsafe, for tests only)", "offset", off.String())
	}
	if cfg.Witness == nil && cfg.WitnessPolicy != "" {
		if cfg.Witness, err = witnessHook(cfg.WitnessPolicy, store, logger, reg); err != nil {
			store.Close()
			return nil, err
		}
	}
	seq, err := sequencer.New(ctx, sequencer.Config{
		Backend: store, Signer: signer, Verifier: verifier, Clock: clock,
		Witness: cfg.Witness, Logger: logger, Registerer: reg,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	h, err := server.New(server.Config{Reader: store, Log: seq, Logger: logger, Registerer: reg, Gatherer: reg})
	var handler http.Handler
	if err == nil {
		handler, err = withBundles(h, store, logger, reg)
	}
	if err != nil {
		seq.Close()
		store.Close()
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			seq.Close()
			store.Close()
			return nil, fmt.Errorf("couldn't listen on %s: %w", cfg.Listen, err)
		}
	}
	srv := server.NewHTTPServer(ln.Addr().String(), handler, logger)
	r := &runningLog{URL: "http://" + ln.Addr().String(), VKey: vkey, Seq: seq, errc: make(chan error, 1)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.errc <- err
		}
	}()
	r.stop = func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		seq.Close()
		if cerr := store.Close(); err == nil {
			err = cerr
		}
		return err
	}
	size, _ := seq.Checkpoint()
	logger.Info("log serving", "origin", signer.Name(), "size", size, "url", r.URL)
	return r, nil
}

func newLogServeCmd() *cobra.Command {
	var cfg logServeConfig
	var level string
	cmd := &cobra.Command{
		Use:   "serve --data DIR --listen ADDR",
		Short: "Serve the log: C2SP tlog-tiles read path, JSON API, submissions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(os.Stderr, level)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := startLog(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.URL+"/")
			select {
			case err := <-r.Done():
				r.Shutdown(context.Background())
				return fmt.Errorf("log server stopped: %w", err)
			case <-ctx.Done():
			}
			cfg.Logger.Info("log shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Shutdown(sctx); err != nil {
				return fmt.Errorf("couldn't shut down the log cleanly: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "data", "", "log data directory made by log init (required)")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:7370", "address to listen on")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&cfg.WitnessPolicy, "witness-policy", "", "witness policy file (Sigsum/Tessera format; witnesses need URLs): cosignatures are collected for every checkpoint and served at /checkpoint")
	cmd.Flags().DurationVar(&cfg.ClockOffset, "unsafe-clock-offset", 0, "TESTS ONLY: shift the log's clock by this duration")
	cmd.Flags().MarkHidden("unsafe-clock-offset")
	cmd.MarkFlagRequired("data")
	return cmd
}
