// Package witness is a C2SP tlog-witness: it cosigns checkpoints of any
// C2SP-conformant transparency log it is configured for (origin plus log
// verifier keys), after checking that each one is consistent with the latest
// checkpoint it cosigned for that log.
//
// # Protocol
//
// POST /add-checkpoint takes `old N`, up to 63 base64 consistency-proof
// lines, an empty line and a signed checkpoint, and answers
//
//   - 200 with the witness's tlog-cosignature/v1 signature line;
//   - 400 for a malformed request or an old size larger than the checkpoint's;
//   - 403 when no signature from a trusted key of the log verifies;
//   - 404 for an unknown origin;
//   - 409, `Content-Type: text/x.tlog.size`, body `<size>\n`, when old is not
//     the size of the latest checkpoint the witness cosigned;
//   - 422 when the consistency proof does not verify, or the checkpoint has
//     the witness's size and a different root;
//   - 413 for a body over MaxBodySize, 503 if the state could not be saved
//     (the cause is logged with a request id; the answer names only the id);
//   - 429 with Retry-After when Config.MaxInFlight requests are already
//     being worked on (the body is not read).
//
// GET /<hex SHA-256 of origin>/checkpoint returns the latest cosigned
// checkpoint with the witness's cosignature; GET
// /evidence[?origin=O][&after=ID][&limit=N] returns the fork evidence
// collected, as a JSON array, one page of at most EvidencePageMax records
// (a Link rel="next" header names the next page). Unproven records are
// bounded (MaxUnprovenEvidence per log, the latest kept), proven forks
// too (MaxProvenEvidence per log, the first kept). GET /<id>/checkpoint
// and GET / share an in-flight limit of Config.MaxInFlight (ReadLimit,
// which `keycommit witness serve` also puts GET /metrics and /version
// in), GET /evidence has its own; beyond them the answer is 429 with
// Retry-After.
//
// # State and crashes
//
// A request is parsed and its log signature verified, and the witness signs
// the checkpoint, outside any lock (a request whose old size is not the
// witness's size gets 409 before any signature work, so a stale request
// with a bad signature gets 409 rather than 403). Then, per origin, requests
// are serialised by a mutex. Under it the witness checks the request against
// the latest state, queues a compare-and-swap update (origin, old size, old
// root → new) and advances the in-memory state; then it releases the mutex
// and waits; a cosignature made for a request refused under the mutex is
// discarded. A single committer goroutine writes
// queued updates in batches, one SQLite transaction per batch (WAL,
// synchronous=FULL), and only after the commit does any waiting request get
// its cosignature. So:
//
//   - a crash before the commit loses only cosignatures no one has seen;
//   - every cosignature released is for a state on disk, and each stored
//     state was checked against the previous stored state (the CAS refuses
//     anything else), so the witness never cosigns two inconsistent
//     checkpoints, even across SIGKILL and restart;
//   - if a commit fails, every origin in the batch is reloaded from disk
//     before it is used again.
//
// A request for the checkpoint the witness already holds (old = size,
// same root, empty proof: a log re-asking for a fresh cosignature of an
// unchanged tree) changes no state, so it writes nothing: it is answered
// with a new cosignature (a new timestamp) once the state it vouches for
// is durable, waiting only if the update that made that state is still
// being committed. A log asking again and again costs a signature
// verification and a signature, and the witness's state does not grow.
package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// MaxBodySize bounds add-checkpoint request bodies. A request is at most a
// size line, 63 proof lines of 45 bytes and a checkpoint; 64 KiB leaves room
// for checkpoints with many signatures and extension lines.
const MaxBodySize = 64 << 10

