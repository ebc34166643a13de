// Package sqlitestore is the log's embedded storage backend: one SQLite
// file (modernc.org/sqlite, pure Go), in WAL mode with synchronous=FULL, so
// a batch is on disk (the WAL fsynced) before Append returns.
package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"

	"github.com/keycommit/keycommit/log/storage"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schemaVersion is stored in the meta table; Open refuses other versions.
const schemaVersion = "keycommit-log-sqlite-1"

const schema = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE leaf_hashes (hash BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE issuer_entries (issuer TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (issuer, idx)) WITHOUT ROWID;
CREATE TABLE tiles (level INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (level, n)) WITHOUT ROWID;
CREATE TABLE checkpoints (name TEXT PRIMARY KEY, size INTEGER NOT NULL, note BLOB NOT NULL);
CREATE TABLE key_set (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, data BLOB NOT NULL);
` + policyStateTable + keySetsTable

// keySetsTable holds the key sets of the last storage.KeySetHistory
// snapshots (KeySetBefore). Added like policy_state: Open creates it in a
// database that lacks it (its history then starts with the next
// snapshot).
const keySetsTable = `
CREATE TABLE IF NOT EXISTS key_sets (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
`

// policyStateTable holds the latest policy state snapshot. It was added
// after schemaVersion 1 without changing it: Open creates it in a
// database that lacks it, and older code ignores it.
const policyStateTable = `
CREATE TABLE IF NOT EXISTS policy_state (id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL, data BLOB NOT NULL);
`

// Store is a SQLite log backend.
type Store struct {
	db  *sql.DB
	cps cpCache
}

var (
	_ storage.Backend             = (*Store)(nil)
	_ storage.PolicyStateReader   = (*Store)(nil)
	_ storage.KeySetHistoryReader = (*Store)(nil)
)

func dsn(path, mode string) string {
	q := url.Values{}
	q.Set("mode", mode)
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Create makes a new, empty log database at path. It refuses to touch an
// existing file.
func Create(ctx context.Context, path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("couldn't create log database (refusing to overwrite an existing one): %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn(path, "rw"))
	if err != nil {
		return nil, fmt.Errorf("couldn't open new log database %s: %w", path, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create log database schema: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create log database schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('schema', ?)`, schemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create log database schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create log database schema: %w", err)
	}
	return newStore(db), nil
}

// Open opens an existing log database. It refuses a missing file (run
// `keycommit log init` first) and a database of another schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("couldn't open log database (initialize the log first): %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path, "rw"))
	if err != nil {
		return nil, fmt.Errorf("couldn't open log database %s: %w", path, err)
	}
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema'`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't read log database %s (is it a keycommit log?): %w", path, err)
	}
	if v != schemaVersion {
		db.Close()
		return nil, fmt.Errorf("log database %s has schema %q, want %q", path, v, schemaVersion)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't upgrade log database %s: %w", path, err)
	}
	return newStore(db), nil
}

func newStore(db *sql.DB) *Store {
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return &Store{db: db}
}

// Close implements storage.Backend.
func (s *Store) Close() error {
	s.cps.close()
	return s.db.Close()
}

