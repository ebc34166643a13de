package trilliantest

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestHarness starts Trillian, creates a tree, adds two leaves through the
// pre-ordered API and waits until the signer integrates them.
func TestHarness(t *testing.T) {
	e := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.CreateTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []*trillian.LogLeaf
	for i, v := range []string{"a", "b"} {
		leaves = append(leaves, &trillian.LogLeaf{LeafValue: []byte(v), LeafIndex: int64(i), LeafIdentityHash: rfc6962.DefaultHasher.HashLeaf([]byte(v))})
	}
	resp, err := e.Log.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: id, Leaves: leaves})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != nil && r.Status.Code != 0 {
			t.Fatalf("leaf refused: %v", r.Status)
		}
	}
	for {
		r, err := e.Log.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: id})
		if err != nil {
			t.Fatal(err)
		}
		var root types.LogRootV1
		if err := root.UnmarshalBinary(r.SignedLogRoot.LogRoot); err != nil {
			t.Fatal(err)
		}
		if root.TreeSize == 2 {
			want := rfc6962.DefaultHasher.HashChildren(leaves[0].LeafIdentityHash, leaves[1].LeafIdentityHash)
			if string(root.RootHash) != string(want) {
				t.Fatalf("root %x, want %x", root.RootHash, want)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("leaves not integrated: %v\n%s", ctx.Err(), e.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCPU: the Trillian processes' CPU time is read (Linux), and grows
// while they work: a thousand leaves queued and integrated take well over
// a clock tick.
func TestCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: CPU times are read from it")
	}
	e := Start(t, Options{})
	before, err := e.CPU()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.CreateTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		v := []byte("leaf " + strconv.Itoa(i))
		h := rfc6962.DefaultHasher.HashLeaf(v)
		if _, err := e.Log.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: id, Leaves: []*trillian.LogLeaf{{LeafValue: v, LeafIndex: int64(i), LeafIdentityHash: h, MerkleLeafHash: h}}}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := e.CPU()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("the Trillian processes' CPU time went from %v to %v over 1000 AddSequencedLeaves calls", before, after)
	}
}
