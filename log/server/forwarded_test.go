package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/httpguard"
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
	for _, forwarded := range []bool{true, false} {
		resp, _ := postForwarded(t, ts.URL+api.PathSubmit, testSubmission("https://a.example"), forwarded)
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

// testSubmission is a submission for issuer that parses (its signature
// does not verify).
func testSubmission(issuer string) string {
	return `{"kind":"registration","issuer":"` + issuer + `","prev":null,"body":{"contact":"mailto:a@a.example","account_key":"` +
		strings.Repeat("A", 43) + `="},"sig":"` + strings.Repeat("A", 86) + `=="}`
}

// postForwarded POSTs body to url, with ForwardedHeader if forwarded and
// the headers named and valued in hdr (pairs; empty values left out), and
// returns the response and its body.
func postForwarded(t *testing.T, url, body string, forwarded bool, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if forwarded {
		req.Header.Set(server.ForwardedHeader, "1")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// batchLog answers by issuer: a.example is logged (in checkpoint "cp"),
// b.example refused by the policy, c.example unavailable here.
type batchLog struct{ forwardLog }

func (batchLog) Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	if !server.Forwarded(ctx) {
		return nil, fmt.Errorf("submission of %s not marked as forwarded", sub.Issuer)
	}
	switch sub.Issuer {
	case "https://a.example":
		return &sequencer.Result{Index: 7, Entry: []byte("entry"), Size: 8, Checkpoint: []byte("cp\n")}, nil
	case "https://b.example":
		return nil, &policy.RejectError{Rule: policy.RulePrev, Reason: "prev is not the latest"}
	}
	return nil, fmt.Errorf("%w: not the writer", server.ErrUnavailable)
}

// TestForwardEndpoint: POST api.PathForward answers each submission of
// the batch with what POST /v1/submit answers it (the result, a policy
// refusal with its rule, 503 with Retry-After 1, 400 for one that does
// not parse), each distinct checkpoint once; it refuses a batch without
// ForwardedHeader (403), an empty one or one of more than
// api.MaxForwardSubmissions (400), and a body over api.MaxForwardBytes
// (413), before submitting anything.
func TestForwardEndpoint(t *testing.T) {
	srv, err := server.New(server.Config{Reader: storage.NewMemory(), Log: batchLog{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sub := testSubmission
	post := func(body string, forwarded bool) (int, []byte) {
		t.Helper()
		resp, b := postForwarded(t, ts.URL+api.PathForward, body, forwarded)
		return resp.StatusCode, b
	}
	batch := `{"submissions":[` + strings.Join([]string{sub("https://a.example"), sub("https://b.example"), sub("https://c.example"), `{"kind":"nonsense"}`, sub("https://a.example")}, ",") + `]}`
	code, body := post(batch, true)
	if code != http.StatusOK {
		t.Fatalf("batch: %d %s", code, body)
	}
	var res api.ForwardResults
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 5 || len(res.Checkpoints) != 1 || res.Checkpoints[0] != "cp\n" {
		t.Fatalf("batch answered with %d results and checkpoints %q; want 5 and one", len(res.Results), res.Checkpoints)
	}
	for _, i := range []int{0, 4} {
		if r := res.Results[i]; r.Status != http.StatusOK || r.Index != 7 || r.TreeSize != 8 || string(r.Entry) != "entry" || r.Checkpoint != 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if r := res.Results[1]; r.Status != http.StatusUnprocessableEntity || r.Error == nil || r.Error.Rule != policy.RulePrev || r.Error.Reason == "" {
		t.Errorf("refused submission: %+v", r)
	}
	if r := res.Results[2]; r.Status != http.StatusServiceUnavailable || r.RetryAfter != "1" {
		t.Errorf("unavailable submission: %+v", r)
	}
	if r := res.Results[3]; r.Status != http.StatusBadRequest || r.Error == nil || r.Error.Error == "" {
		t.Errorf("malformed submission: %+v", r)
	}
	many := `{"submissions":[` + strings.TrimSuffix(strings.Repeat(sub("https://a.example")+",", api.MaxForwardSubmissions+1), ",") + `]}`
	for _, c := range []struct {
		name      string
		body      string
		forwarded bool
		want      int
	}{
		{"not forwarded", batch, false, http.StatusForbidden},
		{"empty", `{"submissions":[]}`, true, http.StatusBadRequest},
		{"not JSON", `{"submissions":`, true, http.StatusBadRequest},
		{"too many", many, true, http.StatusBadRequest},
		{"too large", `{"submissions":["` + strings.Repeat("A", api.MaxForwardBytes) + `"]}`, true, http.StatusRequestEntityTooLarge},
	} {
		if code, body := post(c.body, c.forwarded); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
}

// keyedLog is batchLog whose frontends share a forwarding key.
type keyedLog struct{ batchLog }

func (keyedLog) ForwardKey() []byte { return []byte("0123456789abcdef0123456789abcdef") }

// TestForwardEndpointAuthenticated: a Log with a forwarding key
// (server.ForwardKeyer) takes only batches carrying their MAC under it
// (403 without, or with another's), and decodes their submissions as
// encoded, without the strict parse (a signature of the wrong size
// reaches the Log); one that does not decode gets 400.
func TestForwardEndpointAuthenticated(t *testing.T) {
	srv, err := server.New(server.Config{Reader: storage.NewMemory(), Log: keyedLog{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	batch := `{"submissions":[{"kind":"registration","issuer":"https://a.example","prev":null,"body":{},"sig":"AAAA"},{"kind":1}]}`
	post := func(mac string) (int, []byte) {
		t.Helper()
		resp, b := postForwarded(t, ts.URL+api.PathForward, batch, true, api.HeaderForwardMAC, mac)
		return resp.StatusCode, b
	}
	key := keyedLog{}.ForwardKey()
	for _, mac := range []string{"", httpguard.ForwardMAC([]byte("another key of thirty-two bytes!"), []byte(batch))} {
		if code, body := post(mac); code != http.StatusForbidden {
			t.Errorf("MAC %q: %d %s, want 403", mac, code, body)
		}
	}
	code, body := post(httpguard.ForwardMAC(key, []byte(batch)))
	if code != http.StatusOK {
		t.Fatalf("authenticated batch: %d %s", code, body)
	}
	var res api.ForwardResults
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || res.Results[0].Status != http.StatusOK || res.Results[1].Status != http.StatusBadRequest {
		t.Fatalf("authenticated batch answered %+v; want 200 (decoded as encoded) and 400", res.Results)
	}
}
