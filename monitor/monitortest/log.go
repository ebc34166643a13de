// Package monitortest is a test double of a keycommit log: an in-memory
// Merkle tree that signs C2SP tlog-checkpoint notes and serves the C2SP
// tlog-tiles read path (tile height 8, entry bundles of up to 256
// entries, each a big-endian uint16 length and the entry bytes), plus the
// log's JSON consistency-proof endpoint. It is built only on
// golang.org/x/mod/sumdb/tlog and sumdb/note, independently of the real
// log, so monitor tests check the monitor against the standard rather
// than against the log's own code.
//
// A double can lie in the ways monitors must catch: Clone gives a second
// history under the same key (a split view when each history is served to
// a different client), and its generator (Gen) can append entries the
// policy refuses.
package monitortest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/keycommit/keycommit/log/c2sp"
)

// TileHeight is the height of the tiles the double serves.
const TileHeight = 8

const tileWidth = 1 << TileHeight

// Log is an in-memory log. It is safe for concurrent use.
type Log struct {
	origin string
	signer note.Signer
	vkey   string

	mu      sync.RWMutex
	entries [][]byte
	hashes  []tlog.Hash // stored hashes in tlog order
	// Intercept, when set, is called for every HTTP request; a non-nil
	// error makes the double answer 503 with the error's text.
	intercept func(r *http.Request) error
}

// NewKey generates an Ed25519 log key named origin and returns the signer
// key and the C2SP verifier key.
func NewKey(origin string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, origin)
}

// New returns an empty log that signs with skey (see NewKey). Its origin
// is the key's name.
func New(skey string) (*Log, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the log signer key: %w", err)
	}
	return &Log{origin: s.Name(), signer: s}, nil
}

// NewWithKey returns an empty log with a fresh key named origin, and the
// key's C2SP vkey.
func NewWithKey(origin string) (*Log, string, error) {
	skey, vkey, err := NewKey(origin)
	if err != nil {
		return nil, "", err
	}
	l, err := New(skey)
	if err != nil {
		return nil, "", err
	}
	l.vkey = vkey
	return l, vkey, nil
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// VKey returns the log's verifier key when the log was made by NewWithKey.
func (l *Log) VKey() string { return l.vkey }

// Clone returns a log with the same key and a copy of l's history. The two
// evolve independently: appending different entries to each makes a fork
// that the same key signs, which is what a split view is.
func (l *Log) Clone() *Log {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return &Log{origin: l.origin, signer: l.signer, vkey: l.vkey,
		entries: append([][]byte(nil), l.entries...),
		hashes:  append([]tlog.Hash(nil), l.hashes...)}
}

// SetIntercept installs f (see Log.intercept); nil removes it.
func (l *Log) SetIntercept(f func(r *http.Request) error) {
	l.mu.Lock()
	l.intercept = f
	l.mu.Unlock()
}

// Append adds entries to the log and returns the index of the first.
// An entry longer than 65,535 bytes cannot be served in a bundle and makes
// Append fail.
func (l *Log) Append(entries ...[]byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := uint64(len(l.entries))
	for _, e := range entries {
		if len(e) > 0xffff {
			return 0, fmt.Errorf("entry of %d bytes is over the 65,535-byte bundle limit", len(e))
		}
		n := int64(len(l.entries))
		hs, err := tlog.StoredHashes(n, e, l.hashReader())
		if err != nil {
			return 0, fmt.Errorf("couldn't hash entry %d: %w", n, err)
		}
		l.hashes = append(l.hashes, hs...)
		l.entries = append(l.entries, append([]byte(nil), e...))
	}
	return first, nil
}

// hashReader reads l.hashes; l.mu must be held.
func (l *Log) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("stored hash %d not in a tree of %d stored hashes", x, len(l.hashes))
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// TamperEntry makes the double serve b as entry i in its bundles while
// its tree and tiles still commit to the original entry.
func (l *Log) TamperEntry(i int64, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[i] = append([]byte(nil), b...)
}

// Size returns the number of entries.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return int64(len(l.entries))
}

// Entry returns entry i.
func (l *Log) Entry(i int64) []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries[i]
}

// RootAt returns the tree hash at size n (n ≤ Size()).
func (l *Log) RootAt(n int64) (tlog.Hash, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n > int64(len(l.entries)) {
		return tlog.Hash{}, fmt.Errorf("size %d is beyond the log's %d entries", n, len(l.entries))
	}
	return tlog.TreeHash(n, l.hashReader())
}

// CheckpointAt returns the signed checkpoint of the tree at size n.
func (l *Log) CheckpointAt(n int64) ([]byte, error) {
	root, err := l.RootAt(n)
	if err != nil {
		return nil, err
	}
	return l.SignCheckpoint(n, root)
}

// SignCheckpoint signs a checkpoint for any size and root, true or not:
// tests use it to make a log that lies.
func (l *Log) SignCheckpoint(n int64, root tlog.Hash) ([]byte, error) {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
	return note.Sign(&note.Note{Text: text}, l.signer)
}

