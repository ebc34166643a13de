package explorer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	benchEntries = 100_000
	benchIssuers = 10_000
	benchHeavy   = 10 // issuers with 40 commitments each
	maxPageBytes = 512 << 10
)

// statePolicy is the explorer's Policy (and the API server's Log) over a
// policy.State built by Apply, as the sequencer holds it.
type statePolicy struct {
	st  *policy.State
	now int64
}

func (p *statePolicy) Status(o string) (*policy.IssuerStatus, bool) { return p.st.Status(o, p.now) }
func (p *statePolicy) Params() schema.PolicyParams                  { return p.st.Params() }
func (p *statePolicy) Check(context.Context, *schema.Submission) policy.Decision {
	return policy.Decision{}
}
func (p *statePolicy) Submit(context.Context, *schema.Submission) (*sequencer.Result, error) {
	return nil, errors.New("read-only")
}

type benchLog struct {
	backend  *storage.Memory
	verifier note.Verifier
	policy   *statePolicy
	heavy    string
	normal   string
}

var (
	benchOnce sync.Once
	benchData *benchLog
	benchErr  error
)

// buildBenchLog makes a log of benchEntries entries and benchIssuers
// issuers directly in an in-memory backend (tiles and checkpoints as the
// sequencer computes them, the policy state by Apply): entry 0 the policy
// parameters; per issuer a registration and a commitment; benchHeavy
// issuers with a rotation every 2,500 entries, every fourth an emergency
// with its final report; the rest registration renewals.
func buildBenchLog(tb testing.TB) (*benchLog, error) {
	skey, vkey, err := checkpoint.GenerateKey("keycommit.example/log/bench")
	if err != nil {
		return nil, err
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	b := storage.NewMemory()
	st := policy.NewState()
	app, err := tiles.NewAppender(0, nil)
	if err != nil {
		return nil, err
	}
	t0 := logtest.T0.UnixMilli()
	step := int64(30 * time.Minute / time.Millisecond)
	var batch []storage.Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		hs := make([]tlog.Hash, len(batch))
		for i, e := range batch {
			hs[i] = e.LeafHash
		}
		u, err := app.Append(hs)
		if err != nil {
			return err
		}
		cp, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "keycommit.example/log/bench", Size: uint64(u.Size), Hash: u.Root}, signer)
		if err != nil {
			return err
		}
		if err := b.Append(context.Background(), &storage.Batch{Start: uint64(u.OldSize), Entries: batch, Tiles: u.Tiles, Checkpoint: cp}); err != nil {
			return err
		}
		batch = nil
		return nil
	}
	n := uint64(0)
	add := func(e *schema.Entry) error {
		data, err := e.Marshal()
		if err != nil {
			return err
		}
		leaf := tiles.LeafHash(data)
		parsed, err := schema.ParseEntry(data)
		if err != nil {
			return err
		}
		if err := st.Apply(parsed, n, leaf); err != nil {
			return err
		}
		batch = append(batch, storage.Entry{Data: data, LeafHash: leaf, Issuer: e.Issuer})
		n++
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	}
	type iss struct {
		origin string
		key    ed25519.PrivateKey
		prev   []byte
		nextID uint32
	}
	issuers := make([]*iss, benchIssuers)
	sign := func(is *iss, k schema.Kind, body any) error {
		raw, err := schema.CanonicalizeBody(k, body)
		if err != nil {
			return err
		}
		sub, err := schema.Sign(schema.Statement{Kind: k, Log: "keycommit.example/log/bench", Issuer: is.origin, Prev: is.prev, Body: raw}, is.key)
		if err != nil {
			return err
		}
		e := schema.NewEntry(sub, t0+int64(n)*step)
		data, _ := e.Marshal()
		h := tiles.LeafHash(data)
		is.prev = h[:]
		return add(e)
	}
	commit := func(is *iss, emergency bool) error {
		now := time.UnixMilli(t0 + int64(n)*step)
		c := &schema.KeyCommitment{PST: issuertest.Commitment(tb, is.nextID, 1, now.Add(30*24*time.Hour))}
		if emergency {
			c.Emergency = &schema.IncidentReport{Summary: "signing key exposed in a backup", Discovered: now.UnixMilli() - 3600_000,
				Impact: "tokens could be forged until rotation", RootCause: "a public backup bucket",
				Remediation: "rotated the keys, closed the bucket", URL: is.origin + "/incidents/" + strconv.FormatUint(n, 10)}
		}
		is.nextID++
		if err := sign(is, schema.KindKeyCommitment, c); err != nil {
			return err
		}
		if emergency {
			final := *c.Emergency
			final.Summary = "final: " + final.Summary
			return sign(is, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: n - 1, Report: final})
		}
		return nil
	}
	params, err := schema.NewLogEntry(schema.KindPolicyParams, t0, policy.DefaultParams())
	if err != nil {
		return nil, err
	}
	if err := add(params); err != nil {
		return nil, err
	}
	for i := range issuers {
		seed := sha256.Sum256([]byte("bench/" + strconv.Itoa(i)))
		o := fmt.Sprintf("https://issuer%d.example", i)
		if i < benchHeavy {
			o = fmt.Sprintf("https://heavy%d.example", i)
		}
		is := &iss{origin: o, key: ed25519.NewKeyFromSeed(seed[:]), nextID: 1}
		issuers[i] = is
		pub := is.key.Public().(ed25519.PublicKey)
		if err := sign(is, schema.KindRegistration, &schema.Registration{Contact: "mailto:keys@" + o[len("https://"):], AccountKey: pub}); err != nil {
			return nil, err
		}
		if err := commit(is, false); err != nil {
			return nil, err
		}
	}
	round := 0
	for n < benchEntries {
		if n%2500 == 0 {
			round++
			for h := 0; h < benchHeavy && n < benchEntries-2; h++ {
				if err := commit(issuers[h], round%4 == 0); err != nil {
					return nil, err
				}
			}
			continue
		}
		is := issuers[benchHeavy+int(n)%(benchIssuers-benchHeavy)]
		pub := is.key.Public().(ed25519.PublicKey)
		if err := sign(is, schema.KindRegistration, &schema.Registration{Contact: "mailto:keys@" + is.origin[len("https://"):], AccountKey: pub}); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return &benchLog{backend: b, verifier: verifier, policy: &statePolicy{st: st, now: t0 + int64(n)*step},
		heavy: "heavy3.example", normal: "issuer5000.example"}, nil
}

