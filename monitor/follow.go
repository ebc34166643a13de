package monitor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/policy"
)

// A follower follows one log, in rounds (see round), each step in its
// own file:
//
//  1. consistency.go: the log's checkpoint (or a gossiped one) is checked
//     against the anchor, the largest checkpoint known consistent with
//     everything verified so far, and moves it forward or becomes
//     split-view evidence;
//  2. inclusion.go: the entry bundles up to the anchor are fetched and
//     every entry's inclusion proved through the log's tiles;
//  3. catchup.go: the entries are replayed in log order (replay.go) and
//     the progress committed, the anchor becoming the verified checkpoint.
type follower struct {
	m        *Monitor
	origin   string
	vkey     string
	url      string
	verifier c2sp.Verifier
	client   *tileClient
	tv       *verify.Verifier // with Config.WitnessPolicy: verifies cosignatures (time.go)

	mu       sync.Mutex // guards the fields below, read by gossip
	anchor   *Checkpoint
	verified *Checkpoint
	position int64
	stuck    string // why following stopped (a split view), or ""

	obsMu     sync.Mutex // one observe at a time: the anchor only moves forward, along one history
	runMu     sync.Mutex // one round (and one policy state user) at a time
	st        *policy.State
	keys      *accountKeys // the account keys in st, for the fetch workers
	savedPos  int64
	savedTime time.Time
	// clUnsaved is what the cross-log check recorded from entries not yet
	// saved (crosslog.go); the next save stores it.
	clUnsaved clRecord
}

func newFollower(ctx context.Context, m *Monitor, lc LogConfig) (*follower, error) {
	v, err := c2sp.NewVerifier(lc.VKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log verifier key %q: %w", lc.VKey, err)
	}
	origin := lc.Origin
	if origin == "" {
		origin = v.Name()
	}
	f := &follower{m: m, origin: origin, vkey: lc.VKey, url: lc.URL, verifier: v,
		client: newTileClient(lc.URL, m.hc), st: policy.NewLogState(origin)}
	if m.cfg.WitnessPolicy != nil {
		if f.tv, err = verify.New(verify.Config{LogKey: lc.VKey, Origin: origin, Policy: m.cfg.WitnessPolicy}); err != nil {
			return nil, fmt.Errorf("log %s under the witness policy: %w", origin, err)
		}
	}
	row, ok, err := m.store.loadLog(ctx, origin)
	if err != nil {
		return nil, err
	}
	if ok {
		if row.vkey != lc.VKey {
			return nil, fmt.Errorf("the monitor database follows log %s with key %s, not %s; use another --data directory", origin, row.vkey, lc.VKey)
		}
		if row.anchor != nil {
			if f.anchor, err = openCheckpoint(row.anchor, v, origin); err != nil {
				return nil, fmt.Errorf("stored checkpoint of log %s: %w", origin, err)
			}
		}
		if row.verified != nil {
			if f.verified, err = openCheckpoint(row.verified, v, origin); err != nil {
				return nil, fmt.Errorf("stored verified checkpoint of log %s: %w", origin, err)
			}
		}
		if row.state != nil {
			if f.st, err = policy.UnmarshalState(row.state); err != nil {
				return nil, fmt.Errorf("stored policy state of log %s: %w", origin, err)
			}
			if err := f.st.BindLog(origin); err != nil {
				return nil, fmt.Errorf("stored policy state of log %s: %w", origin, err)
			}
		}
		if int64(f.st.Size()) != row.position {
			return nil, fmt.Errorf("stored policy state of log %s has %d entries but the replay position is %d", origin, f.st.Size(), row.position)
		}
		f.position = row.position
	}
	if err := m.store.initLog(ctx, origin, lc.VKey, lc.URL); err != nil {
		return nil, err
	}
	f.savedPos, f.savedTime = f.position, time.Now()
	return f, nil
}

// status returns a snapshot of the follower's progress.
func (f *follower) status() LogStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := LogStatus{Origin: f.origin, URL: f.url, Position: f.position, Stuck: f.stuck}
	if f.verified != nil {
		s.VerifiedSize = f.verified.Size
		s.VerifiedRoot = f.verified.Root.String()
		s.Checkpoint = string(f.verified.Note)
	}
	if f.anchor != nil {
		s.AnchorSize = f.anchor.Size
	}
	return s
}

func (f *follower) getAnchor() *Checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.anchor
}

// round fetches the log's checkpoint, checks it against what the monitor
// verified before, and replays every entry up to it.
func (f *follower) round(ctx context.Context) error {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	raw, err := f.client.get(ctx, "checkpoint", maxNoteSize)
	if err != nil {
		return fmt.Errorf("couldn't fetch the checkpoint of %s: %w", f.origin, err)
	}
	cp, err := openCheckpoint(raw, f.verifier, f.origin)
	if err != nil {
		f.m.raise(ctx, Alert{Log: f.origin, Kind: KindCheckpoint, Rule: RuleSignature,
			Message: fmt.Sprintf("the log served a checkpoint that does not verify: %v", err)})
		return fmt.Errorf("checkpoint of %s: %w", f.origin, err)
	}
	res, _, err := f.observe(ctx, cp, "log "+f.url)
	if err != nil {
		return err
	}
	if res == resultSplit {
		return fmt.Errorf("the checkpoint %s served by the log is inconsistent with the monitor's verified history; see the split-view evidence", cp)
	}
	if err := f.checkLatest(ctx, cp); err != nil {
		return err
	}
	if err := f.catchUp(ctx); err != nil {
		return err
	}
	if err := f.m.processCrossLog(ctx); err != nil {
		return fmt.Errorf("cross-log check: %w", err)
	}
	return f.recheckPending(ctx)
}
