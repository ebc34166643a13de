package witness_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/witness"
	"github.com/keycommit/keycommit/witness/quorum"
)

// TestTesseraInterop runs a real third-party log, Tessera with its POSIX
// driver, configured with our witness through Tessera's own witness policy
// support. Its published checkpoints must carry our cosignature, verified
// with formats/note, over several rounds of growth (so Tessera's
// consistency proofs are checked too).
func TestTesseraInterop(t *testing.T) { testTesseraInterop(t, nil) }

// TestTesseraInteropMLDSA is TestTesseraInterop with an ML-DSA-44-only
// witness: Tessera (through formats/note) accepts its type 0x06 vkey and
// publishes checkpoints carrying its tlog-cosignature v1.1 cosignature,
// which formats/note and our quorum verifier verify.
func TestTesseraInteropMLDSA(t *testing.T) {
	testTesseraInterop(t, &witness.Keys{MLDSA44: true})
}

// testTesseraInterop runs the Tessera interop test with a witness of keys
// (nil: newTestWitness's Ed25519 key).
func testTesseraInterop(t *testing.T, keys *witness.Keys) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	origin := "example.com/tessera-interop"
	skey, vkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	var tw *testWitness
	if keys == nil {
		tw = newTestWitness(t)
	} else {
		tw, _ = newKeysWitness(t, *keys)
	}
	if err := tw.store.AddLog(ctx, origin, vkey); err != nil {
		t.Fatal(err)
	}

	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", vkey, tw.vkey, tw.srv.URL)
	group, err := tessera.NewWitnessGroupFromPolicy([]byte(policy))
	if err != nil {
		t.Fatalf("tessera rejects our policy: %v", err)
	}
	driver, err := posix.New(ctx, posix.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(logSigner).
		WithBatching(64, 20*time.Millisecond).
		WithCheckpointInterval(100*time.Millisecond).
		WithWitnesses(group, &tessera.WitnessOptions{Timeout: time.Minute})
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		t.Fatal(err)
	}
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)

	cosigV, err := fnote.NewVerifierForCosignatureV1(tw.vkey)
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ourPolicy, err := quorum.Parse([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}

	var lastSize uint64
	for round, n := range []int{1, 7, 300, 5} {
		var futures []tessera.IndexFuture
		for i := 0; i < n; i++ {
			futures = append(futures, appender.Add(ctx, tessera.NewEntry([]byte(fmt.Sprintf("round %d entry %d", round, i)))))
		}
		var cp []byte
		for _, f := range futures {
			_, c, err := awaiter.Await(ctx, f)
			if err != nil {
				t.Fatalf("round %d: await: %v", round, err)
			}
			cp = c
		}
		// Tessera publishes only witnessed checkpoints; check ours is on it.
		nt, err := note.Open(cp, note.VerifierList(logV, cosigV))
		if err != nil {
			t.Fatalf("round %d: checkpoint does not verify: %v\n%s", round, err, cp)
		}
		var logOK, cosigOK bool
		for _, s := range nt.Sigs {
			logOK = logOK || (s.Name == logV.Name() && s.Hash == logV.KeyHash())
			cosigOK = cosigOK || (s.Name == cosigV.Name() && s.Hash == cosigV.KeyHash())
		}
		if !logOK || !cosigOK {
			t.Fatalf("round %d: published checkpoint lacks the log signature or our cosignature:\n%s", round, cp)
		}
		if res, err := ourPolicy.Verify(cp); err != nil || !res.QuorumMet {
			t.Fatalf("round %d: our quorum verifier rejects the checkpoint: %v", round, err)
		}
		size, err := strconv.ParseUint(strings.Split(nt.Text, "\n")[1], 10, 64)
		if err != nil || size < lastSize+uint64(n) {
			t.Fatalf("round %d: checkpoint size %d, want at least %d", round, size, lastSize+uint64(n))
		}
		lastSize = size
		// The witness's own record agrees.
		r := tw.get(t, originPath(origin))
		if r.status != 200 {
			t.Fatalf("round %d: witness monitoring read: %d %s", round, r.status, r.body)
		}
		wsize, err := strconv.ParseUint(strings.Split(string(r.body), "\n")[1], 10, 64)
		if err != nil || wsize < size {
			t.Fatalf("round %d: witness reports size %d (%v), want at least %d", round, wsize, err, size)
		}
		if wsize == size && !bytes.HasPrefix(r.body, []byte(nt.Text)) {
			t.Fatalf("round %d: witness holds a different checkpoint of size %d:\n%s", round, size, r.body)
		}
	}
	if err := shutdown(ctx); err != nil {
		t.Fatalf("tessera shutdown: %v", err)
	}
	logs, err := tw.store.Logs(ctx)
	if err != nil || len(logs) != 1 || logs[0].Size < lastSize {
		t.Fatalf("witness state %+v (%v), want size >= %d", logs, err, lastSize)
	}
}
