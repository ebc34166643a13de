package trillianstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "keycommit.example/log/test"

type logKey struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newKey(t testing.TB) logKey {
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return logKey{s, v, vkey}
}

// frontend is one keycommit frontend as production runs it: a Store with
// a SQLite cache, a Frontend over it, and the log's HTTP API on loopback,
// where the other frontends forward submissions while it is the writer.
type frontend struct {
	store *trillianstore.Store
	fe    *trillianstore.Frontend
	url   string
	reg   *prometheus.Registry
	srv   *http.Server
	once  sync.Once
	// posts counts the POST requests it was sent, by path.
	posts struct{ submit, forward atomic.Int64 }
}

// testLease is the writer's lease in tests.
const testLease = 500 * time.Millisecond

func openDB(t testing.TB, env *trilliantest.Env) *sql.DB {
	t.Helper()
	db, err := trillianstore.OpenDB(context.Background(), env.MySQLURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openStore(t testing.TB, env *trilliantest.Env, tree int64, k logKey, reg prometheus.Registerer) *trillianstore.Store {
	t.Helper()
	return openStoreFollow(t, env, tree, k, reg, 20*time.Millisecond)
}

func openStoreFollow(t testing.TB, env *trilliantest.Env, tree int64, k logKey, reg prometheus.Registerer, follow time.Duration) *trillianstore.Store {
	t.Helper()
	ctx := context.Background()
	cache, err := sqlitestore.Create(ctx, filepath.Join(t.TempDir(), "trillian-cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := trillianstore.Open(ctx, trillianstore.Config{
		Client: env.Log, DB: openDB(t, env), TreeID: tree, Cache: cache, Verifier: k.verifier,
		FollowInterval: follow, Logger: testLogger(t), Registerer: reg,
	})
	if err != nil {
		t.Fatalf("couldn't open the Trillian store: %v\n%s", err, env.Logs())
	}
	return st
}

// withCosigner makes a frontend's sequencer store every checkpoint it
// publishes as cosigned (a witness hook that adds no cosignature), so
// that tests see the shared cosigned checkpoint move.
func withCosigner(c *sequencer.Config) {
	c.Witness = func(ctx context.Context, signed []byte) ([]byte, error) { return signed, nil }
}

func newFrontend(t testing.TB, env *trilliantest.Env, tree int64, k logKey, opts ...func(*sequencer.Config)) *frontend {
	t.Helper()
	return newFrontendConfig(t, env, tree, k, frontendOpts{lease: testLease, follow: 20 * time.Millisecond}, opts...)
}

// frontendOpts are a frontend's lease and follow interval, and how many
// forwarded batches it has in flight (0: the default).
type frontendOpts struct {
	lease, follow    time.Duration
	forwardsInFlight int
}

// frontendsMade numbers the frontends of each test, for profile labels.
var frontendsMade sync.Map // test name -> *atomic.Int64

func newFrontendConfig(t testing.TB, env *trilliantest.Env, tree int64, k logKey, fo frontendOpts, opts ...func(*sequencer.Config)) *frontend {
	t.Helper()
	// Every goroutine the frontend starts carries the pprof label
	// frontend=<test>#<n> (n from 1, the first one made being the
	// writer), so that a CPU profile (-cpuprofile) tells the frontends
	// apart: go tool pprof -tagfocus / -tags.
	n, _ := frontendsMade.LoadOrStore(t.Name(), new(atomic.Int64))
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("frontend", fmt.Sprintf("%s#%d", t.Name(), n.(*atomic.Int64).Add(1)))))
	defer pprof.SetGoroutineLabels(context.Background())
	lease := fo.lease
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	st := openStoreFollow(t, env, tree, k, reg, fo.follow)
	url := "http://" + ln.Addr().String()
	cfg := sequencer.Config{Backend: st, Signer: k.signer, Verifier: k.verifier, OriginControl: issuertest.AssumeControl, Registerer: reg, Logger: testLogger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	fe, err := trillianstore.NewFrontend(context.Background(), cfg, st, trillianstore.FrontendConfig{Advertise: url, VKey: k.vkey, Lease: lease, ForwardsInFlight: fo.forwardsInFlight})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Reader: st, Log: fe, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f := &frontend{store: st, fe: fe, url: url, reg: reg}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case api.PathSubmit:
				f.posts.submit.Add(1)
			case api.PathForward:
				f.posts.forward.Add(1)
			}
		}
		h.ServeHTTP(w, r)
	})}
	go f.srv.Serve(ln)
	t.Cleanup(f.close)
	return f
}

