package monitor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// The monitor's state is one SQLite database. Commit order, per log:
//
//  1. The anchor (the latest checkpoint whose signature and consistency
//     with the previous anchor were verified) is written as soon as it is
//     verified, before any entry beyond the old anchor is replayed.
//  2. Every save writes, in one transaction, the replay position, the
//     policy state at that position, the verified checkpoint (the anchor
//     once the position reaches it) and the alerts raised by the entries
//     before the position. A crash between saves loses only replay work:
//     the entries after the last save are fetched, verified and replayed
//     again, and their alerts, keyed by what they are about, are not
//     stored twice.
//     With them go the key commitments and snapshots the cross-log check
//     recorded (crosslog.go) from the entries before the position; a
//     replay repeated after a crash records them again.
//  3. Cross-log evidence and its alert are stored in one transaction.
//  4. Alerts are delivered (stdout, webhook) after they are committed and
//     marked per sink once delivered, so a crash can repeat a delivery but
//     never lose one.
const storeSchema = `
CREATE TABLE IF NOT EXISTS logs (
	origin   TEXT PRIMARY KEY,
	vkey     TEXT NOT NULL,
	url      TEXT NOT NULL,
	anchor   BLOB,
	verified BLOB,
	position INTEGER NOT NULL DEFAULT 0,
	state    BLOB,
	updated  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS alerts (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	key       TEXT NOT NULL UNIQUE,
	body      BLOB NOT NULL,
	delivered INTEGER NOT NULL DEFAULT 0,
	created   INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS watches (
	origin TEXT PRIMARY KEY,
	added  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS watch_since (
	issuer TEXT NOT NULL,
	log    TEXT NOT NULL,
	since  INTEGER NOT NULL,
	PRIMARY KEY (issuer, log)
) STRICT;
CREATE TABLE IF NOT EXISTS evidence (
	id     TEXT PRIMARY KEY,
	origin TEXT NOT NULL,
	body   BLOB NOT NULL,
	found  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS latest_entry (
	origin TEXT PRIMARY KEY,
	idx    INTEGER NOT NULL,
	time   INTEGER NOT NULL,
	entry  BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS crosslog_commitments (
	log    TEXT NOT NULL,
	idx    INTEGER NOT NULL,
	issuer TEXT NOT NULL,
	time   INTEGER NOT NULL,
	value  BLOB NOT NULL,
	PRIMARY KEY (log, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS crosslog_registrations (
	log     TEXT NOT NULL,
	idx     INTEGER NOT NULL,
	issuer  TEXT NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (log, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS crosslog_snapshots (
	log  TEXT NOT NULL,
	idx  INTEGER NOT NULL,
	time INTEGER NOT NULL,
	PRIMARY KEY (log, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS crosslog_dropped (
	id     TEXT PRIMARY KEY,
	reason TEXT NOT NULL,
	time   INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS pending (
	origin   TEXT NOT NULL,
	size     INTEGER NOT NULL,
	root     BLOB NOT NULL,
	note     BLOB NOT NULL,
	source   TEXT NOT NULL,
	received INTEGER NOT NULL,
	PRIMARY KEY (origin, size, root)
) STRICT;
`

type store struct {
	db *sql.DB
}

