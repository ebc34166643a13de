package explorer_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/note"
)

// deployment is a log with its API and the explorer on one loopback
// server, as `keycommit log serve` mounts them.
type deployment struct {
	URL     string
	Backend *storage.Memory
	Seq     *sequencer.Sequencer
	Clock   *logtest.Clock
	Origin  string
	VKey    string
	Exp     *explorer.Explorer
}

// startDeployment starts a log named origin over an in-memory backend.
func startDeployment(t testing.TB, origin string) *deployment {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	b := storage.NewMemory()
	clock := &logtest.Clock{}
	clock.Set(logtest.T0)
	cfg := sequencer.Config{Backend: b, Signer: s, Verifier: v, Clock: clock.Now, OriginControl: issuertest.AssumeControl}
	if _, err := sequencer.Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := sequencer.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := explorer.New(explorer.Config{Log: b, Verifier: v, VKey: vkey, Policy: seq, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Mounted at / of the log's server, as `keycommit log serve` does.
	srv, err := server.New(server.Config{Reader: b, Log: seq, Mount: map[string]http.Handler{"/": ex}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); seq.Close() })
	return &deployment{URL: hs.URL, Backend: b, Seq: seq, Clock: clock, Origin: origin, VKey: vkey, Exp: ex}
}

// issuer returns a test issuer signing for the deployment's log.
func (d *deployment) issuer(t testing.TB, origin string) *issuertest.Issuer {
	is := issuertest.New(t, origin)
	is.Log = d.Origin
	return is
}

func (d *deployment) submit(t testing.TB, is *issuertest.Issuer, sub *schema.Submission) uint64 {
	t.Helper()
	res, err := d.Seq.Submit(context.Background(), sub)
	if err != nil {
		t.Fatalf("submit %s for %s: %v", sub.Kind, is.Origin, err)
	}
	is.Logged(res.LeafHash)
	return res.Index
}

// history logs, for is: a registration, a commitment, a rotation 61
// days later, an emergency rotation 10 days after that with report, and
// its final report. It returns the emergency's index.
func (d *deployment) history(t testing.TB, is *issuertest.Issuer, report *schema.IncidentReport) uint64 {
	t.Helper()
	d.submit(t, is, is.Register(t))
	d.submit(t, is, is.Commit(t, 1, d.Clock.Now()))
	d.Clock.Advance(61 * 24 * time.Hour)
	d.submit(t, is, is.Commit(t, 2, d.Clock.Now()))
	d.Clock.Advance(10 * 24 * time.Hour)
	c := &schema.KeyCommitment{PST: issuertest.Commitment(t, is.NextID, 1, d.Clock.Now().Add(30*24*time.Hour)), Emergency: report}
	is.NextID++
	em := d.submit(t, is, is.Sign(t, schema.KindKeyCommitment, c))
	d.Clock.Advance(24 * time.Hour)
	final := *report
	final.Summary = "final: " + report.Summary
	d.submit(t, is, is.Sign(t, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: em, Report: final}))
	return em
}

func report(summary string) *schema.IncidentReport {
	return &schema.IncidentReport{Summary: summary, Discovered: logtest.T0.UnixMilli(),
		Impact: "tokens could be forged", RootCause: "a public backup", Remediation: "rotated the keys",
		URL: "https://issuer.example/incidents/1"}
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func mustContain(t testing.TB, page, what string) {
	t.Helper()
	if !strings.Contains(page, what) {
		t.Errorf("page lacks %q", what)
	}
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC") }
