package trillianstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
)

// checkRecords checks that res, a verified result (checkResult), logs
// sub: its entry records the submission and its leaf hash is the entry's.
func checkRecords(t testing.TB, sub *schema.Submission, res *sequencer.Result) {
	t.Helper()
	e, err := schema.ParseEntry(res.Entry)
	if err != nil {
		t.Fatalf("entry %d: %v", res.Index, err)
	}
	if e.Kind != sub.Kind || e.Issuer != sub.Issuer || !bytes.Equal(e.Prev, sub.Prev) || !bytes.Equal(e.Body, sub.Body) || !bytes.Equal(e.Sig, sub.Sig) {
		t.Fatalf("entry %d does not record the submission of %s", res.Index, sub.Issuer)
	}
	if tiles.LeafHash(res.Entry) != res.LeafHash {
		t.Fatalf("entry %d: the leaf hash is not the entry's", res.Index)
	}
}

// histogramCounts returns the sample count of the histogram name in reg
// and how many samples are at most le.
func histogramCounts(t *testing.T, reg *prometheus.Registry, name string, le float64) (total, atMost uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.Metric) == 0 {
			continue
		}
		h := mf.Metric[0].GetHistogram()
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == le {
				return h.GetSampleCount(), b.GetCumulativeCount()
			}
		}
		t.Fatalf("histogram %s has no bucket le=%v", name, le)
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}

// TestForwardedSubmissionsCoalesced: 300 submissions released together
// (start barrier) through a frontend that is not the writer, with one
// forwarded batch in flight at a time, reach the writer in a few
// requests to its forwarding endpoint (none to /v1/submit), none of more
// than api.MaxForwardSubmissions submissions, and every submitter gets
// its own verified answer: an entry recording its submission, proven in
// a checkpoint signed by the log key, at an index of its own. Mutations
// (named, not tried): forward each submission in a request of its own,
// and the writer counts 300 requests; answer the submitters of a batch
// in another order, and entries do not record their submissions; let a
// batch grow past the bound, and the writer refuses it (400) and
// nothing is logged.
func TestForwardedSubmissionsCoalesced(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontendConfig(t, env, tree, k, steadyWriter)
	if !a.fe.Writer() {
		t.Fatal("the first frontend is not the writer")
	}
	b := newFrontendConfig(t, env, tree, k, frontendOpts{lease: steadyWriter.lease, follow: 20 * time.Millisecond, forwardsInFlight: 1})
	const n = 300
	subs := make([]*schema.Submission, n)
	for i := range subs {
		subs[i] = issuertest.Numbered(t, i).Register(t)
	}
	results := make([]*sequencer.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range subs {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			results[i], errs[i] = b.fe.Submit(ctx, subs[i])
		})
	}
	close(start)
	wg.Wait()
	seen := map[uint64]bool{}
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("submission %d: %v", i, errs[i])
		}
		checkResult(t, k, res)
		checkRecords(t, subs[i], res)
		if seen[res.Index] {
			t.Fatalf("two submitters were answered with entry %d", res.Index)
		}
		seen[res.Index] = true
	}
	if b.fe.Writer() {
		t.Fatal("the forwarding frontend became the writer during the test")
	}
	forwards, direct := a.posts.forward.Load(), a.posts.submit.Load()
	t.Logf("%d submissions reached the writer in %d forwarded batches", n, forwards)
	if direct != 0 {
		t.Errorf("the writer got %d submissions at %s, want none (all forwarded in batches)", direct, api.PathSubmit)
	}
	if forwards < (n+api.MaxForwardSubmissions-1)/api.MaxForwardSubmissions || forwards > n/10 {
		t.Errorf("the writer got %d forwarded batches for %d submissions; want a few (at least %d)", forwards, n, (n+api.MaxForwardSubmissions-1)/api.MaxForwardSubmissions)
	}
	if got := metricValue(t, b.reg, "keycommit_trillian_forward_batches_total"); got != float64(forwards) {
		t.Errorf("keycommit_trillian_forward_batches_total = %v, the writer got %d", got, forwards)
	}
	if total, atMost := histogramCounts(t, b.reg, "keycommit_trillian_forward_batch_submissions", api.MaxForwardSubmissions); total != uint64(forwards) || atMost != total {
		t.Errorf("forwarded batch sizes: %d batches, %d of at most %d submissions", total, atMost, api.MaxForwardSubmissions)
	}
	replayAll(t, env, tree, k)
}

