package sequencer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "keycommit.example/log/test"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testLog struct {
	cfg   Config
	clock *clock
	seq   *Sequencer
}

func newConfig(t testing.TB, b storage.Backend) (Config, *clock) {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	c := &clock{t: t0}
	return Config{Backend: b, Signer: s, Verifier: v, Clock: c.Now, OriginControl: issuertest.AssumeControl}, c
}

func newLog(t testing.TB, b storage.Backend) *testLog {
	t.Helper()
	cfg, c := newConfig(t, b)
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatalf("Init: %v", err)
	}
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { seq.Close() })
	return &testLog{cfg: cfg, clock: c, seq: seq}
}

func (l *testLog) restart(t testing.TB) {
	t.Helper()
	l.seq.Close()
	seq, err := New(context.Background(), l.cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { seq.Close() })
	l.seq = seq
}

// verifyResult checks everything a submitter is handed.
func verifyResult(t testing.TB, v note.Verifier, r *Result) checkpoint.Checkpoint {
	t.Helper()
	c, _, err := checkpoint.Open(r.Checkpoint, v)
	if err != nil {
		t.Fatalf("result checkpoint: %v", err)
	}
	if c.Size != r.Size || r.Index >= r.Size {
		t.Fatalf("index %d, size %d, checkpoint size %d", r.Index, r.Size, c.Size)
	}
	if tiles.LeafHash(r.Entry) != r.LeafHash {
		t.Fatal("leaf hash is not the hash of the entry")
	}
	if _, err := schema.ParseEntry(r.Entry); err != nil {
		t.Fatalf("logged entry doesn't parse: %v", err)
	}
	var p [][]byte
	for i := range r.Proof {
		p = append(p, r.Proof[i][:])
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, r.Size, r.LeafHash[:], p, c.Hash[:]); err != nil {
		t.Fatalf("inclusion proof of %d in %d: %v", r.Index, r.Size, err)
	}
	return c
}

func submit(t testing.TB, l *testLog, is *issuertest.Issuer, sub *schema.Submission) *Result {
	t.Helper()
	r, err := l.seq.Submit(context.Background(), sub)
	if err != nil {
		t.Fatalf("Submit %s for %s: %v", sub.Kind, sub.Issuer, err)
	}
	verifyResult(t, l.cfg.Verifier, r)
	is.Logged(r.LeafHash)
	return r
}