// Config configures a Witness.
type Config struct {
	// Store holds the witness's state. Required. The Witness does not
	// close it.
	Store *Store
	// Signer makes the cosignatures: a tlog-cosignature signer (Ed25519
	// cosignature/v1 or ML-DSA-44) such as NewSigner returns. Signer or
	// Signers is required.
	Signer c2sp.Signer
	// VKey is the signer's verifier key, served at GET /. Optional.
	VKey string
	// Signers are further cosigners after Signer (or all of them, without
	// Signer), e.g. an ML-DSA-44 key next to an Ed25519 one, with the same
	// name: every cosigned checkpoint gets one line from each. VKeys are
	// their verifier keys, served at GET /.
	Signers []c2sp.Signer
	VKeys   []string
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Metrics, if set, receives the witness's Prometheus collectors.
	Metrics MetricsRegisterer
	// MaxBatch bounds how many updates are committed in one transaction.
	// Zero means 256.
	MaxBatch int
	// MaxInFlight bounds the add-checkpoint requests worked on at once
	// (default 256, each holding at most MaxBodySize and its parse);
	// beyond it the witness answers 429 with Retry-After before reading
	// the body. GET /evidence has a tenth of it (at least 4): a page is
	// up to EvidencePageMax records.
	MaxInFlight int
}

