package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// failingReader is a backend whose checkpoint read fails with an error
// whose text must stay in the server.
type failingReader struct{ *storage.Memory }

const secretErr = "open /var/lib/keycommit/log.db: disk I/O error at page 4711"

func (failingReader) Checkpoint(context.Context) (uint64, []byte, error) {
	return 0, nil, errors.New(secretErr)
}

// TestFiveHundredsCarryRequestIDs: every 5xx the log answers, on its own
// routes, the keys bundle, delta and issuer proofs, and the read-only
// refusal, names a request id that the server's log holds with the cause,
// and never the cause's text; a 4xx keeps its precise message. (Drop the
// request id from server.handle's 5xx case or from bundle's fail and the
// row fails.)
func TestFiveHundredsCarryRequestIDs(t *testing.T) {
	var logged bytes.Buffer
	srv, err := server.New(server.Config{Reader: failingReader{storage.NewMemory()}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		code         int
		prefix       string
	}{
		{"GET", api.PathCheckpoint, 500, "internal error (request id "},
		{"GET", api.PathEntries + "?start=0&end=1", 500, "internal error (request id "},
		{"GET", "/v1/keys.bundle", 503, "couldn't read the checkpoint (request id "},
		{"GET", "/v1/keys.delta?old=1&base=" + strings.Repeat("00", 32), 503, "couldn't read the checkpoint (request id "},
		{"POST", api.PathSubmit, 503, "this server is read-only (request id "},
		{"GET", api.PathEntries + "?start=2&end=1", 400, "start 2 is not below end 1"},
	} {
		logged.Reset()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader("{}")))
		var e api.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != c.code {
			t.Errorf("%s %s: %d %q, want %d with a JSON error", c.method, c.path, rec.Code, rec.Body, c.code)
			continue
		}
		if strings.Contains(e.Error, "disk") || !strings.HasPrefix(e.Error, c.prefix) {
			t.Errorf("%s %s: client got %q; want %q…", c.method, c.path, e.Error, c.prefix)
			continue
		}
		if c.code < 500 {
			continue
		}
		id := strings.TrimSuffix(strings.TrimPrefix(e.Error, c.prefix), ")")
		if len(id) != 16 || !strings.Contains(logged.String(), "request_id="+id) {
			t.Errorf("%s %s: request id %q not in the server's log:\n%s", c.method, c.path, id, logged.String())
		}
		if c.code == 500 || strings.Contains(c.prefix, "checkpoint") {
			if !strings.Contains(logged.String(), secretErr) {
				t.Errorf("%s %s: the cause is not in the server's log:\n%s", c.method, c.path, logged.String())
			}
		}
	}
}