// BenchmarkPages serves the explorer's pages for a log of 100,000 entries
// and 10,000 issuers, and, as the baseline in the same run, the API's
// /checkpoint and the JSON twins of the same pages. It reports the p99
// latency (p99-ms) and the page size (bytes/page), and fails if a page is
// over 512 KiB.
func BenchmarkPages(b *testing.B) {
	benchOnce.Do(func() { benchData, benchErr = buildBenchLog(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	d := benchData
	now := time.UnixMilli(d.policy.now)
	ex, err := explorer.New(explorer.Config{Log: d.backend, Verifier: d.verifier, Policy: d.policy, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	h, err := server.New(server.Config{Reader: d.backend, Log: d.policy, Mount: map[string]http.Handler{"/": ex}})
	if err != nil {
		b.Fatal(err)
	}
	// Warm up: the explorer indexes the log on its first request.
	if rec := serve(h, "/"); rec.Code != 200 {
		b.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []struct{ name, path string }{
		{"baseline-checkpoint", "/checkpoint"},
		{"baseline-json-entries", "/v1/entries?start=50000&end=50050"},
		{"baseline-json-issuer-heavy", "/v1/issuers/" + d.heavy},
		{"baseline-json-proof", "/v1/proof/inclusion?index=77777"},
		{"home", "/"},
		{"issuers", "/issuers"},
		{"issuers-last-page", "/issuers?page=199"},
		{"issuers-search", "/issuers?q=issuer77"},
		{"issuers-search-none", "/issuers?q=nothing-matches-this"},
		{"issuer-heavy", "/issuers/" + d.heavy},
		{"issuer-normal", "/issuers/" + d.normal},
		{"entries-latest", "/entries"},
		{"entries-middle", "/entries?start=50000"},
		{"entry", "/entries/77777"},
		{"entry-emergency", "/entries/" + strconv.Itoa(emergencyIndex(b, d))},
	} {
		b.Run(p.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			var size int
			for b.Loop() {
				start := time.Now()
				rec := serve(h, p.path)
				lat = append(lat, time.Since(start))
				if rec.Code != 200 {
					b.Fatalf("GET %s: %d %s", p.path, rec.Code, rec.Body)
				}
				size = rec.Body.Len()
			}
			if size > maxPageBytes {
				b.Fatalf("GET %s: %d bytes, over the bound of %d", p.path, size, maxPageBytes)
			}
			slices.Sort(lat)
			p99 := lat[min(len(lat)-1, len(lat)*99/100)]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// emergencyIndex is the heavy issuer's latest emergency.
func emergencyIndex(b *testing.B, d *benchLog) int {
	st, ok := d.policy.Status("https://" + d.heavy)
	if !ok || st.LastEmergency == nil {
		b.Fatal("the heavy issuer has no emergency")
	}
	return int(st.LastEmergency.Index)
}
