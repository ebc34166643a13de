package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/keycommit/keycommit/log/storage"
)

// rowsPerInsert is how many rows one INSERT statement carries. Statement
// overhead (through database/sql and the driver) dominates inserting
// small rows one at a time; 256 rows of at most 2 parameters stay far
// below SQLite's limit of 32766 parameters.
const rowsPerInsert = 256

// multiInsert runs "prefix (?, ?), (?, ?), ... suffix" over rows of
// width parameters each, rowsPerInsert rows per statement, preparing the
// full-size statement once.
type multiInsert struct {
	ctx    context.Context
	tx     *sql.Tx
	prefix string
	suffix string
	width  int
	full   *sql.Stmt
}

func (m *multiInsert) query(rows int) string {
	var b strings.Builder
	b.WriteString(m.prefix)
	tuple := "(?" + strings.Repeat(", ?", m.width-1) + ")"
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	b.WriteString(m.suffix)
	return b.String()
}

// exec inserts args, which hold width parameters per row.
func (m *multiInsert) exec(args []any) error {
	per := rowsPerInsert * m.width
	for len(args) > 0 {
		n := min(len(args), per)
		var err error
		if n == per {
			if m.full == nil {
				if m.full, err = m.tx.PrepareContext(m.ctx, m.query(rowsPerInsert)); err != nil {
					return err
				}
			}
			_, err = m.full.ExecContext(m.ctx, args[:n]...)
		} else {
			_, err = m.tx.ExecContext(m.ctx, m.query(n/m.width), args[:n]...)
		}
		if err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

func (m *multiInsert) close() {
	if m.full != nil {
		m.full.Close()
	}
}

// insertEntries stores b's entries, their leaf hashes and the issuer
// index inside tx.
func insertEntries(ctx context.Context, tx *sql.Tx, b *storage.Batch) error {
	n := len(b.Entries)
	entryArgs := make([]any, 0, 2*n)
	leafArgs := make([]any, 0, 2*n)
	var issuerArgs []any
	for i := range b.Entries {
		e := &b.Entries[i]
		idx := int64(b.Start) + int64(i)
		entryArgs = append(entryArgs, idx, e.Data)
		leafArgs = append(leafArgs, e.LeafHash[:], idx)
		if e.Issuer != "" {
			issuerArgs = append(issuerArgs, e.Issuer, idx)
		}
	}
	for _, ins := range []struct {
		what string
		m    *multiInsert
		args []any
	}{
		{"entries", &multiInsert{ctx: ctx, tx: tx, prefix: `INSERT INTO entries (idx, data) VALUES `, width: 2}, entryArgs},
		// A leaf hash already stored keeps its smallest index.
		{"leaf hashes", &multiInsert{ctx: ctx, tx: tx, prefix: `INSERT INTO leaf_hashes (hash, idx) VALUES `, suffix: ` ON CONFLICT (hash) DO NOTHING`, width: 2}, leafArgs},
		{"the issuer index", &multiInsert{ctx: ctx, tx: tx, prefix: `INSERT INTO issuer_entries (issuer, idx) VALUES `, width: 2}, issuerArgs},
	} {
		err := ins.m.exec(ins.args)
		ins.m.close()
		if err != nil {
			return fmt.Errorf("couldn't store %s of entries [%d, %d): %w", ins.what, b.Start, b.Size(), err)
		}
	}
	return nil
}