// close stops f gracefully (idempotent, and a no-op after crash).
func (f *frontend) close() {
	f.once.Do(func() {
		f.srv.Close()
		f.fe.Close()
		f.store.Close()
	})
}

// crash stops f as kill -9 leaves it for the others: no more answers, no
// more writes or renewals, and its lease stays until it expires.
func (f *frontend) crash() {
	f.once.Do(func() {
		f.srv.Close()
		f.fe.Crash()
	})
}

// newLog starts Trillian, creates a tree and initializes the log in it.
func newLog(t testing.TB) (*trilliantest.Env, int64, logKey) {
	t.Helper()
	env := trilliantest.Start(t, trilliantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tree, err := env.CreateTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	initLog(t, env, tree, k)
	return env, tree, k
}

// initLog writes entry 0 of the log into tree.
func initLog(t testing.TB, env *trilliantest.Env, tree int64, k logKey) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := openStore(t, env, tree, k, nil)
	if ok, err := st.Acquire(ctx, "init", "", testLease); err != nil || !ok {
		t.Fatalf("couldn't take the lease to initialize the log: %v, %v", ok, err)
	}
	if _, err := sequencer.Init(ctx, sequencer.Config{Backend: st, Signer: k.signer, Verifier: k.verifier, OriginControl: issuertest.AssumeControl}); err != nil {
		t.Fatalf("couldn't initialize the log: %v\n%s", err, env.Logs())
	}
	st.Close()
}

func submit(t testing.TB, f *frontend, sub *schema.Submission) *sequencer.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := f.fe.Submit(ctx, sub)
	if err != nil {
		t.Fatalf("submit %s for %s: %v", sub.Kind, sub.Issuer, err)
	}
	return res
}