// steadyWriter is a long lease, for tests that need the first frontend
// to stay the writer (and the others to keep their policy views) on a
// loaded machine: no takeover while it runs.
var steadyWriter = frontendOpts{lease: 10 * time.Second, follow: 20 * time.Millisecond}

// forwardingTransport marks every request as forwarded, as a frontend's
// forwarding client does.
type forwardingTransport struct{}

func (forwardingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(server.ForwardedHeader, "1")
	return http.DefaultTransport.RoundTrip(r)
}

// TestForwardedBatchAnswers sends one batch, authenticated with the
// frontends' key, to the writer's forwarding endpoint holding two good
// registrations and one the policy refuses (a second first registration
// of a registered issuer): each gets the answer a direct submission gets
// (the refusal by its rule and reason), and the good ones are logged and
// verified. A submission that does not parse is refused (400) by the
// frontend it is submitted to and never forwarded. The batch sent to a
// frontend that is not the writer gets 503 for every submission (never
// forwarded twice); without the key's MAC, or without the forwarding
// header, it is refused (403). Mutation (named, not tried): fail the
// whole batch when one submission is refused, and the good ones get no
// entry.
func TestForwardedBatchAnswers(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontendConfig(t, env, tree, k, steadyWriter)
	b := newFrontendConfig(t, env, tree, k, steadyWriter)
	taken := issuertest.Numbered(t, 100)
	taken.Logged(submit(t, a, taken.Register(t)).LeafHash)
	// Wait for b to see it, so that b is a follower that knows the writer.
	eventually(t, "the follower sees the registration", func() error {
		if _, ok := b.fe.Status(taken.Origin); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	ctx := context.Background()
	var key []byte
	if err := openDB(t, env).QueryRowContext(ctx, "SELECT ForwardKey FROM KeycommitLog WHERE TreeId=?", tree).Scan(&key); err != nil || len(key) != 32 {
		t.Fatalf("the tree's forwarding key: %x, %v", key, err)
	}
	if !bytes.Equal(a.fe.ForwardKey(), key) || !bytes.Equal(b.fe.ForwardKey(), key) {
		t.Fatal("the frontends do not share the tree's forwarding key")
	}
	good1, good2 := issuertest.Numbered(t, 1).Register(t), issuertest.Numbered(t, 2).Register(t)
	again := issuertest.New(t, taken.Origin).Register(t) // prev null: the issuer is registered
	subs := []*schema.Submission{good1, again, good2}
	fws := make([]*client.Forwarding, len(subs))
	for i, sub := range subs {
		fw, err := client.NewForwarding(sub)
		if err != nil {
			t.Fatal(err)
		}
		fws[i] = fw
	}
	forwarding := &http.Client{Transport: forwardingTransport{}, Timeout: time.Minute}
	c, err := client.New(a.url, k.vkey, forwarding)
	if err != nil {
		t.Fatal(err)
	}
	var he *client.HTTPError
	for _, wrong := range [][]byte{nil, bytes.Repeat([]byte{1}, 32)} {
		if _, err := c.SubmitForwarded(ctx, wrong, fws); !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
			t.Errorf("batch with key %x: %v, want 403", wrong, err)
		}
	}
	answers, err := c.SubmitForwarded(ctx, key, fws)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if answers[i].Err != nil {
			t.Fatalf("good submission %d: %v", i, answers[i].Err)
		}
		if answers[i].Submitted.Logged.Issuer != subs[i].Issuer {
			t.Fatalf("good submission %d answered with an entry of %s", i, answers[i].Submitted.Logged.Issuer)
		}
	}
	// The refusal is the one a direct submission gets.
	_, direct := a.fe.Submit(ctx, again)
	var want *policy.RejectError
	if !errors.As(direct, &want) {
		t.Fatalf("second registration of a registered issuer, submitted directly: %v, want a policy refusal", direct)
	}
	if re, ok := client.Reject(answers[1].Err); !ok || re.Rule != want.Rule || re.Reason != want.Reason {
		t.Errorf("second registration of a registered issuer, forwarded: %v; directly: %v", answers[1].Err, direct)
	}

	// A submission that does not parse stops at the frontend it is sent to.
	bad := issuertest.Numbered(t, 3).Register(t)
	bad.Issuer = "https://UPPER.example"
	body, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(b.url+api.PathSubmit, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unparsable submission to the follower: %d, want 400", resp.StatusCode)
	}

	// A frontend that is not the writer never forwards a forwarded batch.
	c, err = client.New(b.url, k.vkey, forwarding)
	if err != nil {
		t.Fatal(err)
	}
	answers, err = c.SubmitForwarded(ctx, key, fws[:1])
	if err != nil {
		t.Fatal(err)
	}
	if !errors.As(answers[0].Err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("batch forwarded to a frontend that is not the writer: %v, want 503", answers[0].Err)
	}
	if b.posts.forward.Load() != 1 || a.posts.forward.Load() != 3 {
		t.Errorf("forwarded batches: %d at the follower, %d at the writer; want 1 and 3", b.posts.forward.Load(), a.posts.forward.Load())
	}

	// Without the forwarding header: refused.
	c, err = client.New(a.url, k.vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubmitForwarded(ctx, key, fws[2:]); !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Errorf("batch without the forwarding header: %v, want 403", err)
	}
	replayAll(t, env, tree, k)
}