// Witness serves the tlog-witness protocol. Create it with New, serve its
// Handler, and Close it when done.
type Witness struct {
	store   *Store
	signers []c2sp.Signer
	vkeys   []string
	logger  *slog.Logger
	metrics *metrics

	cacheMu sync.Mutex
	cache   map[string]*logState

	addLimit, evidenceLimit, readLimit *httpguard.Limiter

	ops       chan *op
	maxBatch  int
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// logState is the in-memory view of one log. size/root/note are the latest
// accepted state, which may still be waiting for its commit.
type logState struct {
	origin    string
	verifiers []c2sp.Verifier

	mu    sync.Mutex
	size  uint64
	root  []byte // nil until the first cosignature
	note  []byte // latest cosigned checkpoint (log signatures only)
	stale atomic.Bool
	// pending is the update that made size/root the state, while it may
	// still be waiting for its commit (nil once loaded from disk). A
	// re-cosignature of that state waits for it to settle.
	pending *op
}

// New starts a witness. It does not load any state until a request needs it.
func New(cfg Config) (*Witness, error) {
	if cfg.Store == nil {
		return nil, errors.New("witness: Config.Store is required")
	}
	var signers []c2sp.Signer
	var vkeys []string
	if cfg.Signer != nil {
		signers = append(signers, cfg.Signer)
		if cfg.VKey != "" {
			vkeys = append(vkeys, cfg.VKey)
		}
	}
	signers = append(signers, cfg.Signers...)
	vkeys = append(vkeys, cfg.VKeys...)
	if len(signers) == 0 {
		return nil, errors.New("witness: Config.Signer or Config.Signers is required")
	}
	for _, s := range signers {
		if s == nil {
			return nil, errors.New("witness: nil signer in Config.Signers")
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	maxBatch := cfg.MaxBatch
	if maxBatch <= 0 {
		maxBatch = 256
	}
	inFlight := cfg.MaxInFlight
	if inFlight <= 0 {
		inFlight = 256
	}
	w := &Witness{
		addLimit:      httpguard.NewLimiter(inFlight),
		evidenceLimit: httpguard.NewLimiter(max(4, inFlight/10)),
		readLimit:     httpguard.NewLimiter(inFlight),
		store:         cfg.Store,
		signers:       signers,
		vkeys:         vkeys,
		logger:        logger,
		metrics:       m,
		cache:         map[string]*logState{},
		ops:           make(chan *op, 4*maxBatch),
		maxBatch:      maxBatch,
		closing:       make(chan struct{}),
		done:          make(chan struct{}),
	}
	go w.commitLoop()
	return w, nil
}

// Close stops the committer after the batch in progress. Requests still
// waiting fail with 503. It does not close the Store.
func (w *Witness) Close() error {
	w.closeOnce.Do(func() { close(w.closing) })
	<-w.done
	return nil
}

var errClosed = errors.New("witness is shutting down")

// commitLoop is the single writer: it takes queued ops in FIFO order, commits
// them in batches and reports the result to each op's waiter.
func (w *Witness) commitLoop() {
	defer close(w.done)
	for {
		var first *op
		select {
		case first = <-w.ops:
		case <-w.closing:
			return
		}
		batch := []*op{first}
	fill:
		for len(batch) < w.maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		start := time.Now()
		// Crash point: before Commit returns nothing in the batch is
		// durable and no waiter has been answered.
		err := w.store.commit(context.Background(), batch)
		w.metrics.commitSeconds.Observe(time.Since(start).Seconds())
		w.metrics.batchOps.Observe(float64(len(batch)))
		if err != nil {
			w.metrics.commitFailures.Inc()
			w.logger.Error("witness state commit failed; reloading affected logs", "ops", len(batch), "err", err)
			for _, o := range batch {
				if o.update != nil {
					w.invalidate(o.update.origin)
				}
			}
		}
		// After Commit: the batch is durable; answer the waiters.
		for _, o := range batch {
			if o.settled != nil {
				o.err = err
				close(o.settled)
			}
			o.done <- err
		}
	}
}

// invalidate drops a log's in-memory state so the next request reloads it.
func (w *Witness) invalidate(origin string) {
	w.cacheMu.Lock()
	if st, ok := w.cache[origin]; ok {
		st.stale.Store(true)
		delete(w.cache, origin)
	}
	w.cacheMu.Unlock()
}

// state returns the in-memory state of origin, loading it from the store on
// first use; nil if the origin is not configured.
func (w *Witness) state(ctx context.Context, origin string) (*logState, error) {
	w.cacheMu.Lock()
	st, ok := w.cache[origin]
	w.cacheMu.Unlock()
	if ok {
		return st, nil
	}
	row, err := w.store.loadLog(ctx, origin)
	if err != nil || row == nil {
		return nil, err
	}
	vs := make([]c2sp.Verifier, 0, len(row.vkeys))
	for _, k := range row.vkeys {
		v, err := c2sp.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("couldn't use stored key %q of log %q: %w", k, origin, err)
		}
		vs = append(vs, v)
	}
	st = &logState{origin: origin, verifiers: vs, size: row.size, root: row.root, note: row.note}
	w.cacheMu.Lock()
	defer w.cacheMu.Unlock()
	if cur, ok := w.cache[origin]; ok {
		return cur, nil
	}
	w.cache[origin] = st
	return st, nil
}

// Error is an add-checkpoint failure with its HTTP status. For 409, Size is
// the size of the latest checkpoint the witness cosigned.
type Error struct {
	Status int
	Size   uint64
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %v", e.Status, http.StatusText(e.Status), e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

func fail(status int, format string, args ...any) *Error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// AddCheckpoint runs the add-checkpoint protocol on a request body and
// returns the cosignature line(s) for the response, or an *Error.
func (w *Witness) AddCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	req, err := c2sp.ParseAddCheckpointRequest(body)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed add-checkpoint request: %w", err)
	}
	origin, err := c2sp.CheckpointOrigin(req.Checkpoint)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "malformed add-checkpoint request: %w", err)
	}
	st, err := w.state(ctx, origin)
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "couldn't load log state: %w", err)
	}
	if st == nil {
		return nil, fail(http.StatusNotFound, "unknown log origin %q", truncate([]byte(origin)))
	}
	// Parse the (not yet authenticated) checkpoint, for the checks that
	// need no signature: malformed (400), old > size (400), and old not
	// the witness's size (409, answered without spending a signature
	// verification on a stale request; the size is public anyway).
	n, err := c2sp.SplitNote(req.Checkpoint)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "checkpoint is not a signed note: %w", err)
	}
	cp, err := c2sp.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "signed note is not a checkpoint: %w", err)
	}
	switch {
	case cp.Origin != st.origin:
		return nil, fail(http.StatusBadRequest, "checkpoint origin %q is not %q", cp.Origin, st.origin)
	case req.OldSize > cp.Size:
		return nil, fail(http.StatusBadRequest, "old size %d is larger than the checkpoint size %d", req.OldSize, cp.Size)
	}
	st.mu.Lock()
	size, stale := st.size, st.stale.Load()
	st.mu.Unlock()
	if !stale && req.OldSize != size {
		return nil, &Error{Status: http.StatusConflict, Size: size,
			Err: fmt.Errorf("old size %d is not the witness's size %d for %q", req.OldSize, size, st.origin)}
	}

	verified, err := n.Verify(st.verifiers...)
	if err != nil {
		var invalid *c2sp.SignatureError
		switch {
		case errors.Is(err, c2sp.ErrUnverified):
			return nil, fail(http.StatusForbidden, "checkpoint has no signature from a trusted key of log %q", origin)
		case errors.As(err, &invalid):
			return nil, fail(http.StatusForbidden, "checkpoint signature by %s does not verify", invalid.Name)
		default:
			return nil, fail(http.StatusBadRequest, "checkpoint is not a valid signed note: %w", err)
		}
	}
	// The checkpoint as stored: with only its verified log signatures.
	signed := (&c2sp.Note{Text: n.Text, Sigs: verified}).Marshal()
	// Sign before taking the log's lock, to keep the serialised section
	// short. The cosignature is released only if the checks under the
	// lock pass and the new state is durable.
	full, err := c2sp.Sign(n.Text, w.signers...)
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "couldn't cosign checkpoint: %w", err)
	}
	cosig := full[len(n.Text)+1:]

	for {
		st.mu.Lock()
		if st.stale.Load() {
			st.mu.Unlock()
			if st, err = w.state(ctx, origin); err != nil || st == nil {
				return nil, fail(http.StatusServiceUnavailable, "couldn't reload log state: %v", err)
			}
			continue
		}
		break
	}
	// Under st.mu: check, queue, advance.
	if req.OldSize != st.size {
		size := st.size
		st.mu.Unlock()
		return nil, &Error{Status: http.StatusConflict, Size: size,
			Err: fmt.Errorf("old size %d is not the witness's size %d for %q", req.OldSize, size, st.origin)}
	}
	if ev, reason := w.checkConsistency(st, &cp, req, signed); reason != nil {
		var o *op
		if ev != nil {
			o = &op{evidence: ev, done: make(chan error, 1)}
			if err := w.enqueue(o); err != nil {
				st.mu.Unlock()
				return nil, fail(http.StatusServiceUnavailable, "%v", err)
			}
		}
		st.mu.Unlock()
		if o != nil {
			w.metrics.evidence.WithLabelValues(ev.Kind).Inc()
			w.logger.Warn("log checkpoint inconsistent with cosigned checkpoint",
				"origin", st.origin, "kind", ev.Kind, "proven", ev.Proven, "cosigned_size", ev.CosignedSize, "size", cp.Size)
			if err := w.wait(ctx, o); err != nil {
				w.logger.Error("couldn't store fork evidence", "origin", st.origin, "err", err)
			}
		}
		return nil, &Error{Status: http.StatusUnprocessableEntity, Err: reason}
	}
	if st.root != nil && cp.Size == st.size {
		// Re-cosigning the checkpoint the witness already holds (same
		// size, and checkConsistency found the same root and an empty
		// proof): nothing changes, so nothing is written; the fresh
		// cosignature is released once the state it vouches for is
		// durable (at once, unless the update that made it is still
		// being committed).
		pend := st.pending
		st.mu.Unlock()
		if pend != nil {
			if err := w.settled(pend); err != nil {
				return nil, fail(http.StatusServiceUnavailable, "couldn't persist witness state: %v", err)
			}
		}
		w.metrics.cosigned.Inc()
		w.metrics.recosigned.Inc()
		return cosig, nil
	}
	o := &op{
		update: &stateUpdate{
			origin:   st.origin,
			prevSize: st.size, prevRoot: st.root,
			newSize: cp.Size, newRoot: cp.Hash[:],
			note:  signed,
			cosig: string(cosig),
			at:    time.Now().Unix(),
		},
		done:    make(chan error, 1),
		settled: make(chan struct{}),
	}
	if err := w.enqueue(o); err != nil {
		st.mu.Unlock()
		return nil, fail(http.StatusServiceUnavailable, "%v", err)
	}
	st.size, st.root, st.note, st.pending = cp.Size, cp.Hash[:], signed, o
	st.mu.Unlock()

	if err := w.wait(ctx, o); err != nil {
		return nil, fail(http.StatusServiceUnavailable, "couldn't persist witness state: %v", err)
	}
	w.metrics.cosigned.Inc()
	return cosig, nil
}

