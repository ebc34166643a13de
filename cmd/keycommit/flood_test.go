package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/monitor/monitortest"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// Memory bounds the flood tests assert, from /proc/PID/status.
const floodMaxRSS = 300 << 20

// procMemory returns the resident set size and its high-water mark of
// process pid, in bytes.
func procMemory(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to measure memory: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("/proc status line %q: %v", l, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

// floodClient is an HTTP client for many parallel connections to one
// host.
func floodClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

// flood starts n goroutines that each make one request with send once
// start is closed (the start barrier); wait returns the answers counted
// by status (-1: no answer, the connection failed).
func flood(n int, start <-chan struct{}, send func(hc *http.Client) (int, error)) (wait func() map[int]int) {
	hc := floodClient()
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, err := send(hc)
			if err != nil {
				code = -1 // connection refused or reset: the flood is not answered, counted apart
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	return func() map[int]int { wg.Wait(); return codes }
}

// nearLimitSubmission is a well-formed submission just under
// schema.MaxSubmissionSize: an incident report for an unregistered
// issuer, which the log parses and queues before the policy refuses it.
func nearLimitSubmission(t *testing.T, i int) []byte {
	t.Helper()
	is := issuertest.Numbered(t, 100000+i)
	mk := func(n int) []byte {
		sub, err := issuer.Sign(is.Key, is.Log, is.Origin, nil, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 1, Report: schema.IncidentReport{
			Summary: strings.Repeat("s", n), Discovered: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), Impact: "i", RootCause: "r", Remediation: "m", URL: "https://x.example/r"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := mk(1000)
	b = mk(1000 + schema.MaxSubmissionSize - 64 - len(b))
	if len(b) > schema.MaxSubmissionSize || len(b) < schema.MaxSubmissionSize-200 {
		t.Fatalf("near-limit submission is %d bytes", len(b))
	}
	return b
}

// TestLogFloodBoundedMemory sends 4,000 parallel near-limit submissions to
// the real `log serve` while honest issuers (registered just before)
// submit their first key commitments: the log's
// resident memory stays under 300 MiB (it reads, parses and queues at
// most its body budget's worth, 64 near-limit submissions; the others get
// 429 with Retry-After before their body is read), and every honest
// submission is logged (log/client retries a 429). Mutation tried, when
// the bound was 64 submit slots: with 100,000 slots every flood
// submission is read and queued, and the high-water mark reached 1,229
// MiB; a body budget of 100,000 x MaxBodyBytes admits them all the same.
func TestLogFloodBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	dir := filepath.Join(t.TempDir(), "log")
	out, err := exec.Command(keycommitBin, "log", "init", "--data", dir, "--origin", "flood.example/log").CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]
	web := startStoryOrigin(t, t.TempDir(), "*.example")
	cmd, url := startServe(t, keycommitBin, dir, append(web.serveArgs(), "--log-level", "error")...)
	pid := cmd.Process.Pid
	c, err := client.New(url, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, 16)
	for i := range bodies {
		bodies[i] = nearLimitSubmission(t, i)
	}
	_, before := procMemory(t, pid)

	// The honest issuers register before the flood (the log fetches each
	// one's challenge from the test's HTTPS origin, which the flood's
	// goroutines in this process would starve) and submit their first key
	// commitment during it.
	const honest = 8
	issuers := make([]*issuertest.Issuer, honest)
	for i := range issuers {
		is := issuertest.Numbered(t, i)
		is.Log = "flood.example/log"
		web.serveChallenge(is)
		r, err := c.Submit(context.Background(), is.Register(t))
		if err != nil {
			t.Fatalf("honest registration %d: %v", i, err)
		}
		is.Logged(tlog.Hash(r.LeafHash))
		issuers[i] = is
	}
	start := make(chan struct{})
	errs := make(chan error, honest)
	var dropped atomic.Int32
	var hw sync.WaitGroup
	for _, is := range issuers {
		hw.Add(1)
		go func() {
			defer hw.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			sub := is.Commit(t, 1, time.Now())
			<-start
			errs <- submitHonest(ctx, c, sub, &dropped)
		}()
	}
	var n sync.Mutex
	next := 0
	wait := flood(4000, start, func(hc *http.Client) (int, error) {
		n.Lock()
		b := bodies[next%len(bodies)]
		next++
		n.Unlock()
		resp, err := hc.Post(url+api.PathSubmit, "application/json", bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	close(start)
	hw.Wait()
	codes := wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	rss, hwm := procMemory(t, pid)
	t.Logf("flood answers by status: %v; honest connections dropped before an answer (and recovered): %d; log memory: high-water %d MiB (before the flood %d MiB), now %d MiB", codes, dropped.Load(), hwm>>20, before>>20, rss>>20)
	if hwm > floodMaxRSS {
		t.Errorf("the log's resident memory reached %d MiB under the flood, over %d MiB", hwm>>20, floodMaxRSS>>20)
	}
	for code := range codes {
		if code != http.StatusTooManyRequests && code != http.StatusUnprocessableEntity && code != -1 {
			t.Errorf("flood submissions answered %d (%d times); want only 422 (refused by the policy) or 429", code, codes[code])
		}
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("no flood submission was answered 429: the in-flight limit did not act (%v)", codes)
	}
	// The log still answers.
	if _, _, err := c.Checkpoint(context.Background()); err != nil {
		t.Errorf("after the flood: %v", err)
	}
}

// submitHonest submits sub, an issuer's first key commitment after its
// registration, the way a careful issuer does under load: a 429 is
// retried by log/client; a connection that fails before any answer (on 2
// cores under -race, a handful of the 4,000 flood connections' neighbours
// can miss the server's header timeout) is followed by asking the log
// whether the statement was logged (the issuer's entry count), and
// submitting again only if it was not. It fails on any answer but
// success, and after three dropped attempts.
func submitHonest(ctx context.Context, c *client.Client, sub *schema.Submission, dropped *atomic.Int32) error {
	for attempt := 0; ; attempt++ {
		_, err := c.Submit(ctx, sub)
		var he *client.HTTPError
		if err == nil || errors.As(err, &he) || attempt == 2 || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("honest commitment of %s: %w", sub.Issuer, err)
			}
			return nil
		}
		dropped.Add(1)
		is, ierr := c.Issuer(ctx, sub.Issuer)
		if ierr != nil {
			return fmt.Errorf("honest commitment of %s: %v; then the issuer's state: %w", sub.Issuer, err, ierr)
		}
		if len(is.Entries) >= 2 {
			return nil // logged: the answer was lost, not the entry
		}
	}
}

// TestWitnessFloodBoundedMemory: the real `witness serve` holds 400
// proven fork records; 200 clients read GET /evidence page after page while
// 4,000 near-limit add-checkpoint bodies arrive at once and the honest
// log grows its cosigned checkpoint step by step. The witness's resident
// memory stays under 300 MiB, every honest add-checkpoint is cosigned
// (429 answers are retried), and no evidence page is over the bound.
// Mutation: serve /evidence without the page bound (the whole table per
// request, as before) and every read fails the 100-record check.
func TestWitnessFloodBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	bin := witBuild(t)
	dir := filepath.Join(t.TempDir(), "w")
	out, err := witRun(t, bin, "witness", "init", "--data", dir, "--name", "witness.test/flood")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	l := newWitLog(t, "example.com/flood-log", 400)
	if out, err := witRun(t, bin, "witness", "add-log", "--data", dir, "--origin", l.origin, "--vkey", l.vkey); err != nil {
		t.Fatalf("add-log: %v\n%s", err, out)
	}
	cmd, url := witServe(t, bin, dir)
	pid := cmd.Process.Pid
	hc := floodClient()
	post := func(body []byte) (int, []byte) {
		failures := 0
		for {
			resp, err := hc.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
			if err != nil {
				// A keep-alive connection the witness closed (it
				// closes after each 429) can fail a POST that Go's
				// client does not replay: an honest client retries.
				if failures++; failures > 5 {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				return resp.StatusCode, b
			}
			time.Sleep(time.Second)
		}
	}
	if code, b := post(l.body(t, 0, 10)); code != 200 {
		t.Fatalf("cosign 10: %d %s", code, b)
	}
	// Forks at the cosigned size, each a different tree: proven evidence.
	for i := range 400 {
		f := &witLog{origin: l.origin, signer: l.signer, vkey: l.vkey, tree: testonly.New(rfc6962.DefaultHasher)}
		for j := range 10 {
			f.tree.AppendData([]byte(fmt.Sprintf("fork %d leaf %d", i, j)))
		}
		if code, b := post(f.body(t, 10, 10)); code != 422 {
			t.Fatalf("fork %d: %d %s", i, code, b)
		}
	}
	_, before := procMemory(t, pid)

	start := make(chan struct{})
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var readErr error
	var mu sync.Mutex
	pagesRead := 0
	for range 200 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			<-start
			after := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(url + "/evidence?after=" + after)
				if err != nil {
					continue
				}
				var page []json.RawMessage
				derr := json.NewDecoder(resp.Body).Decode(&page)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				mu.Lock()
				pagesRead++
				if resp.StatusCode != 200 || derr != nil || len(page) > 100 {
					readErr = fmt.Errorf("GET /evidence: %d, %d records, %v", resp.StatusCode, len(page), derr)
				}
				mu.Unlock()
				after = httpguard.NextPage(resp.Header)
			}
		}()
	}
	junk := bytes.Repeat([]byte("x"), 60<<10)
	wait := flood(4000, start, func(hc *http.Client) (int, error) {
		resp, err := hc.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(junk))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	close(start)
	for prev, size := uint64(10), uint64(20); size <= 400; prev, size = size, size+10 {
		if code, b := post(l.body(t, prev, size)); code != 200 {
			t.Fatalf("honest add-checkpoint %d under load: %d %s", size, code, b)
		}
	}
	codes := wait()
	close(stop)
	readers.Wait()
	if readErr != nil {
		t.Error(readErr)
	}
	rss, hwm := procMemory(t, pid)
	t.Logf("junk add-checkpoint answers %v; %d evidence pages read; witness memory: high-water %d MiB (before %d MiB), now %d MiB", codes, pagesRead, hwm>>20, before>>20, rss>>20)
	if hwm > floodMaxRSS {
		t.Errorf("the witness's resident memory reached %d MiB, over %d MiB", hwm>>20, floodMaxRSS>>20)
	}
	for code, n := range codes {
		if code != 400 && code != 429 && code != -1 {
			t.Errorf("junk add-checkpoint answered %d (%d times); want 400 or 429", code, n)
		}
	}
}

// TestMonitorFloodBoundedMemory: the real `monitor --listen` gets 4,000
// parallel near-limit POST /v1/checkpoint bodies (signed-note shaped,
// 60 KiB of signature lines from unknown keys) while a peer gossips the
// log's genuine checkpoint, 100 clients page through GET /watch and 100
// more post 8 MiB bodies: its resident memory stays under 300 MiB, the
// honest gossip is answered 200 (429 retried), the 8 MiB bodies 413, and a
// stranger's POST /watch is refused (401) and adds nothing; with the token
// it is added.
//
// Mutations tried: read the POST body whole (io.ReadAll instead of
// httpguard.ReadBody with maxNoteSize, in servePostCheckpoint): the 8 MiB
// bodies are read, 64 at a time: "the monitor's resident memory reached
// 517 MiB, over 300 MiB" (and they are answered 404). Without the
// in-flight limiter (NewLimiter(1<<30) for postLimit)
// the test still passes: each junk body is refused as soon as it is split
// (over 100 signature lines), so requests never pile up and the
// high-water mark only rose from 128 to 160 MiB at 4,000 requests; the
// limiter is tested by monitor's TestPostCheckpoint instead.
func TestMonitorFloodBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	l, vkey, err := monitortest.NewWithKey("example.com/flood")
	if err != nil {
		t.Fatal(err)
	}
	g := monitortest.NewGen(l, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 4)
	if _, err := g.Register("https://a.example"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("operator-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, base := startListeningMonitor(t, keycommitBin, "--log", srv.URL, "--log-vkey", vkey, "--data", t.TempDir(),
		"--listen", "127.0.0.1:0", "--poll", "100ms", "--admin-token-file", tokFile)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	cpURL := base + "/" + fmt.Sprintf("%x", sha256.Sum256([]byte(l.Origin()))) + "/checkpoint"
	var genuine []byte
	for deadline := time.Now().Add(time.Minute); genuine == nil; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(cpURL); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				genuine = b
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the monitor never verified the log's checkpoint")
		}
	}
	pid := cmd.Process.Pid
	_, before := procMemory(t, pid)

	var junk bytes.Buffer
	fmt.Fprintf(&junk, "%s\n5\n%s\n\n", l.Origin(), strings.Repeat("A", 43)+"=")
	for junk.Len() < 60<<10 {
		fmt.Fprintf(&junk, "\u2014 stranger%d %s\n", junk.Len(), strings.Repeat("B", 86)+"==")
	}
	start := make(chan struct{})
	wait := flood(4000, start, func(hc *http.Client) (int, error) {
		resp, err := hc.Post(base+"/v1/checkpoint", "text/plain", bytes.NewReader(junk.Bytes()))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	// 100 bodies of 8 MiB, far over the bound: 413 (or a closed
	// connection) before they are read.
	huge := bytes.Repeat([]byte("C"), 8<<20)
	waitHuge := flood(100, start, func(hc *http.Client) (int, error) {
		resp, err := hc.Post(base+"/v1/checkpoint", "text/plain", bytes.NewReader(huge))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	var readers sync.WaitGroup
	for range 100 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			<-start
			if resp, err := http.Get(base + "/watch?limit=1000"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	close(start)
	hc := floodClient()
	for attempt := 0; ; attempt++ {
		resp, err := hc.Post(base+"/v1/checkpoint", "text/plain", bytes.NewReader(genuine))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || attempt > 60 {
			t.Fatalf("honest gossip under the flood: %d %s", resp.StatusCode, b)
		}
		time.Sleep(time.Second)
	}
	codes := wait()
	hugeCodes := waitHuge()
	readers.Wait()
	rss, hwm := procMemory(t, pid)
	t.Logf("flood answers %v, 8 MiB bodies %v; monitor memory: high-water %d MiB (before %d MiB), now %d MiB", codes, hugeCodes, hwm>>20, before>>20, rss>>20)
	for code, n := range hugeCodes {
		if code != http.StatusRequestEntityTooLarge && code != http.StatusTooManyRequests && code != -1 {
			t.Errorf("8 MiB checkpoint bodies answered %d (%d times); want 413 or 429", code, n)
		}
	}
	if hwm > floodMaxRSS {
		t.Errorf("the monitor's resident memory reached %d MiB, over %d MiB", hwm>>20, floodMaxRSS>>20)
	}
	for code, n := range codes {
		if code != http.StatusForbidden && code != http.StatusTooManyRequests && code != -1 {
			t.Errorf("junk checkpoints answered %d (%d times); want 403 or 429", code, n)
		}
	}
	resp, err := http.Post(base+"/watch", "application/json", strings.NewReader(`{"origin":"https://stranger.example"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /watch without the token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/watch", strings.NewReader(`{"origin":"https://watched.example"}`))
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /watch with the token: %d, want 200", resp.StatusCode)
	}
}