// countingCache counts the entries read from a frontend's cache.
type countingCache struct {
	storage.Backend
	read atomic.Int64
}

func (c *countingCache) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	c.read.Add(int64(end - start))
	return c.Backend.Entries(ctx, start, end)
}

// TestFollowerViewTakesFollowedEntries: a frontend that follows the
// writer advances its policy view with the entries its follower just
// read, checked and stored, decoded once: it reads none of them back
// from its cache, and its view knows every issuer registered through the
// writer. Mutation (named, not tried): let View.Advance read the entries
// from the backend as before, and the follower reads every followed
// entry back from its cache.
func TestFollowerViewTakesFollowedEntries(t *testing.T) {
	env, tree, k := newLog(t)
	a := newFrontendConfig(t, env, tree, k, steadyWriter)
	ctx := context.Background()
	sc, err := sqlitestore.Create(ctx, filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	cache := &countingCache{Backend: sc}
	st, err := trillianstore.Open(ctx, trillianstore.Config{Client: env.Log, DB: openDB(t, env), TreeID: tree, Cache: cache, Verifier: k.verifier,
		FollowInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := sequencer.Config{Backend: st, Signer: k.signer, Verifier: k.verifier, OriginControl: issuertest.AssumeControl, Logger: testLogger(t)}
	fe, err := trillianstore.NewFrontend(ctx, cfg, st, trillianstore.FrontendConfig{Advertise: "http://127.0.0.1:1", VKey: k.vkey, Lease: steadyWriter.lease})
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	if fe.Writer() {
		t.Fatal("the follower took the lease")
	}
	loaded := cache.read.Load() // NewView's load
	var issuers []*issuertest.Issuer
	for i := range 40 {
		is := issuertest.Numbered(t, i)
		is.Logged(submit(t, a, is.Register(t)).LeafHash)
		issuers = append(issuers, is)
	}
	eventually(t, "the follower's view knows every issuer", func() error {
		for _, is := range issuers {
			if _, ok := fe.Status(is.Origin); !ok {
				return fmt.Errorf("%s not registered", is.Origin)
			}
		}
		return nil
	})
	if n := cache.read.Load() - loaded; n != 0 {
		t.Fatalf("the follower read %d entries back from its cache to advance its view, want none", n)
	}
	if st.Size() < 41 {
		t.Fatalf("the follower's cache has %d entries", st.Size())
	}
}
