package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
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
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/schema"
	"github.com/spf13/cobra"
)

// logDBFile is the log's SQLite database inside its data directory.
const logDBFile = "log.db"

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Run the key commitment log"}
	cmd.AddCommand(newLogInitCmd(), newLogServeCmd(), newLogMigrateCmd(), newLogBackupCmd())
	return cmd
}

func newLogInitCmd() *cobra.Command {
	var dir, origin string
	var st storageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init --data DIR --origin ORIGIN",
		Short: "Create a new log: its Ed25519 key and its database (refuses to overwrite)",
		Long: `Creates DIR/log.key (mode 0600), DIR/log.vkey and DIR/log.db, whose entry 0
records the default policy parameters. Prints the log's verifier key (C2SP vkey)
as the last line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if on, err := st.trillian(); err != nil {
				return err
			} else if on {
				vkey, tree, err := initTrillianLog(cmd.Context(), dir, origin, st.addr, st.mysql, st.treeID)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), &logInitResult{Origin: origin, Dir: dir, VKey: vkey, Storage: "trillian", Trillian: st.addr, TreeID: tree})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "log %s initialized in %s on Trillian tree %d at %s\n%s\n", origin, dir, tree, st.addr, vkey)
				return nil
			}
			vkey, err := initLog(cmd.Context(), dir, origin, time.Now)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &logInitResult{Origin: origin, Dir: dir, VKey: vkey, Storage: "sqlite"})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "log %s initialized in %s\n%s\n", origin, dir, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "log data directory (required; created if missing)")
	cmd.Flags().StringVar(&origin, "origin", "", "checkpoint origin line and key name, e.g. keycommit.example/log/2026 (required)")
	st.add(cmd, "with --storage trillian: use this existing, empty PREORDERED_LOG tree instead of creating one")
	addJSONFlag(cmd, &asJSON, "log-init")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("origin")
	return cmd
}

// logInitResult is `log init --json` (schema/jsonschema/cli/log-init.json).
type logInitResult struct {
	Origin  string `json:"origin"`
	Dir     string `json:"dir"`
	VKey    string `json:"vkey"`
	Storage string `json:"storage"`
	// Trillian and TreeID are set with --storage trillian.
	Trillian string `json:"trillian,omitempty"`
	TreeID   int64  `json:"tree_id,omitempty"`
}

// initLog creates a log in dir and returns its vkey. It refuses a
// directory that already holds any of the log's files.
func initLog(ctx context.Context, dir, origin string, clock func() time.Time) (string, error) {
	if err := checkpoint.CheckOrigin(origin); err != nil {
		return "", err
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
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
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		return "", err
	}
	verifier, err := checkpoint.NewVerifier(vkey)
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
	if err := durable.Rename(tmp, filepath.Join(dir, logDBFile)); err != nil {
		return "", fmt.Errorf("couldn't move the new database into place: %w", err)
	}
	return vkey, nil
}

// logServeConfig is what log serve's flags say: which backend holds the
// log and how to serve it.
type logServeConfig struct {
	// Dir is the log's data directory (made by log init): log.key,
	// log.vkey, and log.db or the Trillian frontend's files.
	Dir string
	// Listen is the address to listen on (port 0 picks one).
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// Storage names the backend (see storageFlags).
	Storage storageFlags
	// Follow is how often a Trillian frontend picks up entries other
	// frontends appended.
	Follow time.Duration
	// Advertise is the URL the other Trillian frontends forward
	// submissions to while this one is the writer (default: http:// and
	// the listening address), and Lease the writer's lease.
	Advertise string
	Lease     time.Duration
	// ClockOffset shifts the log's clock (tests only).
	ClockOffset time.Duration
	// Witness is the optional witness hook (see sequencer.Config).
	Witness func(ctx context.Context, signed []byte) ([]byte, error)
	// WitnessPolicy, if set and Witness is nil, is a witness policy file
	// (Sigsum/Tessera format) naming the witnesses to ask for cosignatures.
	WitnessPolicy string
	// CosignInterval is how often the latest checkpoint is sent to the
	// witnesses again when nothing changed, and CosignRetryMax caps the
	// backoff of retries while the quorum is not met (zero: the
	// sequencer's defaults, DefaultCosignInterval and
	// DefaultCosignRetryMax).
	CosignInterval, CosignRetryMax time.Duration
	// Challenge configures the fetch of proofs of origin control, unless
	// OriginControl is set, which is used instead.
	Challenge     challengeFlags
	OriginControl func(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error)
	// Extra mounts handlers beside the log's routes, given the running log
	// (see server.StartConfig.Extra), e.g. the web explorer at /.
	Extra  func(server.Mounting) (map[string]http.Handler, error)
	Logger *slog.Logger
}

// startLog opens the log's backend in cfg.Dir and serves it through the
// server library.
func startLog(ctx context.Context, cfg logServeConfig) (*server.Running, error) {
	if cfg.CosignInterval < 0 || cfg.CosignRetryMax < 0 {
		return nil, fmt.Errorf("--cosign-interval (%v) and --cosign-retry-max (%v) must not be negative", cfg.CosignInterval, cfg.CosignRetryMax)
	}
	on, err := cfg.Storage.trillian()
	if err != nil {
		return nil, err
	}
	open := func(ctx context.Context, _ server.Opening) (*server.Opened, error) {
		store, err := sqlitestore.Open(ctx, filepath.Join(cfg.Dir, logDBFile))
		if err != nil {
			return nil, err
		}
		return &server.Opened{Backend: store, LogAttrs: []any{"storage", "sqlite"}}, nil
	}
	if on {
		if cfg.Listener == nil {
			// Listen first: the other frontends forward to this address.
			if cfg.Listener, err = net.Listen("tcp", cfg.Listen); err != nil {
				return nil, fmt.Errorf("couldn't listen on %s: %w", cfg.Listen, err)
			}
		}
		if cfg.Advertise == "" {
			cfg.Advertise = "http://" + cfg.Listener.Addr().String()
		}
		open = openTrillian(cfg)
	}
	extra := cfg.Extra
	if extra == nil {
		extra = explorerExtra
	}
	control := cfg.OriginControl
	if control == nil {
		fetcher, err := cfg.Challenge.fetcher()
		if err != nil {
			return nil, err
		}
		control = fetcher.Check
	}
	return server.Start(ctx, server.StartConfig{
		Dir: cfg.Dir, Open: open, Listen: cfg.Listen, Listener: cfg.Listener, ClockOffset: cfg.ClockOffset,
		Witness: cfg.Witness, WitnessPolicy: cfg.WitnessPolicy, CosignInterval: cfg.CosignInterval, CosignRetryMax: cfg.CosignRetryMax,
		Extra: extra, Logger: cfg.Logger,
		OriginControl: control,
	})
}

// addCosignFlags adds --cosign-interval and --cosign-retry-max (log
// serve and dev).
func addCosignFlags(cmd *cobra.Command, interval, retryMax *time.Duration) {
	cmd.Flags().DurationVar(interval, "cosign-interval", sequencer.DefaultCosignInterval,
		"with --witness-policy: ask the witnesses to cosign the latest checkpoint again this often even when nothing changed, so cosignatures stay fresh (keep it well below verify's --max-age)")
	cmd.Flags().DurationVar(retryMax, "cosign-retry-max", sequencer.DefaultCosignRetryMax,
		"with --witness-policy: cap of the backoff between retries of witnesses that failed while the quorum is not met (at most --cosign-interval)")
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
			release, err := lockDir(cfg.Dir, "log serve")
			if err != nil {
				return err
			}
			defer release()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := startLog(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.URL+"/")
			return r.Wait(ctx)
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "data", "", "log data directory made by log init (required)")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:7370", "address to listen on")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&cfg.WitnessPolicy, "witness-policy", "", "witness policy file (Sigsum/Tessera format; witnesses need URLs): cosignatures are collected for every checkpoint and served at /checkpoint")
	cmd.Flags().DurationVar(&cfg.ClockOffset, "unsafe-clock-offset", 0, "TESTS ONLY: shift the log's clock by this duration")
	cmd.Flags().MarkHidden("unsafe-clock-offset")
	addCosignFlags(cmd, &cfg.CosignInterval, &cfg.CosignRetryMax)
	cfg.Challenge.add(cmd)
	cfg.Storage.add(cmd, "with --storage trillian: the log's Trillian tree")
	cmd.Flags().DurationVar(&cfg.Follow, "trillian-follow", 200*time.Millisecond, "with --storage trillian: how often to pick up entries other frontends appended")
	cmd.Flags().StringVar(&cfg.Advertise, "trillian-advertise", "", "with --storage trillian: the URL at which the other frontends reach this one when it is the writer (default: http:// and the --listen address)")
	cmd.Flags().DurationVar(&cfg.Lease, "trillian-lease", trillianstore.DefaultLease, "with --storage trillian: the writer's lease; a writer that stops renewing it is replaced within about 1.25 times this")
	cmd.MarkFlagRequired("data")
	return cmd
}
