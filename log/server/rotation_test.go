package server_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/schema"
)

// TestConcurrentRotationsOneIssuer: 50 rotations for one issuer submitted
// at once through the HTTP API of a SQLite log admit exactly one; every
// other one is refused by the policy (naming its rule) and nothing else is
// logged. A start barrier (start, closed once every submitter is waiting)
// sends them together. Mutation (tried): admit without the policy (skip
// EvaluatePreverified in Sequencer.admit): "50 of 50 concurrent rotations
// admitted, want exactly 1". Tried and not caught here: evaluating a
// batch against the state it opened with (Apply after the loop), because
// over HTTP on a 2-core machine the rotations reach the sequencer in
// batches of one; the sequencer's TestConcurrentSubmitters exercises
// shared batches.
func TestConcurrentRotationsOneIssuer(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := logtest.Start(t, store, nil)
	is := issuertest.New(t, "https://rotating.example")
	for _, sub := range []func() *schema.Submission{
		func() *schema.Submission { return is.Register(t) },
		func() *schema.Submission { return is.Commit(t, 2, l.Clock.Now()) },
	} {
		res, err := l.Client.Submit(t.Context(), sub())
		if err != nil {
			t.Fatal(err)
		}
		is.Prev = res.LeafHash
	}
	// 61 days on, any one of these rotations alone would be admitted.
	l.Clock.Advance(61 * 24 * time.Hour)
	const n = 50
	subs := make([]*schema.Submission, n)
	for i := range subs {
		subs[i] = is.Commit(t, 2, l.Clock.Now())
	}
	_, before, err := l.Client.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cpBefore, err := l.Client.OpenCheckpoint(before)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	admitted, refused := 0, map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := l.Client.Submit(t.Context(), sub)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				admitted++
				return
			}
			rej, ok := client.Reject(err)
			if !ok {
				t.Errorf("rotation failed without a policy refusal: %v", err)
				return
			}
			refused[rej.Rule]++
		}()
	}
	close(start) // the start barrier
	wg.Wait()
	if admitted != 1 {
		t.Fatalf("%d of %d concurrent rotations admitted, want exactly 1 (refusals by rule: %v)", admitted, n, refused)
	}
	st, err := l.Client.Issuer(t.Context(), is.Origin)
	if err != nil {
		t.Fatal(err)
	}
	// The issuer's history: registration, first commitment, one rotation.
	if len(st.Entries) != 3 {
		t.Errorf("issuer has %d entries %v, want 3", len(st.Entries), st.Entries)
	}
	cp, _, err := l.Client.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// One commitment and the snapshot that follows it.
	if got := cp.Size - cpBefore.Size; got != 2 {
		t.Errorf("log grew by %d entries, want 2 (the rotation and its snapshot)", got)
	}
}