// checkConsistency decides whether cp (with the request's proof) extends
// the witness's state st. It returns nil, nil if so; otherwise the reason,
// and evidence to keep when there is a previously cosigned checkpoint to
// hold it against.
func (w *Witness) checkConsistency(st *logState, cp *c2sp.Checkpoint, req *c2sp.AddCheckpointRequest, signed []byte) (*Evidence, error) {
	if cp.Size == 0 && !bytes.Equal(cp.Hash[:], rfc6962.DefaultHasher.EmptyRoot()) {
		return nil, errors.New("checkpoint of size 0 does not have the empty tree's root")
	}
	if st.root == nil {
		// Never cosigned: any checkpoint is consistent with the empty
		// view, and the proof from size 0 must be empty.
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("consistency proof from size 0 must be empty, got %d hashes", len(req.Proof))
		}
		return nil, nil
	}
	ev := func(kind string, proven bool, implied []byte) *Evidence {
		return &Evidence{
			Origin: st.origin, Kind: kind, Proven: proven,
			CosignedCheckpoint: string(st.note), CosignedSize: st.size,
			ConflictingCheckpoint: string(signed), ConflictingSize: cp.Size,
			OldSize: req.OldSize, Proof: req.Proof, ImpliedOldRoot: implied,
			ObservedAt: time.Now().UTC(),
		}
	}
	if cp.Size == st.size {
		if !bytes.Equal(cp.Hash[:], st.root) {
			return ev(EvidenceSameSize, true, nil),
				fmt.Errorf("checkpoint of size %d has a different root from the one the witness cosigned: the log forked", cp.Size)
		}
		if len(req.Proof) != 0 {
			return nil, fmt.Errorf("consistency proof between equal sizes must be empty, got %d hashes", len(req.Proof))
		}
		return nil, nil
	}
	err := proof.VerifyConsistency(rfc6962.DefaultHasher, st.size, cp.Size, req.Proof, st.root, cp.Hash[:])
	if err == nil {
		return nil, nil
	}
	// The proof failed. If it hashes to the new, log-signed root but
	// implies another root for the cosigned size, the log's signed tree
	// contains a different prefix than the one cosigned: a proven fork
	// (short of a SHA-256 collision). Otherwise the proof is merely bad.
	var mismatch proof.RootMismatchError
	if errors.As(err, &mismatch) && bytes.Equal(mismatch.ExpectedRoot, st.root) {
		implied := mismatch.CalculatedRoot
		if proof.VerifyConsistency(rfc6962.DefaultHasher, st.size, cp.Size, req.Proof, implied, cp.Hash[:]) == nil {
			return ev(EvidenceInconsistent, true, implied),
				fmt.Errorf("consistency proof shows the checkpoint of size %d extends a different tree of size %d than the one the witness cosigned: the log forked", cp.Size, st.size)
		}
	}
	return ev(EvidenceBadProof, false, nil),
		fmt.Errorf("consistency proof from size %d to %d does not verify: %v", st.size, cp.Size, err)
}

