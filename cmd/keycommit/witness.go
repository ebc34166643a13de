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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/witness"
)

func newWitnessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness that cosigns checkpoints of configured logs",
	}
	cmd.AddCommand(newWitnessInitCmd(), newWitnessAddLogCmd(), newWitnessListLogsCmd(), newWitnessServeCmd())
	return cmd
}

func newWitnessInitCmd() *cobra.Command {
	var dir, name string
	var asJSON, withEd25519, withMLDSA bool
	cmd := &cobra.Command{
		Use:   "init --data DIR --name NAME [--mldsa] [--ed25519=false]",
		Short: "Create a witness: cosignature keys and an empty state database",
		Long: "Creates DIR/witness.key (mode 0600, one private key a line), DIR/witness.vkey\n" +
			"and DIR/witness.db. By default the witness has an Ed25519 cosignature key\n" +
			"(C2SP vkey type 0x04); --mldsa adds an ML-DSA-44 one (type 0x06, which C2SP\n" +
			"tlog-cosignature recommends for new deployments), and --mldsa --ed25519=false\n" +
			"makes an ML-DSA-44-only witness. A witness with both keys returns both\n" +
			"cosignatures. Refuses to overwrite an existing witness. Prints the witness's\n" +
			"verifier keys, one a line, last.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vkeys, err := witness.InitDirKeys(cmd.Context(), dir, name, witness.Keys{Ed25519: withEd25519, MLDSA44: withMLDSA})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSONOut(out, &witnessInitResult{Name: name, Dir: dir, VKey: vkeys[0], VKeys: vkeys})
			}
			fmt.Fprintf(out, "initialized witness %q in %s\n", name, dir)
			for _, vkey := range vkeys {
				fmt.Fprintln(out, vkey)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "witness data directory (required)")
	cmd.Flags().StringVar(&name, "name", "", "witness key name, e.g. witness.example.com/w1 (required)")
	cmd.Flags().BoolVar(&withEd25519, "ed25519", true, "make an Ed25519 cosignature key (type 0x04)")
	cmd.Flags().BoolVar(&withMLDSA, "mldsa", false, "make an ML-DSA-44 cosignature key (type 0x06)")
	addJSONFlag(cmd, &asJSON, "witness-init")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newWitnessAddLogCmd() *cobra.Command {
	var dir, origin, vkey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add-log --data DIR --origin ORIGIN --vkey VKEY",
		Short: "Configure a log to cosign: its checkpoint origin and log verifier key",
		Long: "Any C2SP tlog-checkpoint log can be added. Adding another key to a known\n" +
			"origin adds it as an alternative key (a running server sees new origins at\n" +
			"once and new keys of a known origin after a restart).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := witness.OpenDirStore(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.AddLog(cmd.Context(), origin, vkey); err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &witnessAddLogResult{Origin: origin, VKey: vkey})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added log %q with key %s\n", origin, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "witness data directory (required)")
	cmd.Flags().StringVar(&origin, "origin", "", "the log's checkpoint origin line (required)")
	cmd.Flags().StringVar(&vkey, "vkey", "", "the log's verifier key, C2SP vkey format (required)")
	addJSONFlag(cmd, &asJSON, "witness-add-log")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("origin")
	cmd.MarkFlagRequired("vkey")
	return cmd
}

func newWitnessListLogsCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list-logs --data DIR",
		Short: "List configured logs with the size the witness last cosigned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := witness.OpenDirStore(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer s.Close()
			logs, err := s.Logs(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				res := witnessListLogsResult{Logs: []witnessLogJSON{}}
				for _, l := range logs {
					res.Logs = append(res.Logs, witnessLogJSON{Origin: l.Origin, Size: l.Size, VKeys: l.VKeys})
				}
				return writeJSONOut(cmd.OutOrStdout(), &res)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ORIGIN\tSIZE\tVKEYS")
			for _, l := range logs {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", l.Origin, l.Size, strings.Join(l.VKeys, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "witness data directory (required)")
	addJSONFlag(cmd, &asJSON, "witness-list-logs")
	cmd.MarkFlagRequired("data")
	return cmd
}

// witnessInitResult is `witness init --json`
// (schema/jsonschema/cli/witness-init.json).
type witnessInitResult struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// VKey is the first key (Ed25519 unless the witness is ML-DSA-only);
	// VKeys are all of them.
	VKey  string   `json:"vkey"`
	VKeys []string `json:"vkeys"`
}

// witnessAddLogResult is `witness add-log --json`
// (schema/jsonschema/cli/witness-add-log.json).
type witnessAddLogResult struct {
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
}

// witnessListLogsResult is `witness list-logs --json`
// (schema/jsonschema/cli/witness-list-logs.json).
type witnessListLogsResult struct {
	Logs []witnessLogJSON `json:"logs"`
}

type witnessLogJSON struct {
	Origin string   `json:"origin"`
	Size   uint64   `json:"size"`
	VKeys  []string `json:"vkeys"`
}

func newWitnessServeCmd() *cobra.Command {
	var dir, listen, level string
	cmd := &cobra.Command{
		Use:   "serve --data DIR --listen ADDR",
		Short: "Serve add-checkpoint at the root of ADDR (plus monitoring reads, /evidence, /metrics)",
		Long: "Serves POST /add-checkpoint, GET /<hex sha256(origin)>/checkpoint, GET /evidence\n" +
			"and GET /metrics. Prints its URL on the first line of stdout. SIGINT or SIGTERM\n" +
			"shut it down gracefully.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), level)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			release, err := lockDir(dir, "witness serve")
			if err != nil {
				return err
			}
			defer release()
			d, err := witness.OpenDir(ctx, dir)
			if err != nil {
				return err
			}
			defer d.Close()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			w, err := witness.New(witness.Config{Store: d.Store, Signers: d.Signers, VKeys: d.VKeys, Logger: logger, Metrics: reg})
			if err != nil {
				return err
			}
			defer w.Close()

			mux := witnessMux(w, reg)
			srv := &http.Server{
				Handler:           mux,
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      30 * time.Second,
				IdleTimeout:       2 * time.Minute,
				MaxHeaderBytes:    16 << 10,
				ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("couldn't listen on %s: %w", listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "http://%s/\n", ln.Addr())
			logger.Info("witness serving", "name", d.Name, "vkeys", d.VKeys, "addr", ln.Addr().String())

			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("witness server stopped: %w", err)
			case <-ctx.Done():
			}
			logger.Info("witness shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("couldn't shut down witness server: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "witness data directory (required)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7380", "address to listen on")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.MarkFlagRequired("data")
	return cmd
}

// witnessMux is the witness server's routes: its Handler, /metrics and
// the version, every GET inside the witness's read in-flight limit.
func witnessMux(w *witness.Witness, reg *prometheus.Registry) *http.ServeMux {
	lim := w.ReadLimit()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", lim.Wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("GET "+api.PathVersion, lim.Wrap(server.VersionHandler()))
	mux.Handle("/", w.Handler())
	return mux
}
