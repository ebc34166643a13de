package sequencer_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/note"
)

func benchConfig(b *testing.B, be storage.Backend) sequencer.Config {
	skey, vkey, _ := checkpoint.GenerateKey(issuertest.DefaultLog)
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return sequencer.Config{Backend: be, Signer: s, Verifier: v, OriginControl: issuertest.AssumeControl}
}

// registrations returns n self-signed registrations of distinct issuers.
func registrations(b *testing.B, n int) []*schema.Submission {
	subs := make([]*schema.Submission, n)
	for i := range subs {
		subs[i] = issuertest.Numbered(b, i).Register(b)
	}
	return subs
}

// BenchmarkSequencerSQLite measures durable sequencing throughput of the
// log core: many concurrent submitters, every entry admitted by the full
// policy, persisted with fsync and answered with a proof. The issuer
// signatures were checked before the timer starts (Prepare, which Submit
// runs on each submitter's goroutine); BenchmarkSequencerSQLiteVerify
// includes them.
//
// Each submitter waits for its answer before it submits again, so the
// throughput is at most submitters/latency: with 512 submitters it
// measures latency (fsync included) as much as capacity; with 4096 (one
// full batch) the log's capacity.
func BenchmarkSequencerSQLite(b *testing.B) {
	for _, n := range []int{512, 4096} {
		b.Run(fmt.Sprintf("submitters=%d", n), func(b *testing.B) { benchSequencer(b, false, n) })
	}
}

// BenchmarkSequencerSQLiteVerify is BenchmarkSequencerSQLite with the
// signature checks inside the timed part (Submit).
func BenchmarkSequencerSQLiteVerify(b *testing.B) { benchSequencer(b, true, 4096) }

func benchSequencer(b *testing.B, verify bool, submitters int) {
	ctx := context.Background()
	store, err := sqlitestore.Create(ctx, filepath.Join(b.TempDir(), "log.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := benchConfig(b, store)
	if _, err := sequencer.Init(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	seq, err := sequencer.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer seq.Close()
	subs := registrations(b, b.N)
	var preps []*sequencer.Prepared
	if !verify {
		preps = make([]*sequencer.Prepared, len(subs))
		for i, s := range subs {
			preps[i] = seq.Prepare(s)
		}
	}
	b.ResetTimer()
	runSubmitters(b, submitters, len(subs), func(i int) error {
		if verify {
			_, err := seq.Submit(ctx, subs[i])
			return err
		}
		_, err := seq.SubmitPrepared(ctx, preps[i])
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func runSubmitters(b *testing.B, workers, n int, submit func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := submit(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRawSQLiteInsertBaseline is the baseline for
// BenchmarkSequencerSQLite: batched inserts of entry-sized rows into one
// table, 4096 per transaction, with the same durability (WAL,
// synchronous=FULL) and no policy, hashing or signing.
func BenchmarkRawSQLiteInsertBaseline(b *testing.B) {
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	row := []byte(strings.Repeat("x", 400))
	b.ResetTimer()
	for i := 0; i < b.N; {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, _ := tx.Prepare(`INSERT INTO entries (idx, data) VALUES (?, ?)`)
		for j := 0; j < 4096 && i < b.N; j, i = j+1, i+1 {
			if _, err := st.Exec(i, row); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkResidentMemory1M builds a log of 1,000,000 entries in SQLite
// (10,000 issuers, each a registration and 99 renewals) with the policy
// state stored with the batch ending within 8,192 entries of the end,
// starts a sequencer on it (ns/op: it loads the stored state and applies
// the tail) and reports the process's resident size; s-full-replay is the
// baseline, a start that replays every entry. It takes minutes: it runs
// only with KEYCOMMIT_BENCH_1M=1.
func BenchmarkResidentMemory1M(b *testing.B) {
	if os.Getenv("KEYCOMMIT_BENCH_1M") != "1" {
		b.Skip("set KEYCOMMIT_BENCH_1M=1 to build a 1,000,000-entry log")
	}
	const total, issuers = 1_000_000, 10_000
	ctx := context.Background()
	path, cfg := buildLog(b, total, issuers, 8192)
	store, err := sqlitestore.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg.Backend = store
	runtime.GC()
	debug.FreeOSMemory()
	b.ResetTimer()
	seq, err := sequencer.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	debug.FreeOSMemory()
	size, _ := seq.Checkpoint()
	if size != total {
		b.Fatalf("size %d", size)
	}
	b.ReportMetric(rssMiB(b), "MiB-RSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
	seq.Close()

	cfg.Backend = hiddenState{store}
	start := time.Now()
	full, err := sequencer.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "s-full-replay")
	full.Close()
}

func rssMiB(b *testing.B) float64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(s), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
