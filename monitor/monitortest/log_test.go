package monitortest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestPathRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		t    tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 1, N: 1234067, W: 256}, "tile/1/x001/x234/067"},
		{tlog.Tile{H: 8, L: -1, N: 5, W: 7}, "tile/entries/005.p/7"},
		{tlog.Tile{H: 8, L: 2, N: 1000, W: 1}, "tile/2/x001/000.p/1"},
	} {
		if got := Path(tc.t); got != tc.path {
			t.Errorf("Path(%+v) = %q, want %q", tc.t, got, tc.path)
		}
		got, err := ParsePath(tc.path)
		if err != nil || got != tc.t {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.t)
		}
	}
	for _, bad := range []string{"tile/0/1", "tile/0/x001", "tile/0/001/002", "tile/0/000.p/256", "tile/0/000.p/0",
		"tile/00/000", "tile/x/000", "tile/0/000.p/08", "tiles/0/000", "tile/entries/0001"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted a malformed path", bad)
		}
	}
}

// TestServesVerifiableTree checks the double against sumdb/tlog and
// merkle/proof for sizes up to 600: its tiles authenticate against its
// checkpoints, its bundles hold its entries, and its consistency proofs
// verify.
func TestServesVerifiableTree(t *testing.T) {
	l, vkey, err := NewWithKey("example.com/double")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	defer srv.Close()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	get := func(p string) []byte {
		t.Helper()
		resp, err := http.Get(srv.URL + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s: %s", p, resp.Status, b)
		}
		return b
	}
	var roots []tlog.Hash
	for n := 0; n <= 600; n++ {
		if n > 0 {
			if _, err := l.Append([]byte(fmt.Sprintf("entry %d", n-1))); err != nil {
				t.Fatal(err)
			}
		}
		root, err := l.RootAt(int64(n))
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
		if n%37 != 0 && n != 256 && n != 257 && n != 600 {
			continue
		}
		cp := get("checkpoint")
		nt, err := note.Open(cp, note.VerifierList(v))
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if want := fmt.Sprintf("example.com/double\n%d\n%s\n", n, root); nt.Text != want {
			t.Fatalf("checkpoint text %q, want %q", nt.Text, want)
		}
		if n == 0 {
			continue
		}
		thr := tlog.TileHashReader(tlog.Tree{N: int64(n), Hash: root}, tileReader{get: get})
		// Leaf hashes proven by the tiles match the bundles' entries.
		for i := int64(0); i < int64(n); i += 97 {
			hs, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
			if err != nil {
				t.Fatalf("size %d, leaf %d: %v", n, i, err)
			}
			w := min(256, n-int(i/256*256))
			bundle := get(Path(tlog.Tile{H: 8, L: -1, N: i / 256, W: w}))
			if tlog.RecordHash(bundleEntry(t, bundle, int(i%256))) != hs[0] {
				t.Fatalf("size %d: bundle entry %d does not hash to the tile's leaf hash", n, i)
			}
		}
		for m := 0; m <= n; m += 1 + n/7 {
			var p struct{ Proof [][]byte }
			if err := json.Unmarshal(get(fmt.Sprintf("v1/proof/consistency?old=%d&new=%d", m, n)), &p); err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(n), p.Proof, roots[m][:], root[:]); err != nil {
				t.Errorf("consistency %d -> %d: %v", m, n, err)
			}
		}
	}
}

type tileReader struct{ get func(string) []byte }

func (tileReader) Height() int { return 8 }
func (r tileReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, t := range ts {
		out = append(out, r.get(Path(t)))
	}
	return out, nil
}
func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func bundleEntry(t *testing.T, b []byte, i int) []byte {
	t.Helper()
	for k := 0; ; k++ {
		if len(b) < 2 {
			t.Fatal("bundle too short")
		}
		n := int(binary.BigEndian.Uint16(b))
		if k == i {
			return b[2 : 2+n]
		}
		b = b[2+n:]
	}
}

// TestGenAdmitsOnlyAccepted checks the generator: replaying what it wrote
// with policy.Evaluate accepts every entry except the forced one.
func TestGenAdmitsOnlyAccepted(t *testing.T) {
	l, _, err := NewWithKey("example.com/gen")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGen(l, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	must := func(_ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.Register("https://a.example"))
	must(g.Register("https://b.example"))
	must(g.Commit("https://a.example", 2, 2))
	must(g.Commit("https://b.example", 1, 3))
	must(g.Snapshot())
	g.Advance(time.Hour)
	must(g.Commit("https://a.example", 0, 2))
	must(g.Snapshot())
	bad, err := g.SnapshotEntry("https://a.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Append(bad); err == nil {
		t.Fatal("Append admitted a snapshot that omits an issuer")
	}
	badIdx, err := g.Force(bad)
	if err != nil {
		t.Fatal(err)
	}
	st := policy.NewLogState(l.Origin())
	for i := int64(0); i < l.Size(); i++ {
		b := l.Entry(i)
		e, err := schema.ParseEntry(b)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		d := policy.Evaluate(st, e, uint64(i))
		if d.Accept == (uint64(i) == badIdx) {
			t.Errorf("entry %d: decision %+v", i, d)
		}
		if err := st.Apply(e, uint64(i), tlog.RecordHash(b)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.MarshalBinary()
	b, _ := g.State.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Error("replayed state differs from the generator's")
	}
}