// enqueue hands an op to the committer, in order. It may block when the
// queue is full (backpressure).
func (w *Witness) enqueue(o *op) error {
	select {
	case w.ops <- o:
		return nil
	case <-w.closing:
		return errClosed
	}
}

// wait blocks until o is committed. A request whose client went away still
// waits: the op is queued and will be committed regardless.
func (w *Witness) wait(_ context.Context, o *op) error {
	select {
	case err := <-o.done:
		return err
	case <-w.done:
		select {
		case err := <-o.done:
			return err
		default:
			return errClosed
		}
	}
}

// settled blocks until the update o is committed (or failed) and
// returns its result; anyone may wait, unlike wait.
func (w *Witness) settled(o *op) error {
	select {
	case <-o.settled:
		return o.err
	case <-w.done:
		select {
		case <-o.settled:
			return o.err
		default:
			return errClosed
		}
	}
}

// ReadLimit is the in-flight limit of the GETs of Handler; a command
// mounting more GETs beside Handler (/metrics) wraps them in it too.
func (w *Witness) ReadLimit() *httpguard.Limiter { return w.readLimit }

// Handler returns the HTTP interface: POST /add-checkpoint,
// GET /<origin id>/checkpoint, GET /evidence, GET /.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /add-checkpoint", w.addLimit.Wrap(http.HandlerFunc(w.serveAddCheckpoint)))
	mux.Handle("GET /{id}/checkpoint", w.readLimit.Wrap(http.HandlerFunc(w.serveCheckpoint)))
	mux.Handle("GET /evidence", w.evidenceLimit.Wrap(http.HandlerFunc(w.serveEvidence)))
	mux.Handle("GET /{$}", w.readLimit.Wrap(http.HandlerFunc(w.serveInfo)))
	return mux
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := http.StatusOK
	defer func() {
		w.metrics.requests.WithLabelValues(strconv.Itoa(status)).Inc()
		w.metrics.requestSeconds.Observe(time.Since(start).Seconds())
	}()
	body, err := httpguard.ReadBody(rw, r, MaxBodySize)
	if err != nil {
		if errors.Is(err, httpguard.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
			http.Error(rw, fmt.Sprintf("request body larger than %d bytes", MaxBodySize), status)
			return
		}
		status = http.StatusBadRequest
		http.Error(rw, "couldn't read request body", status)
		return
	}
	cosig, err := w.AddCheckpoint(r.Context(), body)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Status: http.StatusInternalServerError, Err: err}
		}
		status = e.Status
		switch e.Status {
		case http.StatusConflict:
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", e.Size)
		case http.StatusInternalServerError, http.StatusServiceUnavailable:
			// The cause stays in the witness's log.
			id := httpguard.RequestID()
			w.logger.Error("add-checkpoint failed", "status", e.Status, "request_id", id, "err", e.Err)
			http.Error(rw, fmt.Sprintf("%s (request id %s)", http.StatusText(e.Status), id), e.Status)
		default:
			w.logger.Debug("add-checkpoint refused", "status", e.Status, "err", e.Err)
			http.Error(rw, e.Err.Error(), e.Status)
		}
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Write(cosig)
}

