package witness

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/keycommit/keycommit/log/c2sp"
)

// Store is the witness's durable state: the logs it is configured for (origin
// and log verifier keys), the latest checkpoint it cosigned for each, and the
// fork evidence it collected. It is one SQLite file in WAL mode with
// synchronous=FULL: a transaction is on disk once Commit returns.
//
// Several processes may open the same file (the CLI adds logs while the
// server runs); writes are serialised by SQLite.
type Store struct {
	db   *sql.DB
	path string

	// Statements of the commit path, prepared once (database/sql keeps
	// them prepared per connection).
	updateStmt, updateFirstStmt, evidenceStmt *sql.Stmt
}

const (
	// Compare-and-swap: the row must still hold the state the update was
	// checked against.
	updateSQL = `UPDATE logs SET size = ?, root = ?, note = ?, cosignature = ?, updated_at = ?
		WHERE origin = ? AND size = ? AND root = ?`
	updateFirstSQL = `UPDATE logs SET size = ?, root = ?, note = ?, cosignature = ?, updated_at = ?
		WHERE origin = ? AND size = ? AND root IS NULL`
	evidenceSQL = `INSERT INTO evidence (origin, kind, proven, cosigned_note, cosigned_size,
		conflicting_note, conflicting_size, conflicting_hash, old_size, proof, implied_old_root, observed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// ErrNotInitialized is returned by OpenStore when the database file does not
// exist: the witness refuses to create state implicitly.
var ErrNotInitialized = errors.New("witness state not initialized")

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	k TEXT PRIMARY KEY,
	v TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS logs (
	origin      TEXT PRIMARY KEY,
	origin_id   TEXT NOT NULL UNIQUE, -- hex SHA-256 of the origin (monitoring URL)
	size        INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
	root        BLOB,                 -- NULL until the first checkpoint is cosigned
	note        BLOB,                 -- latest cosigned checkpoint, log signatures only
	cosignature TEXT,                 -- our signature line on it
	added_at    INTEGER NOT NULL,
	updated_at  INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS log_keys (
	origin   TEXT NOT NULL REFERENCES logs(origin),
	vkey     TEXT NOT NULL,
	added_at INTEGER NOT NULL,
	PRIMARY KEY (origin, vkey)
) STRICT;
CREATE TABLE IF NOT EXISTS evidence (
	id               INTEGER PRIMARY KEY,
	origin           TEXT NOT NULL,
	kind             TEXT NOT NULL,
	proven           INTEGER NOT NULL,
	cosigned_note    BLOB NOT NULL,
	cosigned_size    INTEGER NOT NULL,
	conflicting_note BLOB NOT NULL,
	conflicting_size INTEGER NOT NULL,
	conflicting_hash TEXT NOT NULL,   -- hex SHA-256 of conflicting_note, for deduplication
	old_size         INTEGER NOT NULL,
	proof            TEXT NOT NULL,   -- base64 hashes, one per line
	implied_old_root BLOB,
	observed_at      INTEGER NOT NULL,
	UNIQUE (origin, kind, conflicting_hash)
) STRICT;
`

func dsn(path string, create bool) string {
	mode := "rw"
	if create {
		mode = "rwc"
	}
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// CreateStore creates a new state database at path and records the witness's
// name and cosignature vkey in it. It refuses to touch an existing file.
func CreateStore(ctx context.Context, path, name, vkey string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("couldn't create witness database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("couldn't create witness database %s: %w", path, err)
	}
	s, err := openStore(ctx, path, true)
	if err != nil {
		return nil, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('name', ?), ('vkey', ?), ('created_at', ?)`,
		name, vkey, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("couldn't record witness identity in %s: %w", path, err)
	}
	return s, nil
}

// OpenStore opens an existing state database. It returns an error wrapping
// ErrNotInitialized if there is none.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no database at %s (run `keycommit witness init` first)", ErrNotInitialized, path)
	}
	return openStore(ctx, path, false)
}

func openStore(ctx context.Context, path string, create bool) (*Store, error) {
	db, err := sql.Open("sqlite", dsn(path, create))
	if err != nil {
		return nil, fmt.Errorf("couldn't open witness database %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't apply schema to witness database %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("couldn't put witness database %s in WAL mode (got %q): %v", path, mode, err)
	}
	// Every pooled connection runs the DSN pragmas; check one.
	var syncMode int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil || syncMode != 2 {
		db.Close()
		return nil, fmt.Errorf("couldn't set synchronous=FULL on witness database %s (got %d): %v", path, syncMode, err)
	}
	s := &Store{db: db, path: path}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{{&s.updateStmt, updateSQL}, {&s.updateFirstStmt, updateFirstSQL}, {&s.evidenceStmt, evidenceSQL}} {
		if *p.dst, err = db.PrepareContext(ctx, p.sql); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't prepare statement on witness database %s: %w", path, err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	for _, st := range []*sql.Stmt{s.updateStmt, s.updateFirstStmt, s.evidenceStmt} {
		st.Close()
	}
	return s.db.Close()
}

// Identity returns the witness name and cosignature vkey recorded at init.
func (s *Store) Identity(ctx context.Context) (name, vkey string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT v FROM meta WHERE k = 'name'),
		(SELECT v FROM meta WHERE k = 'vkey')`).Scan(&name, &vkey)
	if err != nil {
		return "", "", fmt.Errorf("couldn't read witness identity from %s: %w", s.path, err)
	}
	return name, vkey, nil
}

// OriginID is the identifier of a log in monitoring URLs: the lowercase hex
// SHA-256 of its origin line.
func OriginID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// ValidateOrigin checks that origin can be a checkpoint origin line:
// non-empty, valid text without control characters or newlines.
func ValidateOrigin(origin string) error {
	if origin == "" {
		return errors.New("origin is empty")
	}
	for _, r := range origin {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("origin %q contains a control or invalid character", origin)
		}
	}
	return nil
}

// checkLogVKey parses a log verifier key. Any signature type that
// log/c2sp can verify is accepted except the cosignature types, which are
// not log keys.
func checkLogVKey(vkey string) error {
	k, err := c2sp.ParseVKey(vkey)
	if err == nil && (k.Type == c2sp.TypeCosignatureV1 || k.Type == c2sp.TypeCosignatureMLDSA44) {
		return fmt.Errorf("log verifier key %q has cosignature type 0x%02x, not a log signature type", vkey, k.Type)
	}
	if _, err := c2sp.NewVerifier(vkey); err != nil {
		return fmt.Errorf("log verifier key %q is not a usable vkey: %w", vkey, err)
	}
	return nil
}

// ErrLogKeyExists is returned by AddLog when the origin already has the key.
var ErrLogKeyExists = errors.New("log key already configured")

// AddLog configures the witness to cosign checkpoints of origin signed by
// vkey. Adding a second key to a known origin is allowed (key rotation); a
// running server picks up new origins at once and new keys of a known
// origin when it restarts.
func (s *Store) AddLog(ctx context.Context, origin, vkey string) error {
	if err := ValidateOrigin(origin); err != nil {
		return fmt.Errorf("couldn't add log: %w", err)
	}
	if err := checkLogVKey(vkey); err != nil {
		return fmt.Errorf("couldn't add log %q: %w", origin, err)
	}
	now := time.Now().Unix()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't add log %q: %w", origin, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO logs (origin, origin_id, added_at) VALUES (?, ?, ?) ON CONFLICT (origin) DO NOTHING`,
		origin, OriginID(origin), now); err != nil {
		return fmt.Errorf("couldn't add log %q: %w", origin, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO log_keys (origin, vkey, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, origin, vkey, now)
	if err != nil {
		return fmt.Errorf("couldn't add key for log %q: %w", origin, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("couldn't add log %q: %w", origin, ErrLogKeyExists)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't add log %q: %w", origin, err)
	}
	return nil
}

// LogInfo describes a configured log and the latest checkpoint cosigned for it.
type LogInfo struct {
	Origin string   `json:"origin"`
	ID     string   `json:"id"`
	VKeys  []string `json:"vkeys"`
	// Size is the size of the latest cosigned checkpoint (0 if none).
	Size uint64 `json:"size"`
	// Root is the root hash of the latest cosigned checkpoint, nil if none.
	Root []byte `json:"root,omitempty"`
	// UpdatedAt is when the witness last cosigned a new checkpoint for
	// this log (re-cosigning the same one is not recorded).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Logs lists the configured logs, ordered by origin.
func (s *Store) Logs(ctx context.Context) ([]LogInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT l.origin, l.origin_id, l.size, l.root, l.updated_at, k.vkey
		FROM logs l JOIN log_keys k ON k.origin = l.origin ORDER BY l.origin, k.added_at, k.vkey`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list logs: %w", err)
	}
	defer rows.Close()
	var out []LogInfo
	for rows.Next() {
		var (
			li      LogInfo
			size    int64
			updated sql.NullInt64
			vkey    string
		)
		if err := rows.Scan(&li.Origin, &li.ID, &size, &li.Root, &updated, &vkey); err != nil {
			return nil, fmt.Errorf("couldn't list logs: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].Origin == li.Origin {
			out[n-1].VKeys = append(out[n-1].VKeys, vkey)
			continue
		}
		li.Size = uint64(size)
		li.VKeys = []string{vkey}
		if updated.Valid {
			li.UpdatedAt = time.Unix(updated.Int64, 0).UTC()
		}
		out = append(out, li)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't list logs: %w", err)
	}
	return out, nil
}

// logRow is one log's persisted state.
type logRow struct {
	origin string
	vkeys  []string
	size   uint64
	root   []byte // nil if never cosigned
	note   []byte
	cosig  string
}

// loadLog reads one log's configuration and state. It returns (nil, nil) for
// an unknown origin.
func (s *Store) loadLog(ctx context.Context, origin string) (*logRow, error) {
	r := &logRow{origin: origin}
	var (
		size  int64
		cosig sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT size, root, note, cosignature FROM logs WHERE origin = ?`, origin).
		Scan(&size, &r.root, &r.note, &cosig)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't load state of log %q: %w", origin, err)
	}
	r.size, r.cosig = uint64(size), cosig.String
	rows, err := s.db.QueryContext(ctx, `SELECT vkey FROM log_keys WHERE origin = ? ORDER BY added_at, vkey`, origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't load keys of log %q: %w", origin, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("couldn't load keys of log %q: %w", origin, err)
		}
		r.vkeys = append(r.vkeys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't load keys of log %q: %w", origin, err)
	}
	return r, nil
}

// LatestCheckpoint returns the latest checkpoint cosigned for the log whose
// OriginID is id, with the log's signatures and the witness's cosignature.
// ok is false if the origin is unknown or nothing was cosigned yet.
func (s *Store) LatestCheckpoint(ctx context.Context, id string) (cosigned []byte, ok bool, err error) {
	var (
		note  []byte
		cosig sql.NullString
	)
	err = s.db.QueryRowContext(ctx, `SELECT note, cosignature FROM logs WHERE origin_id = ?`, id).Scan(&note, &cosig)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (note == nil || !cosig.Valid)) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("couldn't read latest checkpoint of log %s: %w", id, err)
	}
	return append(note, cosig.String...), true, nil
}