// Append implements storage.Writer: one IMMEDIATE transaction, committed
// with the WAL fsynced (synchronous=FULL).
func (s *Store) Append(ctx context.Context, b *storage.Batch) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin append transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var size uint64
	switch err := tx.QueryRowContext(ctx, `SELECT size FROM checkpoints WHERE name = 'log'`).Scan(&size); {
	case errors.Is(err, sql.ErrNoRows):
		size = 0
	case err != nil:
		return fmt.Errorf("couldn't read the stored tree size: %w", err)
	}
	if b.Start != size {
		return fmt.Errorf("couldn't append at %d to a log of %d entries: %w", b.Start, size, storage.ErrConflict)
	}
	if err := insertEntries(ctx, tx, b); err != nil {
		return err
	}
	for _, t := range b.Tiles {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tiles (level, n, data) VALUES (?, ?, ?)
			ON CONFLICT (level, n) DO UPDATE SET data = excluded.data WHERE length(excluded.data) >= length(tiles.data)`,
			t.L, t.N, t.Data); err != nil {
			return fmt.Errorf("couldn't store tile %d/%d: %w", t.L, t.N, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (name, size, note) VALUES ('log', ?, ?)
		ON CONFLICT (name) DO UPDATE SET size = excluded.size, note = excluded.note`, int64(b.Size()), b.Checkpoint); err != nil {
		return fmt.Errorf("couldn't store checkpoint: %w", err)
	}
	if b.KeySet != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_set (id, idx, data) VALUES (0, ?, ?)
			ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, data = excluded.data`, int64(b.KeySet.Index), b.KeySet.Data); err != nil {
			return fmt.Errorf("couldn't store key set: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_sets (idx, data) VALUES (?, ?)
			ON CONFLICT (idx) DO UPDATE SET data = excluded.data`, int64(b.KeySet.Index), b.KeySet.Data); err != nil {
			return fmt.Errorf("couldn't store key set history: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_sets WHERE idx NOT IN (SELECT idx FROM key_sets ORDER BY idx DESC LIMIT ?)`,
			storage.KeySetHistory); err != nil {
			return fmt.Errorf("couldn't trim key set history: %w", err)
		}
	}
	if ps := b.PolicyState; ps != nil {
		if ps.Size != b.Size() {
			return fmt.Errorf("couldn't append: policy state of size %d stored with a batch ending at %d", ps.Size, b.Size())
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_state (id, size, data) VALUES (0, ?, ?)
			ON CONFLICT (id) DO UPDATE SET size = excluded.size, data = excluded.data`, int64(ps.Size), ps.Data); err != nil {
			return fmt.Errorf("couldn't store policy state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		s.cps.invalidate() // it may have committed
		return fmt.Errorf("couldn't commit append of entries [%d, %d): %w", b.Start, b.Size(), err)
	}
	s.cps.appended(b.Size(), bytes.Clone(b.Checkpoint))
	return nil
}

// SetCosigned implements storage.Writer.
func (s *Store) SetCosigned(ctx context.Context, size uint64, note []byte) error {
	err := s.setCosigned(ctx, size, note)
	s.cps.invalidate() // whether or not it replaced the stored one
	return err
}

// setCosigned reads the stored cosigned checkpoint, merges (see
// storage.MergeCosigned) and writes in one immediate transaction, so
// concurrent writers (other Stores, other processes) are serialised.
func (s *Store) setCosigned(ctx context.Context, size uint64, note []byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't store cosigned checkpoint: %w", err)
	}
	defer tx.Rollback()
	var (
		storedSize int64
		stored     []byte
	)
	err = tx.QueryRowContext(ctx, `SELECT size, note FROM checkpoints WHERE name = 'cosigned'`).Scan(&storedSize, &stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("couldn't read cosigned checkpoint: %w", err)
	}
	merged, err := storage.MergeCosigned(uint64(storedSize), stored, size, note)
	if err != nil || merged == nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (name, size, note) VALUES ('cosigned', ?, ?)
		ON CONFLICT (name) DO UPDATE SET size = excluded.size, note = excluded.note`, int64(size), merged); err != nil {
		return fmt.Errorf("couldn't store cosigned checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit cosigned checkpoint: %w", err)
	}
	return nil
}

func (s *Store) checkpoint(ctx context.Context, name string) (uint64, []byte, error) {
	return s.cps.get(ctx, s.db, name)
}

// Checkpoint implements storage.Reader.
func (s *Store) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	return s.checkpoint(ctx, "log")
}

// Cosigned implements storage.Reader.
func (s *Store) Cosigned(ctx context.Context) (uint64, []byte, error) {
	return s.checkpoint(ctx, "cosigned")
}

// Tile implements storage.Reader.
func (s *Store) Tile(ctx context.Context, l int, n int64) ([]byte, error) {
	var d []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM tiles WHERE level = ? AND n = ?`, l, n).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no tile %d/%d: %w", l, n, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read tile %d/%d: %w", l, n, err)
	}
	return d, nil
}

// Entries implements storage.Reader.
func (s *Store) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	if start > end {
		return nil, fmt.Errorf("no entries [%d, %d): %w", start, end, storage.ErrNotFound)
	}
	out := make([][]byte, 0, end-start)
	rows, err := s.db.QueryContext(ctx, `SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries [%d, %d): %w", start, end, err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var d []byte
		if err := rows.Scan(&idx, &d); err != nil {
			return nil, fmt.Errorf("couldn't read entries [%d, %d): %w", start, end, err)
		}
		if uint64(idx) != start+uint64(len(out)) {
			return nil, fmt.Errorf("entry %d is missing from the database", start+uint64(len(out)))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read entries [%d, %d): %w", start, end, err)
	}
	if uint64(len(out)) != end-start {
		return nil, fmt.Errorf("no entries [%d, %d): only %d stored there: %w", start, end, len(out), storage.ErrNotFound)
	}
	return out, nil
}

