// Package storagetest is the suite every log storage backend runs: the
// storage contract itself, and a complete log (sequencer, HTTP server,
// client) over the backend, checked through what the server serves.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// Harness makes backends for the suite.
type Harness struct {
	// New returns a new, empty backend. Required. The suite closes it.
	New func(t *testing.T) storage.Backend
	// Reopen, if set, closes b and opens the same store again, as a
	// process restart would.
	Reopen func(t *testing.T, b storage.Backend) storage.Backend
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Run("Contract", func(t *testing.T) { testContract(t, h) })
	t.Run("EveryTreeSize", func(t *testing.T) { testEveryTreeSize(t, h) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("Lookups", func(t *testing.T) { testLookups(t, h) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, h) })
	t.Run("PolicyState", func(t *testing.T) { testPolicyState(t, h) })
	t.Run("Cosigned", func(t *testing.T) { testCosigned(t, h) })
	t.Run("KeySetHistory", func(t *testing.T) { testKeySetHistory(t, h) })
}

func newBackend(t *testing.T, h Harness) storage.Backend {
	b := h.New(t)
	t.Cleanup(func() { b.Close() })
	return b
}

// testContract exercises the storage interface directly.
func testContract(t *testing.T, h Harness) {
	ctx := context.Background()
	b := newBackend(t, h)
	if _, _, err := b.Checkpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Checkpoint of an empty store: %v, want ErrNotFound", err)
	}
	if _, _, err := b.Cosigned(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Cosigned of an empty store: %v, want ErrNotFound", err)
	}
	if _, err := b.KeySet(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("KeySet of an empty store: %v, want ErrNotFound", err)
	}
	if _, err := b.Tile(ctx, 0, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Tile of an empty store: %v, want ErrNotFound", err)
	}
	entry := func(i int, issuer string) storage.Entry {
		d := []byte(fmt.Sprintf(`{"entry":%d}`, i))
		return storage.Entry{Data: d, LeafHash: tiles.LeafHash(d), Issuer: issuer}
	}
	app, _ := tiles.NewAppender(0, nil)
	batch := func(start int, es ...storage.Entry) *storage.Batch {
		var hs []tlog.Hash
		for _, e := range es {
			hs = append(hs, e.LeafHash)
		}
		u, err := app.Append(hs)
		if err != nil {
			t.Fatal(err)
		}
		return &storage.Batch{Start: uint64(start), Entries: es, Tiles: u.Tiles, Checkpoint: []byte(fmt.Sprintf("checkpoint %d", u.Size))}
	}
	b1 := batch(0, entry(0, ""), entry(1, "https://a.example"), entry(2, "https://b.example"))
	b1.KeySet = &storage.KeySet{Index: 2, Data: []byte(`{"pst":{},"privacy_pass":{}}`)}
	if err := b.Append(ctx, b1); err != nil {
		t.Fatal(err)
	}
	var es []storage.Entry
	for i := 3; i < 300; i++ {
		es = append(es, entry(i, "https://a.example"))
	}
	b2 := batch(3, es...)
	if err := b.Append(ctx, b2); err != nil {
		t.Fatal(err)
	}
	// A batch that does not start at the stored size is refused and
	// changes nothing.
	for _, start := range []uint64{0, 299, 301} {
		bad := &storage.Batch{Start: start, Entries: []storage.Entry{entry(999, "https://c.example")}, Checkpoint: []byte("bad")}
		if err := b.Append(ctx, bad); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("Append at %d to a store of 300: %v, want ErrConflict", start, err)
		}
	}
	if n, cp, err := b.Checkpoint(ctx); err != nil || n != 300 || string(cp) != "checkpoint 300" {
		t.Fatalf("Checkpoint = %d, %q, %v", n, cp, err)
	}
	got, err := b.Entries(ctx, 0, 300)
	if err != nil || len(got) != 300 {
		t.Fatalf("Entries(0, 300): %d, %v", len(got), err)
	}
	for i, d := range got {
		if string(d) != fmt.Sprintf(`{"entry":%d}`, i) {
			t.Fatalf("entry %d = %q", i, d)
		}
		if idx, err := b.LeafIndex(ctx, tiles.LeafHash(d)); err != nil || idx != uint64(i) {
			t.Fatalf("LeafIndex(entry %d) = %d, %v", i, idx, err)
		}
	}
	if _, err := b.Entries(ctx, 299, 301); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Entries beyond the tree: %v", err)
	}
	if _, err := b.LeafIndex(ctx, tiles.LeafHash([]byte("nope"))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("LeafIndex of an unknown hash: %v", err)
	}
	a, err := b.IssuerEntries(ctx, "https://a.example")
	if err != nil || len(a) != 298 || a[0] != 1 || a[1] != 3 || a[297] != 299 {
		t.Fatalf("IssuerEntries(a) = %v, %v", a, err)
	}
	if c, err := b.IssuerEntries(ctx, "https://c.example"); err != nil || len(c) != 0 {
		t.Fatalf("IssuerEntries(unknown) = %v, %v", c, err)
	}
	if _, ok := b.(storage.IssuerTailReader); ok {
		for _, c := range []struct {
			origin        string
			before        uint64
			n, total      int
			first, length int
		}{
			{"https://a.example", 300, 5, 298, 295, 5},
			{"https://a.example", 100, 3, 98, 97, 3},
			{"https://a.example", 2, 10, 1, 1, 1},
			{"https://a.example", 1, 10, 0, 0, 0},
			{"https://c.example", 300, 10, 0, 0, 0},
		} {
			got, total, err := b.(storage.IssuerTailReader).IssuerEntriesBefore(ctx, c.origin, c.before, c.n)
			if err != nil || total != c.total || len(got) != c.length || (len(got) > 0 && (got[0] != uint64(c.first) || got[len(got)-1] >= c.before)) {
				t.Fatalf("IssuerEntriesBefore(%s, %d, %d) = %v, %d, %v; want %d from %d, total %d", c.origin, c.before, c.n, got, total, err, c.length, c.first, c.total)
			}
		}
	}
	ks, err := b.KeySet(ctx)
	if err != nil || ks.Index != 2 {
		t.Fatalf("KeySet = %+v, %v", ks, err)
	}
	// Tiles: the widest version of each is kept.
	full, err := b.Tile(ctx, 0, 0)
	if err != nil || len(full) != 256*32 {
		t.Fatalf("tile 0/0: %d bytes, %v", len(full), err)
	}
	part, err := b.Tile(ctx, 0, 1)
	if err != nil || len(part) != 44*32 {
		t.Fatalf("tile 0/1: %d bytes, %v", len(part), err)
	}
	if l1, err := b.Tile(ctx, 1, 0); err != nil || len(l1) != 32 {
		t.Fatalf("tile 1/0: %d bytes, %v", len(l1), err)
	}
	hr := tiles.HashReader(func(tl tlog.Tile) ([]byte, error) { return b.Tile(ctx, tl.L, tl.N) })
	root, err := tlog.TreeHash(300, hr)
	if err != nil || root != mustRoot(t, app) {
		t.Fatalf("root from stored tiles: %v", err)
	}
	// Cosigned checkpoints: the largest size wins.
	for _, size := range []uint64{5, 7, 6} {
		if err := b.SetCosigned(ctx, size, cosNote(size, 'a', cosLine("w1", 1, 10))); err != nil {
			t.Fatal(err)
		}
	}
	if n, c, err := b.Cosigned(ctx); err != nil || n != 7 || string(c) != string(cosNote(7, 'a', cosLine("w1", 1, 10))) {
		t.Fatalf("Cosigned = %d, %q, %v", n, c, err)
	}
	if h.Reopen != nil {
		b = h.Reopen(t, b)
		t.Cleanup(func() { b.Close() })
		if n, _, err := b.Checkpoint(ctx); err != nil || n != 300 {
			t.Fatalf("after reopening: size %d, %v", n, err)
		}
		if n, _, err := b.Cosigned(ctx); err != nil || n != 7 {
			t.Fatalf("after reopening: cosigned size %d, %v", n, err)
		}
	}
}