// TestInternalErrorNotSent: a failure inside the server is logged with a
// request id, and the client gets only a generic message with that id.
func TestInternalErrorNotSent(t *testing.T) {
	var logged bytes.Buffer
	srv, err := server.New(server.Config{Reader: failingReader{storage.NewMemory()}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", api.PathCheckpoint, nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	var e api.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if strings.Contains(e.Error, "disk") || !strings.HasPrefix(e.Error, "internal error (request id ") {
		t.Errorf("client got %q; want a generic message with a request id", e.Error)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(e.Error, "internal error (request id "), ")")
	if !strings.Contains(logged.String(), id) || !strings.Contains(logged.String(), secretErr) {
		t.Errorf("the server's log does not hold the request id %s and the error:\n%s", id, logged.String())
	}
}

// blockingLog holds every submission until release is closed.
type blockingLog struct {
	entered chan struct{}
	release chan struct{}
}

func (l *blockingLog) Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	l.entered <- struct{}{}
	<-l.release
	return nil, sequencer.ErrClosed
}
func (l *blockingLog) Check(context.Context, *schema.Submission) policy.Decision {
	return policy.Decision{Accept: true}
}
func (l *blockingLog) Status(string) (*policy.IssuerStatus, bool) { return nil, false }
func (l *blockingLog) Params() schema.PolicyParams                { return schema.PolicyParams{} }

// TestSubmitInFlightLimit: with MaxInFlight submissions being worked on,
// the next one gets 429 with Retry-After before its body is read, and a
// body over schema.MaxSubmissionSize gets 413 before it is parsed. The
// barrier: both held submissions are inside Submit (bl.entered) before the
// third is sent. Mutation: remove the TryAcquire in server.handle and the
// third request blocks instead.
func TestSubmitInFlightLimit(t *testing.T) {
	bl := &blockingLog{entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := server.New(server.Config{Reader: storage.NewMemory(), Log: bl, MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sub := `{"kind":"registration","issuer":"https://a.example","prev":null,"body":{"contact":"mailto:a@a.example","account_key":"` +
		strings.Repeat("A", 43) + `="},"sig":"` + strings.Repeat("A", 86) + `=="}`
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(ts.URL+api.PathSubmit, "application/json", strings.NewReader(sub))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-bl.entered
	<-bl.entered
	// The body of this request is never sent: 429 comes first.
	pr, pw := io.Pipe()
	defer pw.Close()
	resp, err := http.Post(ts.URL+api.PathSubmit, "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third submission: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(bl.release)
	wg.Wait()

	big := bytes.Repeat([]byte(" "), schema.MaxSubmissionSize+1)
	resp, err = http.Post(ts.URL+api.PathSubmit, "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("submission of %d bytes: %d, want 413", len(big), resp.StatusCode)
	}
}

// TestSubmitBodyBudget: submissions take their Content-Length from the
// submit endpoint's body budget, so while two near-limit submissions hold
// it a third gets 429 with Retry-After before its body is read, and small
// submissions are still worked on beside them. (Charge every request the
// minimum cost and the third near-limit submission reaches the log;
// charge every request the body limit, as a slot of a Limiter does, and
// the small ones get 429.)
func TestSubmitBodyBudget(t *testing.T) {
	bl := &blockingLog{entered: make(chan struct{}), release: make(chan struct{})}
	const maxBody = int64(schema.MaxSubmissionSize)
	srv, err := server.New(server.Config{Reader: storage.NewMemory(), Log: bl, MaxBodyBudget: 2*maxBody + 8<<10})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	// A well-formed submission padded with white space to n bytes.
	sub := func(n int) []byte {
		s := `{"kind":"registration","issuer":"https://a.example","prev":null,"body":{"contact":"mailto:a@a.example","account_key":"` +
			strings.Repeat("A", 43) + `="},"sig":"` + strings.Repeat("A", 86) + `=="}`
		return append([]byte(s), bytes.Repeat([]byte(" "), n-len(s))...)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(bl.release)
	// post sends body; its answer's status comes on the channel (-1: no
	// answer).
	post := func(body []byte) <-chan int {
		code := make(chan int, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(ts.URL+api.PathSubmit, "application/json", bytes.NewReader(body))
			if err != nil {
				code <- -1
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			code <- resp.StatusCode
		}()
		return code
	}
	// admitted reports whether the submission reached the log (where it
	// blocks) rather than being answered.
	admitted := func(code <-chan int) (bool, int) {
		select {
		case <-bl.entered:
			return true, 0
		case c := <-code:
			return false, c
		}
	}
	// Two near-limit ones, then eight small ones (1 KiB each) in the 8 KiB
	// left: all reach the log.
	for i, n := range []int{int(maxBody), int(maxBody), 300, 300, 300, 300, 300, 300, 300, 300} {
		if ok, code := admitted(post(sub(n))); !ok {
			t.Fatalf("submission %d (%d bytes) answered %d; want it worked on", i, n, code)
		}
	}
	// The budget is taken: a near-limit submission and a ninth small one
	// get 429.
	for _, n := range []int{int(maxBody), 300} {
		if ok, code := admitted(post(sub(n))); ok || code != http.StatusTooManyRequests {
			t.Errorf("submission of %d bytes with the budget taken: reached the log %v, status %d; want 429", n, ok, code)
		}
	}
}
