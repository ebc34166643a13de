package witness_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keycommit/keycommit/witness"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// submitOutcome is what one client of the witness saw.
type submitOutcome struct {
	target   uint64
	statuses []int
	cosig    []byte // set on 200
	final    int    // last status
}

// submit drives one checkpoint to the witness the way a log does: start
// from old (the size the log believes the witness has), follow 409
// answers, stop on anything else or when the witness is already past the
// target.
func submit(t *testing.T, tw *testWitness, l *testLog, old, target uint64) submitOutcome {
	return submitVia(t, func(b []byte) response { return tw.post(t, b) }, l, old, target, l.checkpoint(t, target), nil)
}

// direct calls the witness's AddCheckpoint in process, without HTTP, so
// that requests released together reach it together.
func direct(tw *testWitness) func([]byte) response {
	return func(b []byte) response {
		cosig, err := tw.w.AddCheckpoint(context.Background(), b)
		var e *witness.Error
		switch {
		case err == nil:
			return response{status: 200, body: cosig}
		case errors.As(err, &e) && e.Status == 409:
			return response{status: 409, ctype: "text/x.tlog.size", body: []byte(strconv.FormatUint(e.Size, 10) + "\n")}
		case errors.As(err, &e):
			return response{status: e.Status, body: []byte(e.Error())}
		}
		return response{status: 500, body: []byte(err.Error())}
	}
}

// submitVia is submit through post, with the log's checkpoint cp of size
// target. first, if set, is the first request's body (both made before a
// start barrier, so that the requests are sent together).
func submitVia(t *testing.T, post func([]byte) response, l *testLog, old, target uint64, cp, first []byte) submitOutcome {
	out := submitOutcome{target: target}
	for attempt := 0; attempt < 10000; attempt++ {
		var body []byte
		if attempt == 0 && first != nil {
			body = first
		} else {
			body = requestBody(old, l.proof(t, old, target), cp)
		}
		r := post(body)
		out.statuses = append(out.statuses, r.status)
		out.final = r.status
		switch r.status {
		case 200:
			out.cosig = r.body
			return out
		case 409:
			n, err := strconv.ParseUint(string(bytes.TrimSuffix(r.body, []byte("\n"))), 10, 64)
			if err != nil || r.ctype != "text/x.tlog.size" {
				t.Errorf("409 with %q %q", r.ctype, r.body)
				return out
			}
			if n > target {
				return out // legitimately refused: the witness is past us
			}
			old = n
		default:
			return out
		}
	}
	t.Errorf("target %d: no answer but 409 after 10000 attempts", target)
	return out
}