func checkResult(t testing.TB, k logKey, res *sequencer.Result) {
	t.Helper()
	c, _, err := checkpoint.Open(res.Checkpoint, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != res.Size {
		t.Fatalf("checkpoint size %d, result says %d", c.Size, res.Size)
	}
	hashes := make([][]byte, len(res.Proof))
	for i, h := range res.Proof {
		hashes[i] = h[:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, res.Index, c.Size, res.LeafHash[:], hashes, c.Hash[:]); err != nil {
		t.Fatalf("inclusion proof of %d in %d: %v", res.Index, c.Size, err)
	}
}

// TestRoundTrip submits through one frontend and reads everything back
// through a second one that only follows the tree.
func TestRoundTrip(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontend(t, env, tree, k)
	var issuers []*issuertest.Issuer
	for i := range 3 {
		is := issuertest.Numbered(t, i)
		res := submit(t, a, is.Register(t))
		checkResult(t, k, res)
		is.Logged(res.LeafHash)
		issuers = append(issuers, is)
	}
	res := submit(t, a, issuers[1].Commit(t, 2, time.Now()))
	checkResult(t, k, res)

	b := newFrontend(t, env, tree, k)
	ctx := context.Background()
	if err := b.store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	na, cpa, err := a.store.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nb, cpb, err := b.store.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if na != nb || string(cpa) != string(cpb) {
		t.Fatalf("frontends disagree: %d %q vs %d %q", na, cpa, nb, cpb)
	}
	// The follower's tiles prove the entry, and tlog verifies them.
	c, _, err := checkpoint.Open(cpb, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(c.Size), Hash: c.Hash}, tileReader{ctx, b.store})
	p, err := tlog.ProveRecord(int64(c.Size), int64(res.Index), thr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, int64(c.Size), c.Hash, int64(res.Index), res.LeafHash); err != nil {
		t.Fatal(err)
	}
	// Key set and issuer history are served by the follower too.
	if ks, err := b.store.KeySet(ctx); err != nil || ks.Index != res.Index+1 {
		t.Fatalf("follower's key set: %+v, %v (want index %d)", ks, err, res.Index+1)
	}
	if idx, err := b.store.IssuerEntries(ctx, issuers[1].Origin); err != nil || len(idx) != 2 {
		t.Fatalf("follower's issuer history: %v, %v", idx, err)
	}
}

type tileReader struct {
	ctx context.Context
	r   storage.Reader
}

func (tr tileReader) Height() int { return tiles.Height }
func (tr tileReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		d, err := tr.r.Tile(tr.ctx, t.L, t.N)
		if err != nil {
			return nil, err
		}
		out[i] = d[:t.W*tlog.HashSize]
	}
	return out, nil
}
func (tr tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// TestConcurrentRotationsThreeFrontends: 50 concurrent rotations for one
// issuer, spread over three frontends (the writer and two that forward
// to it) and released together by a start barrier, admit exactly one;
// the others are refused by the policy's prev rule. Mutation (named, not
// tried): let a frontend that is not the writer sequence submissions
// itself (Frontend.Submit without forwarding), and several rotations are
// admitted or the writes are fenced.
func TestConcurrentRotationsThreeFrontends(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontend(t, env, tree, k)
	b := newFrontend(t, env, tree, k)
	c := newFrontend(t, env, tree, k)
	is := issuertest.New(t, "https://rotating.example")
	is.Logged(submit(t, a, is.Register(t)).LeafHash)
	now := time.Now()
	subs := make([]*schema.Submission, 50)
	for i := range subs {
		subs[i] = is.Commit(t, 1, now) // same prev, different ids and keys
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []*sequencer.Result
	rules := map[string]int{}
	start := make(chan struct{})
	for i, sub := range subs {
		f := []*frontend{a, b, c}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := f.fe.Submit(ctx, sub)
			mu.Lock()
			defer mu.Unlock()
			var re *policy.RejectError
			switch {
			case err == nil:
				admitted = append(admitted, res)
			case errors.As(err, &re):
				rules[re.Rule]++
			default:
				t.Errorf("submission %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(admitted) != 1 {
		t.Fatalf("%d rotations admitted, want exactly 1 (refusals by rule: %v)", len(admitted), rules)
	}
	if rules[policy.RulePrev] != 49 {
		t.Errorf("refusals by rule %v, want 49 by %q", rules, policy.RulePrev)
	}
	checkResult(t, k, admitted[0])
	replayAll(t, env, tree, k)
}

// TestConcurrentKeyReuseTwoFrontends: two issuers commit the same key at
// once through two frontends (all 12 submissions released together by a
// start barrier); exactly one of each pair is admitted (a cross-issuer
// rule, which leaf identities alone could not enforce). Mutation (named,
// not tried): let the frontend that is not the writer sequence
// submissions itself against its own policy view instead of forwarding
// them (Frontend.Submit), and both of a pair are admitted (were its
// writes not fenced).
func TestConcurrentKeyReuseTwoFrontends(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontend(t, env, tree, k)
	b := newFrontend(t, env, tree, k)
	const pairs = 6
	now := time.Now()
	var subs [2][]*schema.Submission
	for p := range pairs {
		x, y := issuertest.Numbered(t, 2*p), issuertest.Numbered(t, 2*p+1)
		x.Logged(submit(t, a, x.Register(t)).LeafHash)
		y.Logged(submit(t, b, y.Register(t)).LeafHash)
		c := issuertest.Commitment(t, 1, 1, now.Add(30*24*time.Hour))
		subs[0] = append(subs[0], x.Sign(t, schema.KindKeyCommitment, &schema.KeyCommitment{PST: c}))
		subs[1] = append(subs[1], y.Sign(t, schema.KindKeyCommitment, &schema.KeyCommitment{PST: c}))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([][2]error, pairs)
	for p := range pairs {
		for side, f := range []*frontend{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				_, results[p][side] = f.fe.Submit(ctx, subs[side][p])
			}()
		}
	}
	close(start)
	wg.Wait()
	for p, r := range results {
		ok := 0
		for _, err := range r {
			var re *policy.RejectError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &re) && re.Rule == policy.RuleKeyReuse:
			default:
				t.Errorf("pair %d: unexpected error %v", p, err)
			}
		}
		if ok != 1 {
			t.Errorf("pair %d: %d of 2 commitments of one key admitted, want 1 (%v)", p, ok, r)
		}
	}
	replayAll(t, env, tree, k)
}

// replayAll reads every leaf straight from Trillian, replays the policy in
// log order (every entry must be admitted), recomputes the root and checks
// it against Trillian's.
func replayAll(t testing.TB, env *trilliantest.Env, tree int64, k logKey) {
	t.Helper()
	ctx := context.Background()
	db := openDB(t, env)
	var shared uint64
	if err := db.QueryRowContext(ctx, "SELECT Size FROM KeycommitLog WHERE TreeId=?", tree).Scan(&shared); err != nil {
		t.Fatal(err)
	}
	waitIntegrated(t, env, tree, shared)
	r, err := trillianstore.LatestRoot(ctx, env.Log, tree)
	if err != nil {
		t.Fatal(err)
	}
	st := policy.NewLogState(origin)
	var hashes []tlog.Hash
	for start := uint64(0); start < r.Size; {
		resp, err := env.Log.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: tree, StartIndex: int64(start), Count: int64(r.Size - start)})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range resp.Leaves {
			e, err := schema.ParseEntry(l.LeafValue)
			if err != nil {
				t.Fatalf("leaf %d: %v", start, err)
			}
			if d := policy.Evaluate(st, e, start); !d.Accept {
				t.Fatalf("leaf %d fails policy replay: %v", start, d.Err())
			}
			h := tiles.LeafHash(l.LeafValue)
			if err := st.Apply(e, start, h); err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, h)
			start++
		}
	}
	app, err := tiles.NewAppender(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := app.Append(hashes)
	if err != nil {
		t.Fatal(err)
	}
	if u.Root != r.Hash {
		t.Fatalf("replayed root %x, Trillian's %x", u.Root[:], r.Hash[:])
	}
}