func mustRoot(t *testing.T, a *tiles.Appender) tlog.Hash {
	r, err := a.Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testEveryTreeSize grows a log one entry at a time to 300 entries and,
// for every tree size, checks inclusion and consistency proofs from the
// JSON endpoints and from the tiles alone (tlog.TileHashReader), and that
// flipped bytes are rejected.
func testEveryTreeSize(t *testing.T, h Harness) {
	ctx := context.Background()
	l := logtest.Start(t, newBackend(t, h), nil)
	const max = 300
	cps := map[uint64]checkpoint.Checkpoint{}
	notes := map[uint64][]byte{}
	cp, note, err := l.Client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cps[cp.Size], notes[cp.Size] = cp, note
	leaves := map[uint64][]byte{}
	for i := 0; cp.Size < max; i++ {
		is := issuertest.Numbered(t, i)
		r, err := l.Client.Submit(ctx, is.Register(t))
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		cps[r.Parsed.Size], notes[r.Parsed.Size] = r.Parsed, []byte(r.Checkpoint)
		leaves[r.Index] = r.LeafHash
		cp = r.Parsed
	}
	es, err := l.Client.Entries(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	leaves[0] = es[0].LeafHash
	// Size 0: the empty tree is consistent with everything.
	if err := l.Client.ConsistencyProof(ctx, checkpoint.Checkpoint{Origin: cp.Origin, Size: 0, Hash: tlog.Hash(emptyRoot())}, cp); err != nil {
		t.Fatalf("consistency from the empty tree: %v", err)
	}
	tr := l.Client.TileReader(ctx)
	for n := uint64(1); n <= max; n++ {
		c, ok := cps[n]
		if !ok {
			t.Fatalf("no checkpoint of size %d was published", n)
		}
		thr := tlog.TileHashReader(tlog.Tree{N: int64(n), Hash: c.Hash}, tr)
		for _, i := range sample(n) {
			if _, err := l.Client.InclusionProof(ctx, c, i); err != nil {
				t.Fatalf("inclusion of %d in %d from the endpoint: %v", i, n, err)
			}
			if idx, err := l.Client.InclusionProofByHash(ctx, c, leaves[i]); err != nil || idx != i {
				t.Fatalf("inclusion by hash of %d in %d: %d, %v", i, n, idx, err)
			}
			p, err := tlog.ProveRecord(int64(n), int64(i), thr)
			if err != nil {
				t.Fatalf("inclusion of %d in %d from tiles: %v", i, n, err)
			}
			if err := tlog.CheckRecord(p, int64(n), c.Hash, int64(i), tlog.Hash(leaves[i])); err != nil {
				t.Fatalf("CheckRecord %d in %d: %v", i, n, err)
			}
			for j := range p {
				for _, bit := range []byte{1, 0x80} {
					m := append(tlog.RecordProof(nil), p...)
					m[j][int(i+n)%32] ^= bit
					if tlog.CheckRecord(m, int64(n), c.Hash, int64(i), tlog.Hash(leaves[i])) == nil {
						t.Fatalf("flipped inclusion proof of %d in %d accepted", i, n)
					}
				}
			}
		}
		for _, m := range sample(n + 1) {
			if m == 0 {
				continue
			}
			old := cps[m]
			if err := l.Client.ConsistencyProof(ctx, old, c); err != nil {
				t.Fatalf("consistency %d -> %d from the endpoint: %v", m, n, err)
			}
			p, err := tlog.ProveTree(int64(n), int64(m), thr)
			if err != nil {
				t.Fatalf("consistency %d -> %d from tiles: %v", m, n, err)
			}
			if err := tlog.CheckTree(p, int64(n), c.Hash, int64(m), old.Hash); err != nil {
				t.Fatalf("CheckTree %d -> %d: %v", m, n, err)
			}
			for j := range p {
				mp := append(tlog.TreeProof(nil), p...)
				mp[j][int(m)%32] ^= 0x10
				if tlog.CheckTree(mp, int64(n), c.Hash, int64(m), old.Hash) == nil {
					t.Fatalf("flipped consistency proof %d -> %d accepted", m, n)
				}
			}
		}
	}
	// Flipped bytes in a checkpoint, and in a tile, are rejected.
	for _, n := range []uint64{1, 2, 255, 256, 257, max} {
		note := notes[n]
		for i := range note {
			m := bytes.Clone(note)
			m[i] ^= 0x04
			if _, err := l.Client.OpenCheckpoint(m); err == nil {
				t.Fatalf("checkpoint %d with byte %d flipped accepted", n, i)
			}
		}
		c := cps[n]
		for _, bad := range []int{0, 1, 7} {
			mr := &manglingReader{TileReader: tr, which: bad}
			thr := tlog.TileHashReader(tlog.Tree{N: int64(n), Hash: c.Hash}, mr)
			_, err := tlog.ProveRecord(int64(n), int64(n-1), thr)
			if mr.mangled && err == nil {
				t.Fatalf("tree %d: mangled tile accepted by TileHashReader", n)
			}
		}
	}
}

// manglingReader flips one byte of the tile data it returns.
type manglingReader struct {
	tlog.TileReader
	which   int
	mangled bool
}

func (m *manglingReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	d, err := m.TileReader.ReadTiles(ts)
	if err != nil || len(d) == 0 {
		return d, err
	}
	k := m.which % len(d)
	if len(d[k]) > 0 {
		d[k] = bytes.Clone(d[k])
		d[k][(m.which*13)%len(d[k])] ^= 0x01
		m.mangled = true
	}
	return d, nil
}

func emptyRoot() [32]byte {
	r, _ := tlog.TreeHash(0, nil)
	return r
}

// sample returns a few indexes below n, every one for small n.
func sample(n uint64) []uint64 {
	if n <= 12 {
		var out []uint64
		for i := uint64(0); i < n; i++ {
			out = append(out, i)
		}
		return out
	}
	set := map[uint64]bool{0: true, 1: true, n / 3: true, n / 2: true, n - 2: true, n - 1: true, (n * 7) % n: true, (n*31 + 5) % n: true}
	var out []uint64
	for i := range set {
		out = append(out, i)
	}
	return out
}

// testBadInput sends hostile requests and checks each gets a 4xx naming
// the problem and writes nothing.
func testBadInput(t *testing.T, h Harness) {
	ctx := context.Background()
	l := logtest.Start(t, newBackend(t, h), &logtest.Options{MaxBodyBytes: 64 << 10})
	is := issuertest.New(t, "https://a.example")
	if r, err := l.Client.Submit(ctx, is.Register(t)); err != nil {
		t.Fatal(err)
	} else {
		is.Logged(tlog.Hash(r.LeafHash))
	}
	good := string(mustJSON(t, is.Commit(t, 1, l.Clock.Now())))
	badSig := is.Commit(t, 1, l.Clock.Now())
	badSig.Sig[5] ^= 1
	unknownKind := strings.Replace(good, `"kind":"key_commitment"`, `"kind":"key_revocation"`, 1)
	logKind := strings.Replace(good, `"kind":"key_commitment"`, `"kind":"snapshot"`, 1)
	big := `{"kind":"registration","issuer":"https://a.example","prev":"","body":{"contact":"` + strings.Repeat("a", 70<<10) + `"},"sig":""}`
	before, beforeNote, _ := l.Backend.Checkpoint(ctx)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"malformed JSON", "POST", api.PathSubmit, `{"kind":`, 400, "malformed submission"},
		{"not JSON", "POST", api.PathSubmit, `hello`, 400, "malformed submission"},
		{"trailing data", "POST", api.PathSubmit, good + `{}`, 400, "trailing data"},
		{"unknown member", "POST", api.PathSubmit, strings.Replace(good, `{"kind"`, `{"extra":1,"kind"`, 1), 400, `unknown member \"extra\"`},
		{"upper-case member", "POST", api.PathSubmit, strings.Replace(good, `{"kind"`, `{"KIND"`, 1), 400, `member \"KIND\": member names are case-sensitive`},
		{"duplicate member", "POST", api.PathSubmit, strings.Replace(good, `{"kind":"key_commitment"`, `{"kind":"registration","kind":"key_commitment"`, 1), 400, `member \"kind\" twice`},
		{"unknown kind", "POST", api.PathSubmit, unknownKind, 400, "unknown entry kind"},
		{"log-written kind", "POST", api.PathSubmit, logKind, 400, "written by the log"},
		{"bad signature", "POST", api.PathSubmit, string(mustJSON(t, badSig)), 422, "signature"},
		{"oversized body", "POST", api.PathSubmit, big, 413, "over the limit"},
		{"check malformed", "POST", api.PathCheck, `[]`, 400, "malformed submission"},
		{"tile out of range", "GET", "/tile/0/001", "", 404, "out of range"},
		{"partial tile too wide", "GET", "/tile/0/000.p/5", "", 404, "out of range"},
		{"tile level out of range", "GET", "/tile/1/000.p/1", "", 404, "out of range"},
		{"entries out of range", "GET", "/tile/entries/000.p/3", "", 404, "out of range"},
		{"malformed tile path", "GET", "/tile/0/1", "", 400, "malformed tile path"},
		{"tile width 0", "GET", "/tile/0/000.p/0", "", 400, "partial width"},
		{"inclusion index beyond", "GET", api.PathInclusionProof + "?index=9", "", 404, "not in the tree"},
		{"inclusion size beyond", "GET", api.PathInclusionProof + "?index=0&size=99", "", 404, "beyond"},
		{"inclusion no params", "GET", api.PathInclusionProof, "", 400, "missing parameter"},
		{"inclusion bad index", "GET", api.PathInclusionProof + "?index=-1", "", 400, "not a non-negative integer"},
		{"inclusion bad hash", "GET", api.PathInclusionProof + "?hash=zz", "", 400, "32-byte leaf hash"},
		{"inclusion unknown hash", "GET", api.PathInclusionProof + "?hash=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "", 404, "leaf hash"},
		{"consistency reversed", "GET", api.PathConsistencyProof + "?old=2&new=1", "", 400, "larger than"},
		{"consistency beyond", "GET", api.PathConsistencyProof + "?old=1&new=50", "", 404, "beyond"},
		{"entries too many", "GET", api.PathEntries + "?start=0&end=5000", "", 400, "over 1000"},
		{"entries empty range", "GET", api.PathEntries + "?start=1&end=1", "", 400, "not below"},
		{"entries beyond", "GET", api.PathEntries + "?start=0&end=3", "", 404, "beyond"},
		{"unknown issuer", "GET", api.PathIssuers + "https%3A%2F%2Fnobody.example", "", 404, "not registered"},
		{"bad issuer origin", "GET", api.PathIssuers + "http%3A%2F%2Fa.example", "", 400, "https"},
		{"no such endpoint", "GET", "/v1/nothing", "", 404, "no such endpoint"},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, l.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) || !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	after, afterNote, _ := l.Backend.Checkpoint(ctx)
	if after != before || !bytes.Equal(afterNote, beforeNote) {
		t.Fatalf("bad input changed the log: size %d -> %d", before, after)
	}
	if es, _ := l.Backend.IssuerEntries(ctx, is.Origin); len(es) != 1 {
		t.Fatalf("issuer has %d entries, want 1", len(es))
	}
	// The good submission still goes through.
	if _, err := l.Client.Submit(ctx, mustParse(t, good)); err != nil {
		t.Fatalf("good submission after bad ones: %v", err)
	}
}

func mustJSON(t *testing.T, sub *schema.Submission) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := jsonEncoder(&buf)
	if err := enc.Encode(sub); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(buf.Bytes())
}