// Evidence is a pair of checkpoints, both validly signed by a log, that the
// witness saw and that cannot both be views of one append-only log.
type Evidence struct {
	ID     int64  `json:"id"`
	Origin string `json:"origin"`
	// Kind is EvidenceSameSize, EvidenceInconsistent or EvidenceBadProof.
	Kind string `json:"kind"`
	// Proven is true when the two signed checkpoints with the proof (if
	// any) demonstrate the fork cryptographically; false when the log only
	// failed to prove consistency (the log may have sent a wrong proof).
	Proven bool `json:"proven"`
	// CosignedCheckpoint is the checkpoint the witness had cosigned, with
	// the log's signatures.
	CosignedCheckpoint string `json:"cosigned_checkpoint"`
	CosignedSize       uint64 `json:"cosigned_size"`
	// ConflictingCheckpoint is the refused checkpoint, as submitted.
	ConflictingCheckpoint string `json:"conflicting_checkpoint"`
	ConflictingSize       uint64 `json:"conflicting_size"`
	// OldSize and Proof are the request's old size and consistency proof.
	OldSize uint64   `json:"old_size"`
	Proof   [][]byte `json:"proof"`
	// ImpliedOldRoot is, for EvidenceInconsistent, the root of size
	// CosignedSize that the proof binds to the conflicting checkpoint's root.
	ImpliedOldRoot []byte    `json:"implied_old_root,omitempty"`
	ObservedAt     time.Time `json:"observed_at"`
}

