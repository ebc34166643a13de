package main

import (
	"fmt"
	"path/filepath"

	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/spf13/cobra"
)

// logBackupResult is `log backup --json`
// (schema/jsonschema/cli/log-backup.json).
type logBackupResult struct {
	Out string `json:"out"`
	// Bytes is the size of the backup file.
	Bytes int64 `json:"bytes"`
	// TreeSize is the size of the latest checkpoint in the backup.
	TreeSize uint64 `json:"tree_size"`
}

func newLogBackupCmd() *cobra.Command {
	var dir, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out FILE",
		Short: "Write a consistent copy of a SQLite log's database, while it serves",
		Long: `Writes a consistent copy of DIR/log.db to FILE (which must not exist) with
SQLite's VACUUM INTO: one snapshot of the database, taken while log serve goes on
serving and appending. To restore, put FILE as log.db in a directory holding the
log's key files (log.key, log.vkey: back them up once, separately, they never
change) and run log serve on it: it serves the log as of the backup, the same
checkpoint. See docs/operating.md. A Trillian log is backed up in MySQL/MariaDB
instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: the backup file to write")
			}
			ctx := cmd.Context()
			store, err := sqlitestore.Open(ctx, filepath.Join(dir, logDBFile))
			if err != nil {
				return err
			}
			defer store.Close()
			n, err := store.Backup(ctx, out)
			if err != nil {
				return err
			}
			b, err := sqlitestore.Open(ctx, out)
			if err != nil {
				return fmt.Errorf("the backup %s does not open: %w", out, err)
			}
			size, _, err := b.Checkpoint(ctx)
			b.Close()
			if err != nil {
				return fmt.Errorf("the backup %s holds no checkpoint: %w", out, err)
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &logBackupResult{Out: out, Bytes: n, TreeSize: size})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up the log in %s (tree size %d) to %s (%d bytes)\n", dir, size, out, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the SQLite log's data directory (required)")
	cmd.Flags().StringVar(&out, "out", "", "the backup file to write; must not exist (required)")
	addJSONFlag(cmd, &asJSON, "log-backup")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("out")
	return cmd
}
