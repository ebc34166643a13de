package monitor

import (
	"bytes"
	"context"
	"time"
)

// Step 3 of following a log (see follow.go): the verified entries are
// replayed in log order (see replayer) and the replay position, policy
// state and alerts are committed, the anchor becoming the verified
// checkpoint once the replay reaches it.

// catchUp replays every entry up to the anchor.
func (f *follower) catchUp(ctx context.Context) error {
	anchor := f.getAnchor()
	if anchor == nil {
		return nil
	}
	f.mu.Lock()
	pos := f.position
	f.mu.Unlock()
	if pos >= anchor.Size {
		f.mu.Lock()
		stale := f.verified == nil || !bytes.Equal(f.verified.Note, anchor.Note)
		f.mu.Unlock()
		if stale && pos == anchor.Size {
			return f.save(ctx, nil, true)
		}
		return nil
	}
	if f.keys == nil {
		f.keys = newAccountKeys(f.st)
	}
	r := &replayer{origin: f.origin, st: f.st, now: f.m.now, keys: f.keys,
		watched: func(issuer string, idx int64) bool { return f.m.watched(f.origin, issuer, idx) }}
	f.mu.Lock()
	from := f.verified
	f.mu.Unlock()
	tc, err := f.newTimeCheck(ctx, anchor, from)
	if err != nil {
		return err
	}
	rec := &clRecord{}
	start, startTime := pos, time.Now()
	lastLog := startTime
	err = f.stream(ctx, anchor.tree(), pos, f.keys, func(batch []*bundleData) error {
		before := pos
		for _, bd := range batch {
			for j := range bd.entries {
				idx := bd.n*tileWidth + int64(j)
				if idx < pos {
					continue
				}
				if err := r.entry(idx, bd.leaves[j], bd.parsed[j], bd.perrs[j], bd.verified[j]); err != nil {
					return err
				}
				tc.entry(idx, bd.entries[j], bd.parsed[j])
				rec.entry(idx, bd.parsed[j], f.st)
				pos = idx + 1
			}
		}
		f.mu.Lock()
		f.position = pos
		f.mu.Unlock()
		f.m.metrics.position.WithLabelValues(f.origin).Set(float64(pos))
		f.m.metrics.entries.WithLabelValues(f.origin).Add(float64(pos - before))
		if err := tc.flush(ctx); err != nil {
			return err
		}
		f.m.cross.add(f.origin, rec)
		f.clUnsaved.merge(rec)
		rec = &clRecord{}
		alerts := r.takeAlerts()
		if len(alerts) > 0 || pos-f.savedPos >= f.m.cfg.SaveEvery || time.Since(f.savedTime) >= f.m.cfg.SaveInterval || pos == anchor.Size {
			if err := f.save(ctx, alerts, pos == anchor.Size); err != nil {
				return err
			}
		}
		if now := time.Now(); now.Sub(lastLog) >= f.m.cfg.ProgressInterval && pos < anchor.Size {
			lastLog = now
			rate := float64(pos-start) / now.Sub(startTime).Seconds()
			f.m.log.Info("catching up", "log", f.origin, "position", pos, "target", anchor.Size,
				"entries_per_second", int64(rate), "eta", time.Duration(float64(anchor.Size-pos)/rate*float64(time.Second)).Round(time.Second).String())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d := time.Since(startTime); pos > start {
		f.m.log.Info("caught up", "log", f.origin, "size", pos, "entries", pos-start,
			"seconds", d.Seconds(), "entries_per_second", int64(float64(pos-start)/d.Seconds()))
	}
	return nil
}

// save commits the replay position, the policy state and the alerts;
// with done, the anchor becomes the verified checkpoint.
func (f *follower) save(ctx context.Context, alerts []Alert, done bool) error {
	state, err := f.st.MarshalBinary()
	if err != nil {
		return err
	}
	f.mu.Lock()
	pos := f.position
	anchor := f.anchor
	f.mu.Unlock()
	var verified []byte
	if done && anchor != nil && pos == anchor.Size {
		verified = anchor.Note
	}
	if err := f.m.store.saveProgress(ctx, f.origin, verified, pos, state, alerts, &f.clUnsaved); err != nil {
		if len(alerts) > 0 {
			f.m.unstored(alerts, err)
		}
		return err
	}
	f.savedPos, f.savedTime = pos, time.Now()
	f.clUnsaved = clRecord{}
	if verified != nil {
		f.mu.Lock()
		f.verified = anchor
		f.mu.Unlock()
		f.m.metrics.verifiedSize.WithLabelValues(f.origin).Set(float64(anchor.Size))
	}
	if len(alerts) > 0 {
		return f.m.deliver(ctx)
	}
	return nil
}
