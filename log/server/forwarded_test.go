package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// forwardLog refuses forwarded submissions as a frontend that is not the
// writer does, and any other with a plain error.
type forwardLog struct{}

func (forwardLog) Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	if server.Forwarded(ctx) {
		return nil, fmt.Errorf("%w: not the writer", server.ErrUnavailable)
	}
	return nil, sequencer.ErrClosed
}
func (forwardLog) Check(context.Context, *schema.Submission) policy.Decision {
	return policy.Decision{Accept: true}
}
func (forwardLog) Status(string) (*policy.IssuerStatus, bool) { return nil, false }
func (forwardLog) Params() schema.PolicyParams                { return schema.PolicyParams{} }

// TestForwardedSubmission: a submission with ForwardedHeader reaches the
// Log with Forwarded(ctx) true, one without it with false, and an error
// wrapping ErrUnavailable answers 503 with Retry-After: 1 and its text.
func TestForwardedSubmission(t *testing.T) {
	srv, err := server.New(server.Config{Reader: storage.NewMemory(), Log: forwardLog{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sub := `{"kind":"registration","issuer":"https://a.example","prev":null,"body":{"contact":"mailto:a@a.example","account_key":"` +
		strings.Repeat("A", 43) + `="},"sig":"` + strings.Repeat("A", 86) + `=="}`
	for _, forwarded := range []bool{true, false} {
		req, err := http.NewRequest(http.MethodPost, ts.URL+api.PathSubmit, strings.NewReader(sub))
		if err != nil {
			t.Fatal(err)
		}
		if forwarded {
			req.Header.Set(server.ForwardedHeader, "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if forwarded && (resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1") {
			t.Errorf("forwarded: status %d, Retry-After %q; want 503 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !forwarded && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("not forwarded: status %d, want 503 (shutting down)", resp.StatusCode)
		}
		if !forwarded && resp.Header.Get("Retry-After") == "1" {
			t.Errorf("not forwarded: the Log saw the submission as forwarded")
		}
	}
}
