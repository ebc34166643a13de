package main

// The Trillian storage backend's command-line side: the --storage flags
// of `log init` and `log serve`, what they do with --storage trillian, and
// `log migrate`.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/spf13/cobra"
)

// Files of a Trillian frontend's data directory (beside log.key, log.vkey).
const (
	trillianCacheFile  = "trillian-cache.db" // the frontend's local cache
	trillianConfigFile = "trillian.json"     // Trillian address and tree ID
)

// trillianTarget is DIR/trillian.json.
type trillianTarget struct {
	Addr   string `json:"trillian"`
	MySQL  string `json:"mysql"`
	TreeID int64  `json:"tree_id"`
}

// storageFlags name a log's backend: --storage sqlite (the default) or
// trillian with its server and tree.
type storageFlags struct {
	storage string
	addr    string
	mysql   string
	treeID  int64
}

func (f *storageFlags) add(cmd *cobra.Command, treeHelp string) {
	cmd.Flags().StringVar(&f.storage, "storage", "sqlite", "storage backend: sqlite (one machine) or trillian (Trillian log server on MySQL/MariaDB)")
	cmd.Flags().StringVar(&f.addr, "trillian", "", "with --storage trillian: the Trillian log server's gRPC address, e.g. 127.0.0.1:8090")
	cmd.Flags().StringVar(&f.mysql, "trillian-mysql", "", "with --storage trillian: the MariaDB database of the Trillian log server, as its --mysql_uri, e.g. 'trillian@tcp(127.0.0.1:3306)/trillian' (keycommit keeps the writer's lease and the log's shared state there)")
	cmd.Flags().Int64Var(&f.treeID, "tree-id", 0, treeHelp)
}

func (f *storageFlags) trillian() (bool, error) {
	switch f.storage {
	case "sqlite", "":
		if f.addr != "" || f.treeID != 0 || f.mysql != "" {
			return false, errors.New("--trillian, --trillian-mysql and --tree-id need --storage trillian")
		}
		return false, nil
	case "trillian":
		return true, nil
	}
	return false, fmt.Errorf("unknown --storage %q (want sqlite or trillian)", f.storage)
}

// initTrillianLog creates the log key in dir, a Trillian tree (unless
// treeID names an empty one), and writes entry 0 to the tree.
func initTrillianLog(ctx context.Context, dir, origin, addr, dsn string, treeID int64) (string, int64, error) {
	if addr == "" || dsn == "" {
		return "", 0, errors.New("--storage trillian needs --trillian ADDR and --trillian-mysql DSN")
	}
	if err := checkpoint.CheckOrigin(origin); err != nil {
		return "", 0, err
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("couldn't create data directory: %w", err)
	}
	for _, f := range []string{checkpoint.PrivateKeyFile, checkpoint.PublicKeyFile, logDBFile, trillianCacheFile, trillianConfigFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return "", 0, fmt.Errorf("refusing to initialize a log in %s: %s already exists", dir, f)
		}
	}
	conn, err := trillianstore.Dial(addr)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	admin, lc := trillian.NewTrillianAdminClient(conn), trillian.NewTrillianLogClient(conn)
	if treeID == 0 {
		if treeID, err = trillianstore.CreateTree(ctx, admin, lc, "keycommit "+origin); err != nil {
			return "", 0, err
		}
	} else {
		if err := trillianstore.CheckTree(ctx, admin, treeID); err != nil {
			return "", 0, err
		}
		if r, err := trillianstore.LatestRoot(ctx, lc, treeID); err != nil {
			return "", 0, err
		} else if r.Size != 0 {
			return "", 0, fmt.Errorf("refusing to initialize a log in Trillian tree %d: it has %d leaves", treeID, r.Size)
		}
	}
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		return "", 0, err
	}
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		return "", 0, err
	}
	verifier, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return "", 0, err
	}
	db, err := trillianstore.OpenDB(ctx, dsn)
	if err != nil {
		return "", 0, err
	}
	defer db.Close()
	cache, err := sqlitestore.Create(ctx, filepath.Join(dir, trillianCacheFile))
	if err != nil {
		return "", 0, err
	}
	store, err := trillianstore.Open(ctx, trillianstore.Config{Client: lc, DB: db, TreeID: treeID, Cache: cache, Verifier: verifier, FollowInterval: -1})
	if err != nil {
		cache.Close()
		return "", 0, err
	}
	if ok, err := store.Acquire(ctx, "log-init", "", trillianstore.DefaultLease); err != nil || !ok {
		store.Close()
		return "", 0, errors.Join(fmt.Errorf("couldn't take the writer's lease of tree %d to write entry 0", treeID), err)
	}
	_, err = sequencer.Init(ctx, sequencer.Config{Backend: store, Signer: signer, Verifier: verifier})
	if cerr := store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	if err := checkpoint.WriteKeyFiles(dir, skey, vkey); err != nil {
		return "", 0, err
	}
	if err := writeTrillianTarget(dir, trillianTarget{Addr: addr, MySQL: dsn, TreeID: treeID}); err != nil {
		return "", 0, err
	}
	return vkey, treeID, nil
}