func openStore(ctx context.Context, path string) (*store, error) {
	// Create the file 0600 before SQLite does (it would use 0644): the
	// database holds watches and alerts, private to the operator.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("couldn't create monitor database %s: %w", path, err)
	} else {
		f.Close()
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("couldn't make monitor database %s private: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "rwc")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("couldn't open monitor database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, storeSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create the monitor database schema in %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// logRow is a log's saved state.
type logRow struct {
	vkey, url        string
	anchor, verified []byte // signed notes
	position         int64
	state            []byte
}

// loadLog returns the saved state of origin, or ok == false.
func (s *store) loadLog(ctx context.Context, origin string) (r logRow, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT vkey, url, anchor, verified, position, state FROM logs WHERE origin = ?`, origin).
		Scan(&r.vkey, &r.url, &r.anchor, &r.verified, &r.position, &r.state)
	if errors.Is(err, sql.ErrNoRows) {
		return logRow{}, false, nil
	}
	if err != nil {
		return logRow{}, false, fmt.Errorf("couldn't load the state of log %s: %w", origin, err)
	}
	return r, true, nil
}

func (s *store) initLog(ctx context.Context, origin, vkey, u string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO logs (origin, vkey, url, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (origin) DO UPDATE SET url = excluded.url`, origin, vkey, u, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("couldn't record log %s: %w", origin, err)
	}
	return nil
}

func (s *store) saveAnchor(ctx context.Context, origin string, anchor []byte) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE logs SET anchor = ?, updated = ? WHERE origin = ?`,
		anchor, time.Now().UnixMilli(), origin); err != nil {
		return fmt.Errorf("couldn't save the checkpoint of log %s: %w", origin, err)
	}
	return nil
}

// saveProgress records replay progress, the alerts raised so far and the
// commitments and snapshots the cross-log check recorded (cl, may be nil),
// in one transaction. verified may be nil (unchanged).
func (s *store) saveProgress(ctx context.Context, origin string, verified []byte, position int64, state []byte, alerts []Alert, cl *clRecord) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't save progress of log %s: %w", origin, err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	if verified != nil {
		_, err = tx.ExecContext(ctx, `UPDATE logs SET verified = ?, position = ?, state = ?, updated = ? WHERE origin = ?`,
			verified, position, state, now, origin)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE logs SET position = ?, state = ?, updated = ? WHERE origin = ?`,
			position, state, now, origin)
	}
	if err != nil {
		return fmt.Errorf("couldn't save progress of log %s: %w", origin, err)
	}
	if err := insertAlerts(ctx, tx, alerts); err != nil {
		return err
	}
	if err := insertCrossLog(ctx, tx, origin, cl); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't save progress of log %s: %w", origin, err)
	}
	return nil
}

func insertAlerts(ctx context.Context, tx *sql.Tx, alerts []Alert) error {
	for _, a := range alerts {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (key, body, created) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			a.key(), b, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("couldn't store alert %s: %w", a.key(), err)
		}
	}
	return nil
}

// addAlerts stores alerts outside replay (gossip, checkpoints).
func (s *store) addAlerts(ctx context.Context, alerts []Alert) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't store alerts: %w", err)
	}
	defer tx.Rollback()
	if err := insertAlerts(ctx, tx, alerts); err != nil {
		return err
	}
	return tx.Commit()
}

type storedAlert struct {
	id        int64
	body      []byte
	delivered int
}

// undelivered returns the alerts that some sink in mask has not received.
func (s *store) undelivered(ctx context.Context, mask int) ([]storedAlert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, body, delivered FROM alerts WHERE (delivered & ?) != ? ORDER BY id`, mask, mask)
	if err != nil {
		return nil, fmt.Errorf("couldn't read undelivered alerts: %w", err)
	}
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		if err := rows.Scan(&a.id, &a.body, &a.delivered); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *store) markDelivered(ctx context.Context, id int64, bits int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE alerts SET delivered = delivered | ? WHERE id = ?`, bits, id)
	if err != nil {
		return fmt.Errorf("couldn't mark alert %d delivered: %w", id, err)
	}
	return nil
}