func mustParse(t *testing.T, s string) *schema.Submission {
	t.Helper()
	sub, err := schema.ParseSubmission([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// testConcurrent has 64 clients submit at once over HTTP.
func testConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	l := logtest.Start(t, newBackend(t, h), nil)
	const n = 64
	const each = 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]string{}
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			is := issuertest.Numbered(t, c)
			for k := 0; k < each; k++ {
				// A registration, then renewals chained by prev.
				r, err := l.Client.Submit(ctx, is.Register(t))
				if err != nil {
					t.Errorf("client %d submission %d: %v", c, k, err)
					return
				}
				is.Logged(tlog.Hash(r.LeafHash))
				mu.Lock()
				if prev, dup := got[r.Index]; dup {
					t.Errorf("index %d given to %s and %s", r.Index, prev, is.Origin)
				}
				got[r.Index] = is.Origin
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	cp, _, err := l.Client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n*each+1 || len(got) != n*each {
		t.Fatalf("tree size %d with %d acknowledged, want %d", cp.Size, len(got), n*each+1)
	}
	es, err := l.Client.Entries(ctx, 1, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		pe, err := schema.ParseEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got[e.Index] != pe.Issuer {
			t.Fatalf("entry %d is %s's, acknowledged to %s", e.Index, pe.Issuer, got[e.Index])
		}
	}
}

// testLookups checks the issuer, key set, policy, entries and entry
// bundle endpoints against what was submitted.
func testLookups(t *testing.T, h Harness) {
	ctx := context.Background()
	l := logtest.Start(t, newBackend(t, h), nil)
	if _, _, err := l.Client.KeySet(ctx); err == nil {
		t.Fatal("key set served before any snapshot")
	}
	a := issuertest.New(t, "https://a.example")
	var last *client.Submitted
	for _, sub := range []func() *schema.Submission{
		func() *schema.Submission { return a.Register(t) },
		func() *schema.Submission { return a.Commit(t, 2, l.Clock.Now()) },
	} {
		r, err := l.Client.Submit(ctx, sub())
		if err != nil {
			t.Fatal(err)
		}
		a.Logged(tlog.Hash(r.LeafHash))
		last = r
	}
	st, err := l.Client.Issuer(ctx, a.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Status.LastLeafHash, last.LeafHash) || st.Status.LastIndex != last.Index || fmt.Sprint(st.Entries) != "[1 2]" {
		t.Fatalf("issuer status %+v entries %v", st.Status, st.Entries)
	}
	if st.Status.Commitment == nil || *st.Status.Commitment != 2 || st.Status.NextRotation == 0 || st.Status.RegistrationExpires == 0 {
		t.Fatalf("issuer status lacks commitment, rotation or expiry: %+v", st.Status)
	}
	// Also by bare host name.
	if st2, err := l.Client.Issuer(ctx, "a.example"); err != nil || st2.Status.Origin != a.Origin {
		t.Fatalf("issuer by host: %v", err)
	}
	ks, idx, err := l.Client.KeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx != 3 {
		t.Fatalf("key set from snapshot %d, want 3", idx)
	}
	snap, err := l.Client.Entries(ctx, idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	se, _ := schema.ParseEntry(snap[0].Data)
	body, err := se.ParsedBody()
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := schema.ParseKeySet(ks)
	if ok, _ := body.(*schema.Snapshot).CommitsTo(ks); !ok || body.(*schema.Snapshot).Root == nil || len(parsed.PST) != 1 {
		t.Fatalf("served key set does not match snapshot %d", idx)
	}
	p, err := l.Client.Policy(ctx)
	if err != nil || p.MinRotationInterval == 0 {
		t.Fatalf("policy %+v, %v", p, err)
	}
	// Check is a dry run: a good submission is accepted and not logged.
	cp, _, _ := l.Client.Checkpoint(ctx)
	chk, err := l.Client.Check(ctx, a.DryRun(t, a.Register(t)))
	if err != nil || !chk.Accept {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	b := issuertest.New(t, "https://b.example")
	chk, err = l.Client.Check(ctx, b.DryRun(t, b.Commit(t, 1, l.Clock.Now())))
	if err != nil || chk.Accept || chk.Rule == "" || chk.Reason == "" {
		t.Fatalf("check of an unregistered issuer's commitment: %+v, %v", chk, err)
	}
	if cp2, _, _ := l.Client.Checkpoint(ctx); cp2.Size != cp.Size {
		t.Fatal("check logged something")
	}
	// Entry bundles hold the entries; their leaf hashes are the level-0
	// tile's hashes.
	bundle, err := l.Client.EntryBundle(ctx, tlog.Tile{H: tiles.Height, N: 0, W: int(cp.Size)})
	if err != nil {
		t.Fatal(err)
	}
	tile, err := l.Client.Tile(ctx, tlog.Tile{H: tiles.Height, L: 0, N: 0, W: int(cp.Size)})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := l.Client.Entries(ctx, 0, cp.Size)
	for i, e := range bundle {
		h := tiles.LeafHash(e)
		if !bytes.Equal(h[:], tile[32*i:32*i+32]) || !bytes.Equal(e, es[i].Data) {
			t.Fatalf("bundle entry %d does not match tile or entries endpoint", i)
		}
	}
	// /metrics serves the instance's metrics.
	resp, err := http.Get(l.URL + api.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mb), "keycommit_log_submissions_total") {
		t.Fatal("metrics lack keycommit_log_submissions_total")
	}
	// Partial tiles are immutable too (C2SP tlog-tiles: a partial tile of
	// width W never changes; a wider one has another path).
	resp, err = http.Get(l.URL + "/tile/0/000.p/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("partial tile: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

// testRestart stops the log, reopens the backend and checks the log goes
// on consistently.
func testRestart(t *testing.T, h Harness) {
	ctx := context.Background()
	b := newBackend(t, h)
	l := logtest.Start(t, b, nil)
	var cps []checkpoint.Checkpoint
	issuers := map[int]*issuertest.Issuer{}
	for i := 0; i < 20; i++ {
		is := issuertest.Numbered(t, i)
		issuers[i] = is
		r, err := l.Client.Submit(ctx, is.Register(t))
		if err != nil {
			t.Fatal(err)
		}
		is.Logged(tlog.Hash(r.LeafHash))
		cps = append(cps, r.Parsed)
	}
	if h.Reopen != nil {
		b = h.Reopen(t, b)
		t.Cleanup(func() { b.Close() })
	}
	l.Restart(t, b)
	// Issuer state survived: a renewal chained on the old prev works.
	r, err := l.Client.Submit(ctx, issuers[3].Register(t))
	if err != nil {
		t.Fatalf("renewal after restart: %v", err)
	}
	for _, old := range cps {
		if err := l.Client.ConsistencyProof(ctx, old, r.Parsed); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
}