// Checkpoint returns the signed checkpoint of the current tree.
func (l *Log) Checkpoint() ([]byte, error) { return l.CheckpointAt(l.Size()) }

// ServeHTTP serves the tlog-tiles read path at the root of the handler:
// GET /checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>], and
// GET /v1/proof/consistency?old=M&new=N (JSON {"proof": [base64...]}).
// Mount it under a prefix with http.StripPrefix.
func (l *Log) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	f := l.intercept
	l.mu.RUnlock()
	if f != nil {
		if err := f(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case p == "checkpoint":
		b, err := l.Checkpoint()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	case p == "v1/proof/consistency":
		l.serveConsistency(w, r)
	case strings.HasPrefix(p, "tile/"):
		t, err := ParsePath(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data, err := l.tileData(t)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if t.W == tileWidth {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

func (l *Log) serveConsistency(w http.ResponseWriter, r *http.Request) {
	old, err1 := strconv.ParseInt(r.URL.Query().Get("old"), 10, 64)
	n, err2 := strconv.ParseInt(r.URL.Query().Get("new"), 10, 64)
	if err1 != nil || err2 != nil || old < 0 || old > n {
		http.Error(w, "old and new must be sizes with 0 ≤ old ≤ new", http.StatusBadRequest)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n > int64(len(l.entries)) {
		http.Error(w, fmt.Sprintf("new size %d is beyond the log's %d entries", n, len(l.entries)), http.StatusBadRequest)
		return
	}
	var p tlog.TreeProof
	if old > 0 && old < n {
		var err error
		if p, err = tlog.ProveTree(n, old, l.hashReader()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	out := struct {
		Proof [][]byte `json:"proof"`
	}{Proof: [][]byte{}}
	for _, h := range p {
		out.Proof = append(out.Proof, append([]byte(nil), h[:]...))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// tileData returns the bytes of tile t (an entry bundle when t.L == -1).
func (l *Log) tileData(t tlog.Tile) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := int64(len(l.entries))
	if t.L == -1 {
		start := t.N * tileWidth
		if start+int64(t.W) > n {
			return nil, fmt.Errorf("entry bundle %d of width %d is beyond the log's %d entries", t.N, t.W, n)
		}
		return c2sp.AppendEntryBundle(nil, l.entries[start:start+int64(t.W)])
	}
	if (t.N*tileWidth+int64(t.W))<<(TileHeight*t.L) > n {
		return nil, fmt.Errorf("tile %d/%d of width %d is beyond the log's %d entries", t.L, t.N, t.W, n)
	}
	return tlog.ReadTileData(t, l.hashReader())
}

// Path returns the C2SP tlog-tiles path of t ("tile/..." without a leading
// slash); t.L == -1 is an entry bundle.
func Path(t tlog.Tile) string {
	l := strconv.Itoa(t.L)
	if t.L == -1 {
		l = "entries"
	}
	n := fmt.Sprintf("%03d", t.N%1000)
	for x := t.N / 1000; x > 0; x /= 1000 {
		n = fmt.Sprintf("x%03d/%s", x%1000, n)
	}
	if t.W != tileWidth {
		n += ".p/" + strconv.Itoa(t.W)
	}
	return "tile/" + l + "/" + n
}

// ParsePath parses a C2SP tlog-tiles path (see Path).
func ParsePath(p string) (tlog.Tile, error) {
	bad := fmt.Errorf("malformed tile path %q", p)
	f := strings.Split(p, "/")
	if len(f) < 3 || f[0] != "tile" {
		return tlog.Tile{}, bad
	}
	t := tlog.Tile{H: TileHeight, W: tileWidth}
	if f[1] == "entries" {
		t.L = -1
	} else {
		l, err := strconv.Atoi(f[1])
		if err != nil || l < 0 || l > 63 || strconv.Itoa(l) != f[1] {
			return tlog.Tile{}, bad
		}
		t.L = l
	}
	f = f[2:]
	if len(f) >= 2 && strings.HasSuffix(f[len(f)-2], ".p") {
		w, err := strconv.Atoi(f[len(f)-1])
		if err != nil || w < 1 || w >= tileWidth || strconv.Itoa(w) != f[len(f)-1] {
			return tlog.Tile{}, bad
		}
		t.W = w
		f[len(f)-2] = strings.TrimSuffix(f[len(f)-2], ".p")
		f = f[:len(f)-1]
	}
	for i, e := range f {
		if i < len(f)-1 {
			if !strings.HasPrefix(e, "x") {
				return tlog.Tile{}, bad
			}
			e = e[1:]
		}
		if len(e) != 3 || strings.Trim(e, "0123456789") != "" {
			return tlog.Tile{}, bad
		}
		d, _ := strconv.Atoi(e)
		t.N = t.N*1000 + int64(d)
	}
	if Path(t) != p {
		return tlog.Tile{}, errors.Join(bad, errors.New("not in canonical form"))
	}
	return t, nil
}
