package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/storage"
)

// recheckAfter is how long the checkpoint cache is used without asking
// SQLite whether another connection (another Store or process) changed
// the database. Appends through this Store update the cache at once.
const recheckAfter = time.Millisecond

// cpCache keeps the checkpoints table in memory, so that serving the
// latest checkpoint (on every read request) does not cost a query:
//   - Append through this Store updates it when it commits, so this
//     Store's readers see every Append that has returned;
//   - for writes through other connections (another Store on the same
//     file, another process), "PRAGMA data_version" on a connection of
//     its own is checked at most every recheckAfter, and the table is
//     read again when it changed.
type cpCache struct {
	cur atomic.Pointer[cpView]
	// exact makes every read check data_version (tests).
	exact bool

	mu      sync.Mutex // serialises refreshes and updates
	conn    *sql.Conn
	version *sql.Stmt
	read    *sql.Stmt
}

// cpView is an immutable view of the checkpoints table.
type cpView struct {
	rows    map[string]cpRow
	v       int64
	checked time.Time
}

type cpRow struct {
	size uint64
	note []byte
}

func (c *cpCache) resetLocked() {
	for _, st := range []*sql.Stmt{c.version, c.read} {
		if st != nil {
			st.Close()
		}
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.version, c.read = nil, nil, nil
	c.cur.Store(nil)
}

func (c *cpCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

// get returns the stored checkpoint of the given name.
func (c *cpCache) get(ctx context.Context, db *sql.DB, name string) (uint64, []byte, error) {
	view := c.cur.Load()
	if view == nil || c.exact || time.Since(view.checked) >= recheckAfter {
		var err error
		if view, err = c.refresh(ctx, db); err != nil {
			return 0, nil, fmt.Errorf("couldn't read %s checkpoint: %w", name, err)
		}
	}
	r, ok := view.rows[name]
	if !ok {
		return 0, nil, fmt.Errorf("no %s checkpoint: %w", name, storage.ErrNotFound)
	}
	return r.size, r.note, nil
}

// refresh checks data_version and reads the table again if it changed.
func (c *cpCache) refresh(ctx context.Context, db *sql.DB) (*cpView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if view := c.cur.Load(); view != nil && !c.exact && time.Since(view.checked) < recheckAfter {
		return view, nil // refreshed while we waited
	}
	view, err := c.refreshLocked(ctx, db)
	if err != nil {
		c.resetLocked()
		return nil, err
	}
	c.cur.Store(view)
	return view, nil
}

func (c *cpCache) refreshLocked(ctx context.Context, db *sql.DB) (*cpView, error) {
	now := time.Now()
	if c.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		c.conn = conn
		if c.version, err = conn.PrepareContext(ctx, `PRAGMA data_version`); err != nil {
			return nil, err
		}
		if c.read, err = conn.PrepareContext(ctx, `SELECT name, size, note FROM checkpoints`); err != nil {
			return nil, err
		}
	}
	var v int64
	if err := c.version.QueryRowContext(ctx).Scan(&v); err != nil {
		return nil, err
	}
	if old := c.cur.Load(); old != nil && old.v == v {
		return &cpView{rows: old.rows, v: v, checked: now}, nil
	}
	// Read after the version: what is read is at least as new as v.
	rows, err := c.read.QueryContext(ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]cpRow{}
	for rows.Next() {
		var name string
		var size int64
		var note []byte
		if err := rows.Scan(&name, &size, &note); err != nil {
			return nil, err
		}
		m[name] = cpRow{size: uint64(size), note: note}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(m) > 2 {
		return nil, errors.New("unexpected rows in the checkpoints table")
	}
	return &cpView{rows: m, v: v, checked: now}, nil
}

// appended records the checkpoint that an Append through this Store has
// just committed.
func (c *cpCache) appended(size uint64, note []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cur.Load()
	if old == nil {
		return // read from the database on first use
	}
	m := make(map[string]cpRow, len(old.rows)+1)
	for k, r := range old.rows {
		m[k] = r
	}
	m["log"] = cpRow{size: size, note: note}
	c.cur.Store(&cpView{rows: m, v: old.v, checked: old.checked})
}

// invalidate makes the next read go to the database.
func (c *cpCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.Store(nil)
}