func entryAt(t testing.TB, b storage.Reader, i uint64) *schema.Entry {
	t.Helper()
	es, err := b.Entries(context.Background(), i, i+1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := schema.ParseEntry(es[0])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestInitAndSubmit(t *testing.T) {
	b := storage.NewMemory()
	l := newLog(t, b)
	ctx := context.Background()
	if e := entryAt(t, b, 0); e.Kind != schema.KindPolicyParams {
		t.Fatalf("entry 0 is %s, want policy_params", e.Kind)
	}
	is := issuertest.New(t, "https://a.example")
	r := submit(t, l, is, is.Register(t))
	if r.Index != 1 || r.Size != 2 {
		t.Fatalf("registration at %d in %d", r.Index, r.Size)
	}
	if e := entryAt(t, b, 1); e.Time != t0.UnixMilli() || e.Issuer != is.Origin {
		t.Fatalf("entry 1: time %d issuer %s", e.Time, e.Issuer)
	}
	l.clock.Set(t0.Add(time.Hour))
	r = submit(t, l, is, is.Commit(t, 2, l.clock.Now()))
	if r.Index != 2 || r.Size != 4 {
		t.Fatalf("commitment at %d in %d, want 2 in 4 (with a snapshot)", r.Index, r.Size)
	}
	snap := entryAt(t, b, 3)
	if snap.Kind != schema.KindSnapshot {
		t.Fatalf("entry 3 is %s, want snapshot", snap.Kind)
	}
	ks, err := b.KeySet(ctx)
	if err != nil || ks.Index != 3 {
		t.Fatalf("key set %+v, %v", ks, err)
	}
	parsed, err := schema.ParseKeySet(ks.Data)
	if err != nil || len(parsed.PST) != 1 {
		t.Fatalf("key set %s: %v", ks.Data, err)
	}
	body, _ := snap.ParsedBody()
	root, _ := parsed.Root()
	if s := body.(*schema.Snapshot); string(s.Root) != string(root) || s.Digest != nil {
		t.Fatalf("snapshot %+v does not commit to the stored key set's root %x (and nothing else)", s, root)
	}
	idx, err := b.IssuerEntries(ctx, is.Origin)
	if err != nil || fmt.Sprint(idx) != "[1 2]" {
		t.Fatalf("issuer entries %v, %v", idx, err)
	}
	st, ok := l.seq.Issuer(is.Origin)
	if !ok || st.LastIndex != 2 || st.CommitmentIndex != 2 {
		t.Fatalf("issuer state %+v", st)
	}
	if got, _ := l.seq.Checkpoint(); got != 4 {
		t.Fatalf("checkpoint size %d", got)
	}
}

func TestRejectionsLogNothing(t *testing.T) {
	b := storage.NewMemory()
	l := newLog(t, b)
	is := issuertest.New(t, "https://a.example")
	other := issuertest.New(t, "https://b.example")
	ctx := context.Background()

	unregistered := is.Commit(t, 1, t0)
	badSig := other.Register(t)
	badSig.Sig[0] ^= 1
	badSigDry := other.DryRun(t, other.Register(t))
	badSigDry.Sig[0] ^= 1
	for _, tc := range []struct {
		name     string
		sub, dry *schema.Submission
		rule     string
	}{
		{"unregistered", unregistered, is.DryRun(t, unregistered), policy.RuleRegistration},
		{"bad signature", badSig, badSigDry, policy.RuleSignature},
	} {
		before, _ := l.seq.Checkpoint()
		if d := l.seq.Check(ctx, tc.dry); d.Accept || d.Rule != tc.rule {
			t.Errorf("%s: Check = %+v, want rule %s", tc.name, d, tc.rule)
		}
		if d := l.seq.Check(ctx, tc.sub); d.Accept || d.Rule != policy.RuleLogBinding {
			t.Errorf("%s: Check of a statement that is not a dry run = %+v, want rule log-binding", tc.name, d)
		}
		_, err := l.seq.Submit(ctx, tc.sub)
		var re *policy.RejectError
		if !errors.As(err, &re) || re.Rule != tc.rule {
			t.Errorf("%s: Submit error %v, want rule %s", tc.name, err, tc.rule)
		}
		if after, _ := l.seq.Checkpoint(); after != before {
			t.Errorf("%s: tree grew from %d to %d", tc.name, before, after)
		}
	}
	submit(t, l, is, is.Register(t))
	stale := is.Commit(t, 1, t0)
	stale.Prev = nil
	var re *policy.RejectError
	if _, err := l.seq.Submit(ctx, stale); !errors.As(err, &re) || re.Rule != policy.RulePrev {
		t.Fatalf("submission with a stale prev: %v", err)
	}
	if n, _ := l.seq.Checkpoint(); n != 2 {
		t.Fatalf("tree size %d, want 2", n)
	}
}

// TestConcurrentSubmitters: 64 registrations submitted at once (a start
// barrier, start, releases them together, so that they share batches) get
// 64 distinct indexes, each holding its own issuer's entry. Mutation
// (tried): give every entry of a batch the batch's first index (idx :=
// b.start in Sequencer.admit, without + len(b.stored)): the submitters
// after the first of a batch fail ("entry evaluated at index 4 but the log
// has 5 entries"); were that check gone too, "submitters … both got
// index".
func TestConcurrentSubmitters(t *testing.T) {
	b := storage.NewMemory()
	l := newLog(t, b)
	const n = 64
	issuers := make([]*issuertest.Issuer, n)
	subs := make([]*schema.Submission, n)
	for i := range issuers {
		issuers[i] = issuertest.Numbered(t, i)
		subs[i] = issuers[i].Register(t)
	}
	results := make([]*Result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := l.seq.Submit(context.Background(), subs[i])
			if err != nil {
				t.Errorf("submitter %d: %v", i, err)
				return
			}
			results[i] = r
		}()
	}
	close(start)
	wg.Wait()
	seen := map[uint64]int{}
	for i, r := range results {
		if r == nil {
			t.FailNow()
		}
		verifyResult(t, l.cfg.Verifier, r)
		if j, dup := seen[r.Index]; dup {
			t.Fatalf("submitters %d and %d both got index %d", i, j, r.Index)
		}
		seen[r.Index] = i
		got := entryAt(t, b, r.Index)
		if got.Issuer != issuers[i].Origin {
			t.Fatalf("entry %d is %s's, want %s's", r.Index, got.Issuer, issuers[i].Origin)
		}
	}
	if size, _ := l.seq.Checkpoint(); size != n+1 {
		t.Fatalf("tree size %d, want %d", size, n+1)
	}
}

func TestRestartContinues(t *testing.T) {
	b := storage.NewMemory()
	l := newLog(t, b)
	is := issuertest.New(t, "https://a.example")
	submit(t, l, is, is.Register(t))
	r1 := submit(t, l, is, is.Commit(t, 1, t0))
	c1, _, _ := checkpoint.Open(r1.Checkpoint, l.cfg.Verifier)
	l.restart(t)
	// The replayed state knows the issuer and its prev.
	l.clock.Set(t0.Add(61 * 24 * time.Hour))
	r2 := submit(t, l, is, is.Commit(t, 1, l.clock.Now()))
	c2 := verifyResult(t, l.cfg.Verifier, r2)
	pr := tiles.HashReader(func(tl tlog.Tile) ([]byte, error) { return b.Tile(context.Background(), tl.L, tl.N) })
	tp, err := tlog.ProveTree(int64(c2.Size), int64(c1.Size), pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, int64(c2.Size), c2.Hash, int64(c1.Size), c1.Hash); err != nil {
		t.Fatalf("checkpoint after restart is not consistent with the one before: %v", err)
	}
}

// TestClockNeverGoesBack: while the clock reads earlier than the last
// entry, submissions are refused with a ClockError (time is neither frozen
// nor invented) and nothing is logged; entry times never decrease, also
// after a restart (the last time is recovered from storage).
func TestClockNeverGoesBack(t *testing.T) {
	b := storage.NewMemory()
	l := newLog(t, b)
	var last int64
	for i := 0; i < 6; i++ {
		// The clock jumps back and forth.
		l.clock.Set(t0.Add(time.Duration((i%3)*-5+i) * time.Minute))
		is := issuertest.Numbered(t, i)
		r, err := l.seq.Submit(context.Background(), is.Register(t))
		behind := l.clock.Now().UnixMilli() < last
		var ce *ClockError
		switch {
		case behind && !errors.As(err, &ce):
			t.Fatalf("clock behind the last entry: %v, want a ClockError", err)
		case behind && !strings.Contains(err.Error(), "behind its last entry"):
			t.Fatalf("refusal %q does not say why", err)
		case behind:
			continue
		case err != nil:
			t.Fatalf("submission %d: %v", i, err)
		}
		e := entryAt(t, b, r.Index)
		if e.Time < last || e.Time != l.clock.Now().UnixMilli() {
			t.Fatalf("entry %d time %d, last %d, clock %d", r.Index, e.Time, last, l.clock.Now().UnixMilli())
		}
		last = e.Time
	}
	size, _ := l.seq.Checkpoint()
	l.restart(t)
	l.clock.Set(t0.Add(-time.Hour))
	is := issuertest.Numbered(t, 99)
	var ce *ClockError
	if _, err := l.seq.Submit(context.Background(), is.Register(t)); !errors.As(err, &ce) {
		t.Fatalf("after restart with the clock behind: %v, want a ClockError", err)
	}
	if s, _ := l.seq.Checkpoint(); s != size {
		t.Fatalf("tree grew from %d to %d while the clock was behind", size, s)
	}
	l.clock.Set(time.UnixMilli(last))
	if r := submit(t, l, is, is.Register(t)); entryAt(t, b, r.Index).Time != last {
		t.Fatalf("at the last entry's time: entry dated %d, want %d", entryAt(t, b, r.Index).Time, last)
	}
}

func TestInitRefusals(t *testing.T) {
	b := storage.NewMemory()
	cfg, _ := newConfig(t, b)
	if _, err := New(context.Background(), cfg); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("New on an empty backend: %v", err)
	}
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(context.Background(), cfg); err == nil {
		t.Fatal("Init over an existing log succeeded")
	}
	other, _ := newConfig(t, b) // another key
	if _, err := New(context.Background(), other); err == nil {
		t.Fatal("New with another log key accepted the stored checkpoint")
	}
}

