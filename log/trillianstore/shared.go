package trillianstore

// The shared store: what every frontend of one tree reads and the writer
// writes, in the MariaDB database that holds Trillian's tables. One row of
// KeycommitLog per tree holds the writer's lease and the log's state
// beside the leaves: the latest signed checkpoint, the latest key set, the
// latest serialised policy state and the latest cosigned checkpoint, and
// the key with which the frontends authenticate the batches they forward
// to the writer (ForwardKey, made by the first frontend that opens the
// tree).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/keycommit/keycommit/log/storage"
)

// schemaSQL creates keycommit's table beside Trillian's (idempotent).
const schemaSQL = `CREATE TABLE IF NOT EXISTS KeycommitLog(
  TreeId BIGINT NOT NULL PRIMARY KEY,
  Size BIGINT UNSIGNED NOT NULL DEFAULT 0,
  Checkpoint BLOB NULL,
  KeySetIndex BIGINT UNSIGNED NULL,
  KeySet LONGBLOB NULL,
  PolicySize BIGINT UNSIGNED NULL,
  PolicyState LONGBLOB NULL,
  CosignedSize BIGINT UNSIGNED NULL,
  Cosigned BLOB NULL,
  LeaseHolder VARBINARY(255) NOT NULL DEFAULT '',
  LeaseAddr VARBINARY(1024) NOT NULL DEFAULT '',
  LeaseToken BIGINT NOT NULL DEFAULT 0,
  LeaseExpiresMillis BIGINT NOT NULL DEFAULT 0,
  ForwardKey VARBINARY(32) NULL
)`

// migrateSQL adds what later versions keep to a table an earlier one
// made (idempotent).
const migrateSQL = `ALTER TABLE KeycommitLog ADD COLUMN IF NOT EXISTS ForwardKey VARBINARY(32) NULL`

// nowMillis is MariaDB's clock in milliseconds: leases are timed by the
// database's clock, the one clock every frontend shares.
const nowMillis = "CAST(UNIX_TIMESTAMP(NOW(3))*1000 AS SIGNED)"

// OpenDB opens the MariaDB database named by dsn (the go-sql-driver/mysql
// form of Trillian's --mysql_uri, e.g. user@tcp(127.0.0.1:3306)/trillian)
// and creates keycommit's table in it if it is missing.
func OpenDB(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the MariaDB DSN: %w", err)
	}
	// Rows matched, not rows changed: a lease renewed within the same
	// millisecond is still renewed.
	cfg.ClientFoundRows = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("couldn't configure MariaDB: %w", err)
	}
	db := sql.OpenDB(c)
	for _, q := range []string{schemaSQL, migrateSQL} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't create keycommit's table in MariaDB %s: %w", cfg.Addr, err)
		}
	}
	return db, nil
}

// ensureRow makes the tree's row if it is missing.
func ensureRow(ctx context.Context, db *sql.DB, tree int64) error {
	if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO KeycommitLog(TreeId) VALUES(?)", tree); err != nil {
		return fmt.Errorf("couldn't make the shared state of tree %d: %w", tree, err)
	}
	return nil
}

// forwardKey returns the tree's forwarding key, making it first if the
// row has none.
func forwardKey(ctx context.Context, db *sql.DB, tree int64) ([]byte, error) {
	k := make([]byte, 32)
	rand.Read(k)
	if _, err := db.ExecContext(ctx, "UPDATE KeycommitLog SET ForwardKey=? WHERE TreeId=? AND ForwardKey IS NULL", k, tree); err != nil {
		return nil, fmt.Errorf("couldn't make the forwarding key of tree %d: %w", tree, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT ForwardKey FROM KeycommitLog WHERE TreeId=?", tree).Scan(&k); err != nil {
		return nil, fmt.Errorf("couldn't read the forwarding key of tree %d: %w", tree, err)
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("the forwarding key of tree %d has %d bytes, want 32", tree, len(k))
	}
	return k, nil
}

// shared is one read of a tree's row (the policy state aside).
type shared struct {
	size         uint64
	checkpoint   []byte
	keySet       *storage.KeySet
	cosignedSize uint64
	cosigned     []byte
}

// readShared reads the row; its key set has only its Index.
func readShared(ctx context.Context, db *sql.DB, tree int64) (*shared, error) {
	var sh shared
	var ksIdx, cosSize sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT Size, Checkpoint, KeySetIndex, CosignedSize, Cosigned FROM KeycommitLog WHERE TreeId=?", tree).
		Scan(&sh.size, &sh.checkpoint, &ksIdx, &cosSize, &sh.cosigned)
	if errors.Is(err, sql.ErrNoRows) {
		return &sh, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the shared state of tree %d: %w", tree, err)
	}
	if ksIdx.Valid {
		sh.keySet = &storage.KeySet{Index: uint64(ksIdx.Int64)}
	}
	sh.cosignedSize = uint64(cosSize.Int64)
	return &sh, nil
}

// Lease is the writer's lease of a tree, as the shared store has it.
type Lease struct {
	// Holder is the writer's frontend ID and Addr its base URL, where
	// the other frontends forward submissions ("" when nobody holds it).
	Holder, Addr string
	// Token is the fencing token: it grows by one with every new holder,
	// and a write is committed only if it still is the writer's.
	Token int64
	// Expires is when the lease ends unless renewed, and Now the
	// database's clock when it was read.
	Expires, Now time.Time
}

// Held reports whether someone holds l at l.Now.
func (l Lease) Held() bool { return l.Holder != "" && l.Expires.After(l.Now) }

func readLease(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tree int64) (Lease, error) {
	var l Lease
	var exp, now int64
	err := q.QueryRowContext(ctx, "SELECT LeaseHolder, LeaseAddr, LeaseToken, LeaseExpiresMillis, "+nowMillis+" FROM KeycommitLog WHERE TreeId=?", tree).
		Scan(&l.Holder, &l.Addr, &l.Token, &exp, &now)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, nil
	}
	if err != nil {
		return Lease{}, fmt.Errorf("couldn't read the writer's lease of tree %d: %w", tree, err)
	}
	l.Expires, l.Now = time.UnixMilli(exp), time.UnixMilli(now)
	return l, nil
}

// ErrNotWriter is returned (wrapped) by Append and Renew when this store
// does not hold the writer's lease: it never took it, or another frontend
// took it over (its fencing token is newer).
var ErrNotWriter = errors.New("this frontend is not the log's writer")

// placeholders returns "(?,?,...),(...)" for n rows of k columns.
func placeholders(n, k int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", k), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// isDuplicate reports a MariaDB duplicate-key error.
func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}
