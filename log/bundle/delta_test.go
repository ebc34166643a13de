package bundle_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
)

func deltaPath(held *verify.Verified) string {
	return fmt.Sprintf("%s?old=%d&base=%s", bundle.DeltaPath, held.Checkpoint.Size, hex.EncodeToString(held.Commitment()))
}

// TestHandlerDelta: the handler serves deltas from the latest and earlier
// snapshots that verify against the bundle held, identical bytes with an
// ETag for the same question, 404 for a key set it does not hold, 400 for
// bad parameters.
func TestHandlerDelta(t *testing.T) {
	e := newEnv(t)
	ks, err := bundletest.KeySet(4, 2, t0.Add(240*time.Hour), "delta")
	if err != nil {
		t.Fatal(err)
	}
	e.log.Append([]byte("first"))
	e.log.AppendSnapshot(ks, t0)
	e.log.Publish(t0, e.ws[:2]...)
	_, raw := e.get(t, bundle.BundlePath, nil)
	held, err := e.v.Verify(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changed, the tree grew: a small delta.
	e.log.Append([]byte("second"))
	e.log.Publish(t0, e.ws[:2]...)
	resp, d := e.get(t, deltaPath(held), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != bundle.DeltaContentType || resp.Header.Get("ETag") == "" ||
		resp.Header.Get("Cache-Control") != "public, max-age=10" {
		t.Fatalf("status %d, headers %v: %s", resp.StatusCode, resp.Header, d)
	}
	if _, d2 := e.get(t, deltaPath(held), nil); !bytes.Equal(d, d2) {
		t.Error("two requests for the same delta got different bytes")
	}
	if r, _ := e.get(t, deltaPath(held), map[string]string{"If-None-Match": resp.Header.Get("ETag")}); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d", r.StatusCode)
	}
	next, err := e.v.VerifyDelta(d, held)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) > 2048 {
		t.Errorf("unchanged delta is %d bytes", len(d))
	}
	// An issuer rotates: the delta from the previous snapshot (which the
	// handler served) carries that issuer only.
	ks.PST["https://issuer-1.example"] = ks.PST["https://issuer-2.example"]
	e.log.AppendSnapshot(ks, t0)
	e.log.Publish(t0, e.ws[:2]...)
	_, full := e.get(t, bundle.BundlePath, nil)
	_, d = e.get(t, deltaPath(next), nil)
	got, err := e.v.VerifyDelta(d, next)
	if err != nil {
		t.Fatalf("%v: %s", err, d)
	}
	want, err := e.v.Verify(full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bundle().KeySet, want.Bundle().KeySet) || fmt.Sprint(got.Changes) != "[https://issuer-1.example pst changed]" {
		t.Errorf("delta changes %v", got.Changes)
	}
	if len(d) >= len(full) {
		t.Errorf("one-issuer delta is %d bytes, the full bundle %d", len(d), len(full))
	}
	// A key set the handler does not hold.
	if r, b := e.get(t, fmt.Sprintf("%s?old=2&base=%064x", bundle.DeltaPath, 7), nil); r.StatusCode != http.StatusNotFound || !bytes.Contains(b, []byte(bundle.BundlePath)) {
		t.Errorf("unknown base: status %d: %s", r.StatusCode, b)
	}
	for _, q := range []string{"", "?old=1", "?old=0&base=" + fmt.Sprintf("%064x", 1), "?old=x&base=" + fmt.Sprintf("%064x", 1),
		"?old=1&base=" + fmt.Sprintf("%064X", 0xab), "?old=1000&base=" + hex.EncodeToString(sha256.New().Sum(nil))} {
		if r, _ := e.get(t, bundle.DeltaPath+q, nil); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, r.StatusCode)
		}
	}
}