// faulty fails Append on demand, before or after the inner backend
// stores the batch.
type faulty struct {
	storage.Backend
	mode atomic.Int32 // 0 ok, 1 fail before persisting, 2 fail after
}

func (f *faulty) Append(ctx context.Context, b *storage.Batch) error {
	switch f.mode.Load() {
	case 1:
		return errors.New("injected failure before persist")
	case 2:
		if err := f.Backend.Append(ctx, b); err != nil {
			return err
		}
		return errors.New("injected failure after persist")
	}
	return f.Backend.Append(ctx, b)
}

func TestSequenceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    int32
		durable bool
	}{
		{"before persist", 1, false},
		{"after persist", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := storage.NewMemory()
			f := &faulty{Backend: mem}
			l := newLog(t, f)
			a := issuertest.New(t, "https://a.example")
			submit(t, l, a, a.Register(t))
			sizeBefore, cpBefore := l.seq.Checkpoint()

			f.mode.Store(tc.mode)
			sub := a.Commit(t, 1, t0)
			if _, err := l.seq.Submit(context.Background(), sub); err == nil {
				t.Fatal("Submit succeeded although storage failed")
			}
			if size, _ := l.seq.Checkpoint(); size != sizeBefore {
				t.Fatalf("published size %d after a failed append, want %d", size, sizeBefore)
			}
			stored, _, _ := mem.Checkpoint(context.Background())
			if (stored > sizeBefore) != tc.durable {
				t.Fatalf("stored size %d (before %d), durable=%v", stored, sizeBefore, tc.durable)
			}

			f.mode.Store(0)
			// The sequencer rebuilt its state from storage: another issuer
			// submits fine, and a's retry is decided against what is durable.
			b := issuertest.New(t, "https://b.example")
			r := submit(t, l, b, b.Register(t))
			if r.Index != stored {
				t.Fatalf("next entry at %d, want %d", r.Index, stored)
			}
			_, err := l.seq.Submit(context.Background(), sub)
			if tc.durable {
				var re *policy.RejectError
				if !errors.As(err, &re) || re.Rule != policy.RulePrev {
					t.Fatalf("retry of a durable entry: %v, want a prev refusal", err)
				}
			} else if err != nil {
				t.Fatalf("retry after a failed append: %v", err)
			}
			// Every checkpoint is consistent with the one before the failure.
			cb, _, _ := checkpoint.Open(cpBefore, l.cfg.Verifier)
			size, cp := l.seq.Checkpoint()
			ca, _, _ := checkpoint.Open(cp, l.cfg.Verifier)
			pr := tiles.HashReader(func(tl tlog.Tile) ([]byte, error) { return mem.Tile(context.Background(), tl.L, tl.N) })
			tp, err := tlog.ProveTree(int64(size), int64(sizeBefore), pr)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(tp, int64(ca.Size), ca.Hash, int64(cb.Size), cb.Hash); err != nil {
				t.Fatalf("inconsistent after failure: %v", err)
			}
		})
	}
}