// TestSignerKilledDuringBurst kills Trillian's signer while a stream of
// submissions is in flight (it asserts some were), restarts it, and
// checks that every acknowledged entry is in the tree at its index and
// that Trillian's tree, once the signer is back, has the root of the
// leaves replayed through the policy. The frontend's writes do not wait
// for the signer: they are durable when their MariaDB transaction
// commits, and Trillian integrates them when it is back.
func TestSignerKilledDuringBurst(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontend(t, env, tree, k)
	const clients, perClient = 8, 6
	type ack struct {
		idx  uint64
		leaf tlog.Hash
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	killed := make(chan struct{})
	var firstAcks sync.WaitGroup
	firstAcks.Add(clients)
	start := make(chan struct{})
	for c := range clients {
		is := issuertest.Numbered(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perClient {
				sub := is.Register(t) // the first registers, the others renew: each extends the issuer's history
				inFlight.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				res, err := a.fe.Submit(ctx, sub)
				cancel()
				inFlight.Add(-1)
				if err != nil {
					t.Errorf("client %d submission %d: %v", c, i, err)
					return
				}
				is.Logged(res.LeafHash)
				mu.Lock()
				acks = append(acks, ack{res.Index, res.LeafHash})
				mu.Unlock()
				if i == 0 {
					firstAcks.Done()
					<-killed
				}
			}
		}()
	}
	close(start)
	firstAcks.Wait()
	close(killed) // the clients go on submitting...
	for inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	atKill := inFlight.Load()
	env.KillSigner() // ...and the signer dies under them
	if atKill == 0 {
		t.Fatal("no submission was in flight when the signer was killed")
	}
	t.Logf("%d submissions in flight when the signer was killed", atKill)
	time.Sleep(300 * time.Millisecond)
	if err := env.StartSigner(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acks) != clients*perClient {
		t.Fatalf("%d acknowledgements, want %d", len(acks), clients*perClient)
	}
	waitIntegrated(t, env, tree, a.store.Size())
	ctx := context.Background()
	for _, a := range acks {
		resp, err := env.Log.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: tree, StartIndex: int64(a.idx), Count: 1})
		if err != nil || len(resp.Leaves) != 1 {
			t.Fatalf("acknowledged entry %d: %v", a.idx, err)
		}
		if got := tiles.LeafHash(resp.Leaves[0].LeafValue); got != a.leaf {
			t.Fatalf("entry %d has leaf hash %x, acknowledged %x", a.idx, got[:], a.leaf[:])
		}
	}
	replayAll(t, env, tree, k)
}

// waitIntegrated waits until Trillian's signer has integrated size leaves.
func waitIntegrated(t testing.TB, env *trilliantest.Env, tree int64, size uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := trillianstore.LatestRoot(context.Background(), env.Log, tree)
		if err == nil && r.Size >= size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Trillian did not integrate %d leaves within a minute (%v, %v)\n%s", size, r, err, env.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger logs warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
