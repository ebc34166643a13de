package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/storage"
)

// TestSubmitClockRefusal: a submission the sequencer refuses because of
// its clock (here behind the last entry) is answered 503 with a
// Retry-After and an error naming the clock.
func TestSubmitClockRefusal(t *testing.T) {
	l := logtest.Start(t, storage.NewMemory(), nil)
	l.Clock.Set(logtest.T0.Add(-time.Hour))
	is := issuertest.New(t, "https://late.example")
	body, err := json.Marshal(is.Register(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(l.URL+api.PathSubmit, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(b), "its clock is behind its last entry") {
		t.Fatalf("got %d, Retry-After %q, body %s; want 503 with Retry-After naming the clock", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