func TestWitnessHook(t *testing.T) {
	b := storage.NewMemory()
	cfg, _ := newConfig(t, b)
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var calls atomic.Int32
	wskey, _, _ := checkpoint.GenerateKey("witness.example")
	ws, _ := note.NewSigner(wskey)
	cfg.Witness = func(ctx context.Context, signed []byte) ([]byte, error) {
		if calls.Add(1) == 1 {
			// The first call hangs until released: sequencing must go on.
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return nil, errors.New("witness unavailable")
		}
		n, err := note.Open(signed, note.VerifierList(cfg.Verifier))
		if err != nil {
			return nil, err
		}
		return note.Sign(n, ws) // adds a second signature line
	}
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	for i := 0; i < 5; i++ {
		is := issuertest.Numbered(t, i)
		if _, err := seq.Submit(context.Background(), is.Register(t)); err != nil {
			t.Fatalf("submission %d while the witness hook hangs: %v", i, err)
		}
	}
	if _, _, err := b.Cosigned(context.Background()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("cosigned checkpoint stored while the hook hangs: %v", err)
	}
	close(release)
	// The hook is now called with the latest checkpoint (size 6).
	for {
		size, cos, err := b.Cosigned(context.Background())
		if err == nil && size == 6 {
			n, err := note.Open(cos, note.VerifierList(cfg.Verifier))
			if err != nil || len(n.Sigs)+len(n.UnverifiedSigs) != 2 {
				t.Fatalf("cosigned note: %v", err)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
}

// blocking fails or passes Append of the batch it is armed for, after
// holding it until released, so that later batches queue up behind it.
type blocking struct {
	storage.Backend
	armed   atomic.Bool
	held    chan struct{} // closed when the armed Append is holding
	release chan error    // the armed Append's outcome
	once    sync.Once
}

func (f *blocking) Append(ctx context.Context, b *storage.Batch) error {
	if f.armed.CompareAndSwap(true, false) {
		f.once.Do(func() { close(f.held) })
		err := <-f.release
		if err == nil {
			return f.Backend.Append(ctx, b)
		}
		if err.Error() == "after" {
			if err := f.Backend.Append(ctx, b); err != nil {
				return err
			}
			return errors.New("injected failure after persist")
		}
		return err
	}
	return f.Backend.Append(ctx, b)
}

// TestSequenceErrorsPipelined fails the persisting of a batch while the
// next batch is already admitted behind it: both batches' submitters get
// errors, the later batch is never written, and the sequencer rebuilds
// its state from storage. The barriers: a's batch is held inside Append
// (f.held) until b's batch is admitted behind it. Mutation: let the
// persisting goroutine write a batch whose predecessor failed (skip the
// failed-pipeline check before Append): b's Submit succeeds, or the
// stored size is one more than it should be.
func TestSequenceErrorsPipelined(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    error
		durable bool
	}{
		{"before persist", errors.New("injected failure before persist"), false},
		{"after persist", errors.New("after"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := storage.NewMemory()
			f := &blocking{Backend: mem, held: make(chan struct{}), release: make(chan error, 1)}
			l := newLog(t, f)
			ctx := context.Background()
			a, b := issuertest.New(t, "https://a.example"), issuertest.New(t, "https://b.example")
			sizeBefore, _ := l.seq.Checkpoint()

			f.armed.Store(true)
			errA, errB := make(chan error, 1), make(chan error, 1)
			subA, subB := a.Register(t), b.Register(t)
			go func() { _, err := l.seq.Submit(ctx, subA); errA <- err }()
			<-f.held // a's batch is being persisted
			go func() { _, err := l.seq.Submit(ctx, subB); errB <- err }()
			for { // b's batch is admitted (visible to Issuer) behind it
				if _, ok := l.seq.Issuer(b.Origin); ok {
					break
				}
				time.Sleep(time.Millisecond)
			}
			f.release <- tc.fail
			if err := <-errA; err == nil {
				t.Fatal("a's Submit succeeded although storage failed")
			}
			if err := <-errB; err == nil {
				t.Fatal("b's Submit succeeded although the batch before it failed")
			}
			stored, _, _ := mem.Checkpoint(ctx)
			want := sizeBefore
			if tc.durable {
				want++
			}
			if stored != want {
				t.Fatalf("stored size %d, want %d (b's batch must not be written)", stored, want)
			}
			// Rebuilt from storage: b registers again at the next index,
			// and a's retry is decided against what is durable.
			r := submit(t, l, b, b.Register(t))
			if r.Index != stored {
				t.Fatalf("b's retry at %d, want %d", r.Index, stored)
			}
			_, err := l.seq.Submit(ctx, subA)
			var re *policy.RejectError
			if tc.durable {
				if !errors.As(err, &re) || re.Rule != policy.RulePrev {
					t.Fatalf("retry of a durable registration: %v, want a prev refusal", err)
				}
			} else if err != nil {
				t.Fatalf("retry after a failed append: %v", err)
			}
		})
	}
}

// TestPreparedKeyNotInForce: a submission pre-verified under a key that
// is not the account key in force when it is sequenced gets its
// signature checked against the key in force, and is refused.
func TestPreparedKeyNotInForce(t *testing.T) {
	l := newLog(t, storage.NewMemory())
	a := issuertest.New(t, "https://a.example")
	submit(t, l, a, a.Register(t))
	// A statement for a signed with another key, which did sign it: it
	// was "verified", but under a key that is not a's.
	other := issuertest.New(t, a.Origin)
	other.Prev = a.Prev
	sub := other.Commit(t, 1, t0)
	otherKey := other.Key.Public().(ed25519.PublicKey)
	if err := sub.Verify(otherKey); err != nil {
		t.Fatal(err)
	}
	p := l.seq.Prepare(sub)
	if p.key != nil {
		t.Fatalf("Prepare verified a signature under %x, not the key in force", p.key)
	}
	p.key = otherKey // as if a's key had changed since Prepare
	_, err := l.seq.SubmitPrepared(context.Background(), p)
	var re *policy.RejectError
	if !errors.As(err, &re) || re.Rule != policy.RuleSignature {
		t.Fatalf("SubmitPrepared with a pre-verified key not in force: %v, want a signature refusal", err)
	}
	if _, err := l.seq.SubmitPrepared(context.Background(), p); err == nil {
		t.Fatal("a Prepared was submitted twice")
	}
	// Prepared by the key in force, it is logged.
	good := l.seq.Prepare(a.Commit(t, 1, t0))
	if good.key == nil {
		t.Fatal("Prepare didn't verify a signature by the key in force")
	}
	r, err := l.seq.SubmitPrepared(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	verifyResult(t, l.cfg.Verifier, r)
}