func writeTrillianTarget(dir string, t trillianTarget) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.Replace(filepath.Join(dir, trillianConfigFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("couldn't write %s: %w", trillianConfigFile, err)
	}
	return nil
}

// resolveTarget fills addr, DSN and tree ID from DIR/trillian.json when
// the flags leave them out.
func resolveTarget(dir, addr, dsn string, treeID int64) (string, string, int64, error) {
	if b, err := os.ReadFile(filepath.Join(dir, trillianConfigFile)); err == nil {
		var t trillianTarget
		if err := json.Unmarshal(b, &t); err != nil {
			return "", "", 0, fmt.Errorf("couldn't parse %s: %w", trillianConfigFile, err)
		}
		if addr == "" {
			addr = t.Addr
		}
		if dsn == "" {
			dsn = t.MySQL
		}
		if treeID == 0 {
			treeID = t.TreeID
		}
	}
	if addr == "" || dsn == "" || treeID == 0 {
		return "", "", 0, errors.New("--storage trillian needs --trillian ADDR, --trillian-mysql DSN and --tree-id ID (or DIR/trillian.json)")
	}
	return addr, dsn, treeID, nil
}

// openTrillian returns the opener of this frontend's view of the Trillian
// tree: the store over its local cache, and the frontend as the log's
// writing side.
func openTrillian(cfg logServeConfig) func(context.Context, server.Opening) (*server.Opened, error) {
	return func(ctx context.Context, o server.Opening) (_ *server.Opened, err error) {
		addr, dsn, tree, err := resolveTarget(cfg.Dir, cfg.Storage.addr, cfg.Storage.mysql, cfg.Storage.treeID)
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
		conn, err := trillianstore.Dial(addr)
		if err != nil {
			return nil, err
		}
		db, err := trillianstore.OpenDB(ctx, dsn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		var store *trillianstore.Store
		defer func() {
			if err != nil {
				if store != nil {
					store.Close()
				}
				db.Close()
				conn.Close()
			}
		}()
		if err := trillianstore.CheckTree(ctx, trillian.NewTrillianAdminClient(conn), tree); err != nil {
			return nil, err
		}
		// The cache is this frontend's own: made on first start, rebuilt
		// from Trillian if deleted.
		cachePath := filepath.Join(cfg.Dir, trillianCacheFile)
		var cache *sqlitestore.Store
		if _, err := os.Stat(cachePath); err == nil {
			cache, err = sqlitestore.Open(ctx, cachePath)
			if err != nil {
				return nil, err
			}
		} else if cache, err = sqlitestore.Create(ctx, cachePath); err != nil {
			return nil, err
		}
		store, err = trillianstore.Open(ctx, trillianstore.Config{
			Client: trillian.NewTrillianLogClient(conn), DB: db, TreeID: tree, Cache: cache, Verifier: verifier,
			FollowInterval: cfg.Follow, Logger: o.Logger, Registerer: o.Registry,
		})
		if err != nil {
			cache.Close()
			return nil, err
		}
		if _, _, err := store.Checkpoint(ctx); err != nil {
			return nil, fmt.Errorf("the Trillian tree %d holds no log (run log init --storage trillian first): %w", tree, err)
		}
		return &server.Opened{
			Backend: store,
			Close: func() error {
				err := store.Close()
				if cerr := db.Close(); err == nil {
					err = cerr
				}
				if cerr := conn.Close(); err == nil {
					err = cerr
				}
				return err
			},
			NewLog: func(ctx context.Context, c sequencer.Config) (server.WritingLog, error) {
				return trillianstore.NewFrontend(ctx, c, store, trillianstore.FrontendConfig{Advertise: cfg.Advertise, VKey: vkey, Lease: cfg.Lease})
			},
			LogAttrs: []any{"storage", "trillian", "tree", tree},
		}, nil
	}
}

// migrateResult is `log migrate --json`
// (schema/jsonschema/cli/log-migrate.json).
type migrateResult struct {
	Trillian          string `json:"trillian"`
	TreeID            int64  `json:"tree_id"`
	Copied            uint64 `json:"copied"`
	TreeSize          uint64 `json:"tree_size"`
	Root              []byte `json:"root"`
	SizesChecked      uint64 `json:"sizes_checked"`
	CheckpointsProved int    `json:"checkpoints_proved"`
}

func newLogMigrateCmd() *cobra.Command {
	var dir, addr, dsn, checkpoints string
	var treeID int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate --data DIR --trillian ADDR --trillian-mysql DSN [--tree-id ID]",
		Short: "Copy a SQLite log into a Trillian tree and prove the copy",
		Long: `Copies the SQLite log in DIR (stop its log serve first) into a Trillian
PREORDERED_LOG tree (a new one, or --tree-id: empty, or a prefix left by an
interrupted migrate), then proves the result: the same leaves, the same root at
every tree size, and every published checkpoint (the latest, the cosigned one,
and those in --checkpoints) consistent with the new tree by Trillian's own
consistency proofs. Writes DIR/trillian.json, so that
  keycommit log serve --storage trillian --data DIR
serves the migrated log with the same key. Prints the tree ID as the last line.
Progress (entries done, rate, time left) goes to stderr as it copies and proves.
It takes the lock on DIR (DIR/keycommit.lock), so it refuses to run while log
serve or dev uses DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if addr == "" || dsn == "" {
				return errors.New("migrate needs --trillian ADDR and --trillian-mysql DSN")
			}
			vkey, err := checkpoint.LoadVerifierKey(dir)
			if err != nil {
				return err
			}
			verifier, err := checkpoint.NewVerifier(vkey)
			if err != nil {
				return err
			}
			var extra [][]byte
			if checkpoints != "" {
				b, err := os.ReadFile(checkpoints)
				if err != nil {
					return fmt.Errorf("couldn't read --checkpoints: %w", err)
				}
				extra = splitNotes(string(b))
			}
			release, err := lockDir(dir, "log migrate")
			if err != nil {
				return err
			}
			defer release()
			src, err := sqlitestore.Open(ctx, filepath.Join(dir, logDBFile))
			if err != nil {
				return err
			}
			defer src.Close()
			conn, err := trillianstore.Dial(addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			db, err := trillianstore.OpenDB(ctx, dsn)
			if err != nil {
				return err
			}
			defer db.Close()
			admin, lc := trillian.NewTrillianAdminClient(conn), trillian.NewTrillianLogClient(conn)
			if treeID == 0 {
				if treeID, err = trillianstore.CreateTree(ctx, admin, lc, "keycommit "+verifier.Name()); err != nil {
					return err
				}
			} else if err := trillianstore.CheckTree(ctx, admin, treeID); err != nil {
				return err
			}
			if err := writeTrillianTarget(dir, trillianTarget{Addr: addr, MySQL: dsn, TreeID: treeID}); err != nil {
				return err
			}
			prog := newProgress(cmd.ErrOrStderr(), "entries")
			res, err := trillianstore.Migrate(ctx, trillianstore.MigrateConfig{
				Source: src, Verifier: verifier, Client: lc, DB: db, TreeID: treeID, Checkpoints: extra,
				Progress: prog.update,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSONOut(out, &migrateResult{Trillian: addr, TreeID: treeID, Copied: res.Copied, TreeSize: res.Size,
					Root: res.Root[:], SizesChecked: res.SizesChecked, CheckpointsProved: res.CheckpointsProved})
			}
			fmt.Fprintf(out, "copied %d entries (tree size %d) into Trillian tree %d at %s\n", res.Copied, res.Size, treeID, addr)
			fmt.Fprintf(out, "same root at all %d tree sizes; %d published checkpoints verify against Trillian's consistency proofs\n", res.SizesChecked, res.CheckpointsProved)
			fmt.Fprintf(out, "serve it with: keycommit log serve --storage trillian --data %s\n%d\n", dir, treeID)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the SQLite log's data directory (required)")
	cmd.Flags().StringVar(&addr, "trillian", "", "the Trillian log server's gRPC address (required)")
	cmd.Flags().StringVar(&dsn, "trillian-mysql", "", "the Trillian log server's MariaDB database, as its --mysql_uri (required)")
	cmd.Flags().Int64Var(&treeID, "tree-id", 0, "an existing PREORDERED_LOG tree (default: create one)")
	cmd.Flags().StringVar(&checkpoints, "checkpoints", "", "a file of further signed checkpoints the log published, separated by blank lines")
	addJSONFlag(cmd, &asJSON, "log-migrate")
	cmd.MarkFlagRequired("data")
	return cmd
}

// splitNotes splits concatenated signed notes: each is text lines, a
// blank line and signature lines ("— name sig"); blank lines between notes
// are skipped.
func splitNotes(s string) [][]byte {
	var out [][]byte
	var cur strings.Builder
	inSigs := false
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, []byte(cur.String()))
			cur.Reset()
		}
		inSigs = false
	}
	for _, line := range strings.Split(s, "\n") {
		switch {
		case inSigs && strings.HasPrefix(line, "— "):
			cur.WriteString(line + "\n")
		case inSigs:
			flush()
			if line != "" {
				cur.WriteString(line + "\n")
			}
		case line == "" && cur.Len() > 0:
			cur.WriteString("\n")
			inSigs = true
		case line != "":
			cur.WriteString(line + "\n")
		}
	}
	flush()
	return out
}
