package logtest

import (
	"sync"
	"testing"
	"time"
)

// Timer is a fake sequencer.Config.After driven by a Clock: the witness
// loop asks it to wait, and the test decides when the wait is over, so
// that simulated days pass without real waiting. Only the latest wait
// asked for is pending (the loop asks again after every event).
type Timer struct {
	clock   *Clock
	mu      sync.Mutex
	pending *timerWait
	asked   chan struct{} // signalled when a wait is asked for
}

type timerWait struct {
	d time.Duration
	c chan time.Time
}

// NewTimer returns a fake timer over clock (nil for Options.Timer:
// Start sets it to the log's clock).
func NewTimer(clock *Clock) *Timer {
	return &Timer{clock: clock, asked: make(chan struct{}, 1)}
}

// After implements sequencer.Config.After.
func (f *Timer) After(d time.Duration) <-chan time.Time {
	w := &timerWait{d: d, c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.pending = w
	f.mu.Unlock()
	select {
	case f.asked <- struct{}{}:
	default:
	}
	return w.c
}

// Wait blocks until the loop waits (it has finished handling the
// previous event) and returns how long it asked to wait. It fails the
// test if the loop does not ask within a minute (a hung loop, not a
// timing assertion).
func (f *Timer) Wait(tb testing.TB) time.Duration {
	tb.Helper()
	deadline := time.After(time.Minute)
	for {
		f.mu.Lock()
		w := f.pending
		f.mu.Unlock()
		if w != nil {
			return w.d
		}
		select {
		case <-f.asked:
		case <-deadline:
			tb.Fatal("logtest: the witness loop never waited")
		}
	}
}

// Fire waits as Wait does, advances the clock by the wait and ends it.
// It returns the wait.
func (f *Timer) Fire(tb testing.TB) time.Duration {
	tb.Helper()
	d := f.Wait(tb)
	f.mu.Lock()
	w := f.pending
	f.pending = nil
	f.mu.Unlock()
	f.clock.Advance(d)
	w.c <- f.clock.Now()
	return d
}