// Bounds on the evidence kept per log. A proven record (EvidenceSameSize,
// EvidenceInconsistent) needs two checkpoints the log signed that cannot
// both be true: only the log can make one, and the first ones are what
// matters, so the first MaxProvenEvidence are kept. An unproven record
// (EvidenceBadProof) is not evidence of misbehaviour: the checkpoint is
// genuine and may well be consistent, and anyone who has it can send it
// with a garbage proof; only the latest MaxUnprovenEvidence are kept, as
// a hint for the operator (the metric counts every one).
const (
	MaxProvenEvidence   = 1000
	MaxUnprovenEvidence = 16
)

// Evidence kinds.
const (
	// EvidenceSameSize: two signed checkpoints of one size, different roots.
	EvidenceSameSize = "same-size-different-root"
	// EvidenceInconsistent: the proof hashes to the new checkpoint's root
	// but implies a different root for the cosigned size.
	EvidenceInconsistent = "inconsistent-with-cosigned"
	// EvidenceBadProof: the consistency proof does not verify at all.
	EvidenceBadProof = "consistency-proof-failed"
)

// EvidencePage returns at most limit evidence records with ids above
// after, oldest first, of origin (all origins if empty), and whether more
// follow.
func (s *Store) EvidencePage(ctx context.Context, origin string, after int64, limit int) (_ []Evidence, more bool, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, origin, kind, proven, cosigned_note, cosigned_size,
		conflicting_note, conflicting_size, old_size, proof, implied_old_root, observed_at
		FROM evidence WHERE (? = '' OR origin = ?) AND id > ? ORDER BY id LIMIT ?`, origin, origin, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("couldn't list evidence: %w", err)
	}
	defer rows.Close()
	out := []Evidence{}
	for rows.Next() {
		var (
			e                        Evidence
			proven                   int64
			cosNote, confNote        []byte
			cosSize, confSize, oldSz int64
			proof                    string
			observed                 int64
		)
		if err := rows.Scan(&e.ID, &e.Origin, &e.Kind, &proven, &cosNote, &cosSize, &confNote, &confSize,
			&oldSz, &proof, &e.ImpliedOldRoot, &observed); err != nil {
			return nil, false, fmt.Errorf("couldn't list evidence: %w", err)
		}
		e.Proven = proven != 0
		e.CosignedCheckpoint, e.ConflictingCheckpoint = string(cosNote), string(confNote)
		e.CosignedSize, e.ConflictingSize, e.OldSize = uint64(cosSize), uint64(confSize), uint64(oldSz)
		e.Proof, err = decodeProofLines(proof)
		if err != nil {
			return nil, false, fmt.Errorf("couldn't decode stored proof of evidence %d: %w", e.ID, err)
		}
		e.ObservedAt = time.Unix(observed, 0).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("couldn't list evidence: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// op is one write the committer applies. Exactly one of update and evidence
// is set.
type op struct {
	update   *stateUpdate
	evidence *Evidence
	done     chan error // buffered, receives the commit result
	// settled, if set (state updates), is closed after the commit, with
	// its result in err: other requests wait on it (see logState.pending).
	settled chan struct{}
	err     error
}

// stateUpdate is a compare-and-swap of one log's latest cosigned checkpoint:
// it applies only if the row still holds (prevSize, prevRoot).
type stateUpdate struct {
	origin            string
	prevSize, newSize uint64
	prevRoot, newRoot []byte
	note              []byte
	cosig             string
	at                int64
}

// errCASFailed reports that the stored state was not what the update was
// checked against; the whole batch is rolled back.
var errCASFailed = errors.New("stored state changed underneath the witness")

// commit applies ops in one transaction, in order, and returns when the
// transaction is durable (or failed: then nothing was applied).
func (s *Store) commit(ctx context.Context, ops []*op) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin state transaction: %w", err)
	}
	defer tx.Rollback()
	for _, o := range ops {
		switch {
		case o.update != nil:
			u := o.update
			if u.newSize > math.MaxInt64 || u.prevSize > math.MaxInt64 {
				return fmt.Errorf("couldn't store checkpoint of %q: size %d too large", u.origin, u.newSize)
			}
			// Compare-and-swap: the row must still hold the state this
			// update was checked against.
			stmt := s.updateStmt
			args := []any{int64(u.newSize), u.newRoot, u.note, u.cosig, u.at, u.origin, int64(u.prevSize), u.prevRoot}
			if u.prevRoot == nil {
				stmt = s.updateFirstStmt
				args = args[:7]
			}
			res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("couldn't store checkpoint of %q at size %d: %w", u.origin, u.newSize, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("couldn't store checkpoint of %q at size %d over size %d: %w", u.origin, u.newSize, u.prevSize, errCASFailed)
			}
		case o.evidence != nil:
			e := o.evidence
			h := sha256.Sum256([]byte(e.ConflictingCheckpoint))
			proven := 0
			if e.Proven {
				proven = 1
			}
			if e.Proven {
				// A proven fork is the log's own doing; the first
				// MaxProvenEvidence per log are kept.
				var n int64
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM evidence WHERE origin = ? AND proven = 1`, e.Origin).Scan(&n); err != nil {
					return fmt.Errorf("couldn't count evidence against %q: %w", e.Origin, err)
				}
				if n >= MaxProvenEvidence {
					continue
				}
			}
			_, err := tx.StmtContext(ctx, s.evidenceStmt).ExecContext(ctx,
				e.Origin, e.Kind, proven, []byte(e.CosignedCheckpoint), int64(e.CosignedSize),
				[]byte(e.ConflictingCheckpoint), int64(e.ConflictingSize), hex.EncodeToString(h[:]),
				int64(e.OldSize), encodeProofLines(e.Proof), e.ImpliedOldRoot, e.ObservedAt.Unix())
			if err != nil {
				return fmt.Errorf("couldn't store evidence against %q: %w", e.Origin, err)
			}
			if !e.Proven {
				// Anyone can send a genuine checkpoint with a garbage
				// proof: keep only the latest MaxUnprovenEvidence.
				if _, err := tx.ExecContext(ctx, `DELETE FROM evidence WHERE origin = ? AND proven = 0 AND id NOT IN
					(SELECT id FROM evidence WHERE origin = ? AND proven = 0 ORDER BY id DESC LIMIT ?)`,
					e.Origin, e.Origin, MaxUnprovenEvidence); err != nil {
					return fmt.Errorf("couldn't bound unproven evidence against %q: %w", e.Origin, err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit state transaction: %w", err)
	}
	return nil
}
