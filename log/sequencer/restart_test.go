package sequencer

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
)

// countingMemory records the first index of every Entries read.
type countingMemory struct {
	*storage.Memory
	mu     sync.Mutex
	starts []uint64
}

func (c *countingMemory) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	c.mu.Lock()
	c.starts = append(c.starts, start)
	c.mu.Unlock()
	return c.Memory.Entries(ctx, start, end)
}

func (c *countingMemory) reset() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.starts
	c.starts = nil
	return s
}

// hideState hides the backend's PolicyStateReader: a full replay.
type hideState struct{ storage.Backend }

// TestRestartReplaysTail restarts a log whose backend stores policy
// states: the restart reads only the entries after the latest stored
// state (and the one before, for its time) and ends in exactly the state
// a full replay gives.
func TestRestartReplaysTail(t *testing.T) {
	be := &countingMemory{Memory: storage.NewMemory()}
	cfg, clock := newConfig(t, be)
	cfg.StateEvery = 10
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{cfg: cfg, clock: clock, seq: seq}
	t.Cleanup(func() { l.seq.Close() })
	var issuers []*issuertest.Issuer
	for i := 0; i < 24; i++ {
		is := issuertest.Numbered(t, i)
		issuers = append(issuers, is)
		submit(t, l, is, is.Register(t))
	}
	l.clock.Set(t0.Add(time.Hour))
	for _, is := range issuers[:5] {
		submit(t, l, is, is.Commit(t, 2, l.clock.Now()))
	}
	ps, err := be.PolicyState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	size, _ := l.seq.Checkpoint()
	if ps.Size == 0 || ps.Size >= size {
		t.Fatalf("stored policy state covers %d of %d entries; want a tail to replay", ps.Size, size)
	}
	want, err := l.seq.st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	be.reset()
	l.restart(t)
	for _, s := range be.reset() {
		if s+1 < ps.Size {
			t.Fatalf("restart read entries from %d; the stored state covers %d", s, ps.Size)
		}
	}
	got, _ := l.seq.st.MarshalBinary()
	if !bytes.Equal(got, want) {
		t.Fatal("state after loading the stored state and the tail differs from the state before the restart")
	}
	full, err := New(context.Background(), Config{Backend: hideState{be}, Signer: cfg.Signer, Verifier: cfg.Verifier, Clock: cfg.Clock})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	fullState, _ := full.st.MarshalBinary()
	if !bytes.Equal(got, fullState) {
		t.Fatal("state from the stored state and the tail differs from a full replay")
	}
	if l.seq.Now() != full.Now() {
		t.Fatalf("log time %v after the tail replay, %v after a full replay", l.seq.Now(), full.Now())
	}
	// The restarted log goes on.
	l.clock.Set(t0.Add(2 * time.Hour))
	submit(t, l, issuers[6], issuers[6].Commit(t, 1, l.clock.Now()))
}

// TestRestartBadPolicyState: a stored policy state that doesn't load, or
// whose tail doesn't apply, is ignored and every entry is replayed.
func TestRestartBadPolicyState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(good *storage.PolicyState) *storage.PolicyState
	}{
		{"garbage", func(g *storage.PolicyState) *storage.PolicyState {
			return &storage.PolicyState{Size: g.Size, Data: []byte("not a state")}
		}},
		{"size differs from its content", func(g *storage.PolicyState) *storage.PolicyState {
			return &storage.PolicyState{Size: g.Size - 1, Data: g.Data}
		}},
		{"state of size 0 (a full replay)", func(g *storage.PolicyState) *storage.PolicyState {
			st := policy.NewState()
			d, _ := st.MarshalBinary()
			return &storage.PolicyState{Size: 0, Data: d}
		}},
		{"beyond the tree", func(g *storage.PolicyState) *storage.PolicyState {
			return &storage.PolicyState{Size: g.Size + 100, Data: g.Data}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := storage.NewMemory()
			cfg, clock := newConfig(t, mem)
			cfg.StateEvery = 3
			if _, err := Init(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			seq, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			l := &testLog{cfg: cfg, clock: clock, seq: seq}
			t.Cleanup(func() { l.seq.Close() })
			for i := 0; i < 8; i++ {
				is := issuertest.Numbered(t, i)
				submit(t, l, is, is.Register(t))
			}
			want, _ := l.seq.st.MarshalBinary()
			good, err := mem.PolicyState(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			l.seq.Close()
			// Store the bad state with one more batch of the real log.
			bad := &badState{Backend: mem, ps: tc.state(good)}
			l.cfg.Backend = bad
			l.restart(t)
			got, _ := l.seq.st.MarshalBinary()
			if !bytes.Equal(got, want) {
				t.Fatal("state after restarting over a bad stored policy state differs")
			}
		})
	}
}

// badState serves a given policy state.
type badState struct {
	storage.Backend
	ps *storage.PolicyState
}

func (b *badState) PolicyState(ctx context.Context) (*storage.PolicyState, error) { return b.ps, nil }