// TestConcurrentInterleavedSizes: 100 concurrent clients of one log with
// sizes 1..100 in random order, released together by a start barrier.
// Nothing may be refused except with 409, the witness's published state
// never goes backwards, and it ends at the largest. Mutation: advance the
// in-memory state without st.mu (or before the size check) and a smaller
// checkpoint is cosigned after a larger one: the monitoring read goes
// backwards or a 422/503 appears.
func TestConcurrentInterleavedSizes(t *testing.T) {
	l := newTestLog(t, "example.com/busy", 100)
	tw := newTestWitness(t, l)
	wv, _ := fnote.NewVerifierForCosignatureV1(tw.vkey)
	lv, _ := note.NewVerifier(l.vkey)

	stop := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() { // a monitor polling the monitoring read
		defer close(monitorDone)
		var last uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := tw.get(t, originPath(l.origin))
			if r.status == 404 {
				continue
			}
			n, err := note.Open(r.body, note.VerifierList(wv, lv))
			if err != nil || len(n.Sigs) != 2 {
				t.Errorf("monitoring read does not verify: %v %q", err, r.body)
				return
			}
			size, _ := strconv.ParseUint(strings.SplitN(n.Text, "\n", 3)[1], 10, 64)
			if size < last {
				t.Errorf("monitoring read went backwards: %d after %d", size, last)
			}
			if n.Text != l.text(size) {
				t.Errorf("monitoring read at size %d is not the log's checkpoint", size)
			}
			last = size
		}
	}()

	targets := rand.Perm(100)
	outcomes := make([]submitOutcome, len(targets))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outcomes[i] = submit(t, tw, l, 0, uint64(p+1))
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	<-monitorDone

	cosigned := 0
	for _, o := range outcomes {
		for _, s := range o.statuses {
			if s != 200 && s != 409 {
				t.Errorf("target %d: status %d, only 200 and 409 are allowed here (%v)", o.target, s, o.statuses)
			}
		}
		if o.final == 200 {
			cosigned++
			verifyCosigned(t, tw.vkey, l, l.checkpoint(t, o.target), o.cosig)
		}
	}
	if outcomes[indexOf(targets, 99)].final != 200 {
		t.Errorf("the largest checkpoint was not cosigned: %v", outcomes[indexOf(targets, 99)].statuses)
	}
	if r := tw.add(t, l, 0, 100); r.status != 409 || string(r.body) != "100\n" {
		t.Errorf("final witness size: %d %q, want 409 100", r.status, r.body)
	}
	t.Logf("%d of 100 checkpoints cosigned, the rest overtaken (409)", cosigned)
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestConcurrentForkRace: for each of 50 logs, two branches (same key)
// that share the witness's cosigned checkpoint of size 20 and differ from
// entry 20 on, each alone consistent with what the witness cosigned. For
// each log in turn an honest and a forked checkpoint of size 30 are sent
// at once from old 20 (a spinning start barrier releases both requests
// together, on two threads, into AddCheckpoint in process), so that the
// two branches race at the same size. The witness must cosign one branch
// of each log only; the other request gets 409, then 422.
//
// Mutation (tried): check the request against the state read before
// signing instead of re-checking under st.mu (drop the compare-and-swap
// in AddCheckpoint), and make the store's update unconditional (drop
// "AND size = ? AND root = ?" from updateSQL): both branches are
// cosigned and the test fails with "cosigned both branches". With only
// the in-memory check dropped, the store's compare-and-swap refuses the
// batch and requests get 503, which fails the test too.
func TestConcurrentForkRace(t *testing.T) {
	const logs = 50
	var honest, forks []*testLog
	for i := range logs {
		l := newTestLog(t, "example.com/race"+strconv.Itoa(i), 30)
		honest = append(honest, l)
		forks = append(forks, l.fork(20, 30))
	}
	tw := newTestWitness(t, honest...)
	for _, l := range honest {
		if r := tw.add(t, l, 0, 20); r.status != 200 {
			t.Fatalf("cosign 20: %d %s", r.status, r.body)
		}
	}
	defer runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))

	raced := 0
	for i := range logs {
		branches := []*testLog{honest[i], forks[i]}
		var outcomes [2]submitOutcome
		var wg, ready sync.WaitGroup
		var released atomic.Bool
		ready.Add(2)
		for b, l := range branches {
			cp := l.checkpoint(t, 30)
			first := requestBody(20, l.proof(t, 20, 30), cp)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				for !released.Load() { // spin: both threads run when it opens
				}
				outcomes[b] = submitVia(t, direct(tw), l, 20, 30, cp, first)
			}()
		}
		ready.Wait()
		released.Store(true)
		wg.Wait()

		won := 0
		for b, o := range outcomes {
			for _, s := range o.statuses {
				if s != 200 && s != 409 && s != 422 {
					t.Errorf("log %d branch %d: status %d (%v)", i, b, s, o.statuses)
				}
			}
			if o.final == 200 {
				won++
				verifyCosigned(t, tw.vkey, branches[b], branches[b].checkpoint(t, 30), o.cosig)
			}
		}
		if won != 1 {
			t.Errorf("log %d: %d branches cosigned (honest %v, fork %v); want exactly one", i, won, outcomes[0].statuses, outcomes[1].statuses)
			if won == 2 {
				t.Errorf("log %d: the witness cosigned both branches", i)
			}
		}
		if outcomes[0].statuses[0] == 409 || outcomes[1].statuses[0] == 409 {
			raced++
		}
	}
	t.Logf("%d of %d logs: the loser's first request was answered 409 after the winner advanced the state", raced, logs)
}