// LeafIndex implements storage.Reader.
func (s *Store) LeafIndex(ctx context.Context, h tlog.Hash) (uint64, error) {
	var idx int64
	err := s.db.QueryRowContext(ctx, `SELECT idx FROM leaf_hashes WHERE hash = ?`, h[:]).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("no entry with leaf hash %x: %w", h[:], storage.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("couldn't look up leaf hash: %w", err)
	}
	return uint64(idx), nil
}

// IssuerEntries implements storage.Reader.
func (s *Store) IssuerEntries(ctx context.Context, origin string) ([]uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT idx FROM issuer_entries WHERE issuer = ? ORDER BY idx`, origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx); err != nil {
			return nil, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
		}
		out = append(out, uint64(idx))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
	}
	return out, nil
}

// IssuerEntriesBefore implements storage.IssuerTailReader: it reads at
// most n indexes (and counts the rest).
func (s *Store) IssuerEntriesBefore(ctx context.Context, origin string, before uint64, n int) ([]uint64, int, error) {
	b := int64(min(before, math.MaxInt64))
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM issuer_entries WHERE issuer = ? AND idx < ?`, origin, b).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("couldn't count entries of issuer %s: %w", origin, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT idx FROM issuer_entries WHERE issuer = ? AND idx < ? ORDER BY idx DESC LIMIT ?`, origin, b, max(n, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx); err != nil {
			return nil, 0, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
		}
		out = append(out, uint64(idx))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("couldn't read entries of issuer %s: %w", origin, err)
	}
	slices.Reverse(out)
	return out, total, nil
}

// KeySet implements storage.Reader.
func (s *Store) KeySet(ctx context.Context) (*storage.KeySet, error) {
	var idx int64
	var d []byte
	err := s.db.QueryRowContext(ctx, `SELECT idx, data FROM key_set WHERE id = 0`).Scan(&idx, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no key set: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read key set: %w", err)
	}
	return &storage.KeySet{Index: uint64(idx), Data: d}, nil
}

// KeySetBefore implements storage.KeySetHistoryReader.
func (s *Store) KeySetBefore(ctx context.Context, treeSize uint64) (*storage.KeySet, error) {
	var idx int64
	var d []byte
	err := s.db.QueryRowContext(ctx, `SELECT idx, data FROM key_sets WHERE idx < ? ORDER BY idx DESC LIMIT 1`, int64(treeSize)).Scan(&idx, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no key set kept below tree size %d: %w", treeSize, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read key set history: %w", err)
	}
	return &storage.KeySet{Index: uint64(idx), Data: d}, nil
}

// migrate brings a database of schemaVersion up to date with additive
// changes: it creates the policy_state table if it is missing (and writes
// nothing otherwise).
func migrate(ctx context.Context, db *sql.DB) error {
	for _, t := range []struct{ name, ddl string }{{"policy_state", policyStateTable}, {"key_sets", keySetsTable}} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, t.name).Scan(&n); err != nil {
			return fmt.Errorf("couldn't list tables: %w", err)
		}
		if n == 1 {
			continue
		}
		if _, err := db.ExecContext(ctx, t.ddl); err != nil {
			return fmt.Errorf("couldn't create table %s: %w", t.name, err)
		}
	}
	return nil
}

// PolicyState implements storage.PolicyStateReader.
func (s *Store) PolicyState(ctx context.Context) (*storage.PolicyState, error) {
	var size int64
	var d []byte
	err := s.db.QueryRowContext(ctx, `SELECT size, data FROM policy_state WHERE id = 0`).Scan(&size, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no policy state: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read policy state: %w", err)
	}
	return &storage.PolicyState{Size: uint64(size), Data: d}, nil
}
