package witness_test

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

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
// from old 0, follow 409 answers, stop on anything else or when the witness
// is already past the target.
func submit(t *testing.T, tw *testWitness, l *testLog, target uint64) submitOutcome {
	out := submitOutcome{target: target}
	old := uint64(0)
	cp := l.checkpoint(t, target)
	for attempt := 0; attempt < 10000; attempt++ {
		r := tw.post(t, requestBody(old, l.proof(t, old, target), cp))
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
// sizes 1..100 in random order. Nothing may be refused except with 409, the
// witness's published state never goes backwards, and it ends at the largest.
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
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = submit(t, tw, l, uint64(p+1))
		}()
	}
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

// TestConcurrentForkRace: 50 clients submit an honest branch and 50 a fork
// of it (same log key), concurrently, starting from a common cosigned size.
// The witness must cosign checkpoints of one branch only.
func TestConcurrentForkRace(t *testing.T) {
	l := newTestLog(t, "example.com/race", 70)
	tw := newTestWitness(t, l)
	if r := tw.add(t, l, 0, 20); r.status != 200 {
		t.Fatalf("cosign 20: %d %s", r.status, r.body)
	}
	fork := l.fork(15, 70)

	type job struct {
		branch string
		log    *testLog
		target uint64
	}
	var jobs []job
	for s := uint64(21); s <= 70; s++ {
		jobs = append(jobs, job{"honest", l, s}, job{"fork", fork, s})
	}
	rand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	outcomes := make([]submitOutcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = submit(t, tw, j.log, j.target)
		}()
	}
	wg.Wait()

	winners := map[string]int{}
	for i, o := range outcomes {
		for _, s := range o.statuses {
			if s != 200 && s != 409 && s != 422 {
				t.Errorf("%s %d: status %d", jobs[i].branch, o.target, s)
			}
		}
		if o.final == 200 {
			winners[jobs[i].branch]++
			verifyCosigned(t, tw.vkey, jobs[i].log, jobs[i].log.checkpoint(t, o.target), o.cosig)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("witness cosigned checkpoints from %d branches: %v", len(winners), winners)
	}
	for i, o := range outcomes {
		if _, won := winners[jobs[i].branch]; won && o.final == 422 {
			t.Errorf("winning branch %s %d refused with 422", jobs[i].branch, o.target)
		}
	}
	t.Logf("cosigned: %v", winners)
}