// alertWhere is the SQL condition selecting the alerts f matches (the
// issuer part is an ASCII-case-insensitive substring match).
func alertWhere(f AlertFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Kind != "" {
		conds = append(conds, `json_extract(CAST(body AS TEXT), '$.kind') = ?`)
		args = append(args, f.Kind)
	}
	if f.Issuer != "" {
		conds = append(conds, `instr(lower(coalesce(json_extract(CAST(body AS TEXT), '$.issuer'), '')), lower(?)) > 0`)
		args = append(args, f.Issuer)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// alertsPage returns at most limit alerts matching f, newest first,
// skipping the offset newest.
func (s *store) alertsPage(ctx context.Context, f AlertFilter, offset, limit int) ([]Alert, error) {
	where, args := alertWhere(f)
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM alerts`+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(args, max(limit, 0), max(offset, 0))...)
	if err != nil {
		return nil, fmt.Errorf("couldn't read alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var a Alert
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("stored alert is malformed: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// count returns the result of a COUNT query.
func (s *store) count(ctx context.Context, what, query string, args ...any) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't count %s: %w", what, err)
	}
	return n, nil
}

func (s *store) addWatch(ctx context.Context, origin string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO watches (origin, added) VALUES (?, ?) ON CONFLICT (origin) DO NOTHING`,
		origin, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("couldn't add a watch on %s: %w", origin, err)
	}
	return nil
}

// setWatchSince records, unless already recorded, the log index from
// which a watch on issuer applies to log.
func (s *store) setWatchSince(ctx context.Context, issuer, log string, since int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO watch_since (issuer, log, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, issuer, log, since)
	if err != nil {
		return fmt.Errorf("couldn't record the start of the watch on %s: %w", issuer, err)
	}
	return nil
}

// watchSince returns issuer -> log -> first index watched.
func (s *store) watchSince(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT w.origin, ws.log, ws.since FROM watches w LEFT JOIN watch_since ws ON ws.issuer = w.origin`)
	if err != nil {
		return nil, fmt.Errorf("couldn't read watches: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var issuer string
		var log sql.NullString
		var since sql.NullInt64
		if err := rows.Scan(&issuer, &log, &since); err != nil {
			return nil, err
		}
		if out[issuer] == nil {
			out[issuer] = map[string]int64{}
		}
		if log.Valid {
			out[issuer][log.String] = since.Int64
		}
	}
	return out, rows.Err()
}

// watches returns at most limit watched origins after the origin after,
// in order (limit <= 0: all).
func (s *store) watches(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT origin FROM watches WHERE origin > ? ORDER BY origin LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read watches: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// addEvidence stores the evidence bundle e (split-view or time) of log
// origin under id, and its alert; it reports whether e is new.
func (s *store) addEvidence(ctx context.Context, id, origin string, e any, found time.Time, alert Alert) (bool, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return false, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("couldn't store evidence: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO evidence (id, origin, body, found) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, origin, b, found.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("couldn't store evidence %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if err := insertAlerts(ctx, tx, []Alert{alert}); err != nil {
		return false, err
	}
	return n == 1, tx.Commit()
}

// evidenceList returns the ids and origins of stored evidence.
func (s *store) evidenceList(ctx context.Context) ([]EvidenceInfo, error) {
	return s.evidenceQuery(ctx, `SELECT id, origin, found FROM evidence ORDER BY found, id`)
}

// evidencePage returns at most limit evidence entries with ids after the
// id after, in id order.
func (s *store) evidencePage(ctx context.Context, after string, limit int) ([]EvidenceInfo, error) {
	return s.evidenceQuery(ctx, `SELECT id, origin, found FROM evidence WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

func (s *store) evidenceQuery(ctx context.Context, query string, args ...any) ([]EvidenceInfo, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("couldn't list evidence: %w", err)
	}
	defer rows.Close()
	var out []EvidenceInfo
	for rows.Next() {
		var i EvidenceInfo
		var found int64
		if err := rows.Scan(&i.ID, &i.Origin, &found); err != nil {
			return nil, err
		}
		i.Found = time.UnixMilli(found).UTC()
		out = append(out, i)
	}
	return out, rows.Err()
}

func (s *store) evidence(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM evidence WHERE id = ?`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read evidence %s: %w", id, err)
	}
	return b, nil
}

// maxPendingPerLog bounds the gossiped checkpoints kept per log for a
// later check: each is signed by the log, but anyone who has many can
// send them all.
const maxPendingPerLog = 256

// errTooManyPending is returned by addPending when the log already has
// maxPendingPerLog checkpoints waiting.
var errTooManyPending = errors.New("too many checkpoints of this log are waiting for a check")

func (s *store) addPending(ctx context.Context, cp *Checkpoint, source string) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pending WHERE origin = ?`, cp.Origin).Scan(&n); err != nil {
		return fmt.Errorf("couldn't count pending checkpoints: %w", err)
	}
	if n >= maxPendingPerLog {
		return fmt.Errorf("%w (%d)", errTooManyPending, n)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO pending (origin, size, root, note, source, received) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, cp.Origin, cp.Size, cp.Root[:], cp.Note, source, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("couldn't keep checkpoint %s for a later check: %w", cp, err)
	}
	return nil
}

type pendingCheckpoint struct {
	note   []byte
	source string
}

func (s *store) pendingFor(ctx context.Context, origin string) ([]pendingCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT note, source FROM pending WHERE origin = ? ORDER BY size`, origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't read pending checkpoints: %w", err)
	}
	defer rows.Close()
	var out []pendingCheckpoint
	for rows.Next() {
		var p pendingCheckpoint
		if err := rows.Scan(&p.note, &p.source); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *store) dropPending(ctx context.Context, cp *Checkpoint) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM pending WHERE origin = ? AND size = ? AND root = ?`, cp.Origin, cp.Size, cp.Root[:])
	return err
}
