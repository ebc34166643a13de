package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/keycommit/keycommit/log/storage"
)

// cpCache keeps the checkpoints table in memory, so that serving the
// latest checkpoint (on every read request) costs one cheap check rather
// than a query: "PRAGMA data_version" on a connection of its own changes
// whenever any other connection, of this process or another, commits to
// the database. The cache is refreshed when it does, so readers still see
// every Append that has returned.
type cpCache struct {
	mu      sync.Mutex
	conn    *sql.Conn
	version *sql.Stmt
	read    *sql.Stmt
	valid   bool
	v       int64
	rows    map[string]cpRow
}

type cpRow struct {
	size uint64
	note []byte
}

func (c *cpCache) reset() {
	for _, st := range []*sql.Stmt{c.version, c.read} {
		if st != nil {
			st.Close()
		}
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.version, c.read, c.valid = nil, nil, nil, false
}

func (c *cpCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// get returns the stored checkpoint of the given name.
func (c *cpCache) get(ctx context.Context, db *sql.DB, name string) (uint64, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx, db); err != nil {
		c.reset()
		return 0, nil, fmt.Errorf("couldn't read %s checkpoint: %w", name, err)
	}
	r, ok := c.rows[name]
	if !ok {
		return 0, nil, fmt.Errorf("no %s checkpoint: %w", name, storage.ErrNotFound)
	}
	return r.size, r.note, nil
}

func (c *cpCache) refresh(ctx context.Context, db *sql.DB) error {
	if c.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		c.conn = conn
		if c.version, err = conn.PrepareContext(ctx, `PRAGMA data_version`); err != nil {
			return err
		}
		if c.read, err = conn.PrepareContext(ctx, `SELECT name, size, note FROM checkpoints`); err != nil {
			return err
		}
	}
	var v int64
	if err := c.version.QueryRowContext(ctx).Scan(&v); err != nil {
		return err
	}
	if c.valid && v == c.v {
		return nil
	}
	// Read after the version: what is read is at least as new as v.
	rows, err := c.read.QueryContext(ctx)
	if err != nil {
		return err
	}
	defer rows.Close()
	m := map[string]cpRow{}
	for rows.Next() {
		var name string
		var size int64
		var note []byte
		if err := rows.Scan(&name, &size, &note); err != nil {
			return err
		}
		m[name] = cpRow{size: uint64(size), note: note}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(m) > 2 {
		return errors.New("unexpected rows in the checkpoints table")
	}
	c.rows, c.v, c.valid = m, v, true
	return nil
}