func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) != 64 || strings.ToLower(id) != id {
		http.Error(rw, "log id must be the lowercase hex SHA-256 of the origin", http.StatusNotFound)
		return
	}
	cp, ok, err := w.store.LatestCheckpoint(r.Context(), id)
	if err != nil {
		rid := httpguard.RequestID()
		w.logger.Error("couldn't read latest checkpoint", "id", id, "request_id", rid, "err", err)
		http.Error(rw, "couldn't read latest checkpoint (request id "+rid+")", http.StatusInternalServerError)
		return
	}
	if !ok {
		http.Error(rw, "no cosigned checkpoint for this log", http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Write(cp)
}

// EvidencePageMax is the largest page of GET /evidence.
const EvidencePageMax = 100

// serveEvidence answers GET /evidence[?origin=O][&after=ID][&limit=N]: a
// JSON array of at most N (default and maximum EvidencePageMax) records
// with ids above ID, oldest first; while more follow, a Link header
// names the next page (rel="next", after = the last id sent).
func (w *Witness) serveEvidence(rw http.ResponseWriter, r *http.Request) {
	afterS, limit, err := httpguard.ParsePage(r, EvidencePageMax)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var after int64
	if afterS != "" {
		if after, err = strconv.ParseInt(afterS, 10, 64); err != nil || after < 0 {
			http.Error(rw, fmt.Sprintf("after=%q: want an evidence id", truncate([]byte(afterS))), http.StatusBadRequest)
			return
		}
	}
	ev, more, err := w.store.EvidencePage(r.Context(), r.URL.Query().Get("origin"), after, limit)
	if err != nil {
		id := httpguard.RequestID()
		w.logger.Error("couldn't list evidence", "request_id", id, "err", err)
		http.Error(rw, "couldn't list evidence (request id "+id+")", http.StatusInternalServerError)
		return
	}
	if more {
		httpguard.SetNext(rw, r, strconv.FormatInt(ev[len(ev)-1].ID, 10))
	}
	rw.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	enc.Encode(ev)
}

func (w *Witness) serveInfo(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(rw, "C2SP tlog-witness %s\n", w.signers[0].Name())
	for _, k := range w.vkeys {
		fmt.Fprintf(rw, "vkey %s\n", k)
	}
}
