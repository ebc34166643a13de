package bundle_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/prometheus/client_golang/prometheus"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	log *bundletest.Log
	ws  []*bundletest.Witness
	v   *verify.Verifier
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{log: bundletest.NewLog("keycommit.example/log/handler")}
	for i := 1; i <= 3; i++ {
		e.ws = append(e.ws, bundletest.NewWitness(fmt.Sprintf("w%d.example", i)))
	}
	pol, err := quorum.Parse([]byte(bundletest.Policy(e.log.VKey, 2, e.ws...)))
	if err != nil {
		t.Fatal(err)
	}
	e.v, err = verify.New(verify.Config{LogKey: e.log.VKey, Policy: pol, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	h, err := bundle.NewHandler(bundle.Config{Source: e.log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	e.srv = httptest.NewServer(mux) // loopback, port chosen by the OS
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) get(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A bare transport, so that gzip is not decoded behind our back.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
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

func TestHandlerBundle(t *testing.T) {
	e := newEnv(t)
	if resp, _ := e.get(t, bundle.BundlePath, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("empty log: status %d, want 404", resp.StatusCode)
	}
	ks, err := bundletest.KeySet(3, 2, t0.Add(240*time.Hour), "handler")
	if err != nil {
		t.Fatal(err)
	}
	e.log.Append([]byte("first"))
	if _, err := e.log.AppendSnapshot(ks, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Publish(t0, e.ws[:2]...); err != nil {
		t.Fatal(err)
	}
	resp, raw := e.get(t, bundle.BundlePath, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != bundle.BundleContentType {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	prev, err := e.v.Verify(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	// gzip, and the same bytes once decompressed.
	resp, gz := e.get(t, bundle.BundlePath, map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip encoding")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, raw) {
		t.Errorf("gzipped bundle differs")
	}
	// Conditional request.
	if resp, _ := e.get(t, bundle.BundlePath, map[string]string{"If-None-Match": resp.Header.Get("ETag")}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	// The log grows; ?old gives the consistency proof.
	for i := 0; i < 20; i++ {
		e.log.Append([]byte(fmt.Sprint("more ", i)))
	}
	if _, err := e.log.Publish(t0, e.ws[1:]...); err != nil {
		t.Fatal(err)
	}
	_, raw2 := e.get(t, fmt.Sprintf("%s?old=%d", bundle.BundlePath, prev.Checkpoint.Size), nil)
	if _, err := e.v.Verify(raw2, prev); err != nil {
		t.Fatal(err)
	}
	_, raw3 := e.get(t, bundle.BundlePath, nil)
	if _, err := e.v.Verify(raw3, prev); verify.CheckOf(err) != verify.CheckConsistency {
		t.Errorf("bundle without proof against a previous one: %v, want a consistency failure", err)
	}
	for _, q := range []string{"?old=x", "?old=-1"} {
		if resp, _ := e.get(t, bundle.BundlePath+q, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}
	// old at or beyond the size: no proof.
	_, raw4 := e.get(t, fmt.Sprintf("%s?old=%d", bundle.BundlePath, 1000), nil)
	if b, err := verify.ParseBundle(raw4); err != nil || b.Consistency != nil {
		t.Errorf("?old beyond the tree: %v", err)
	}
}

func TestHandlerIssuerProof(t *testing.T) {
	e := newEnv(t)
	issuer := "https://issuer.example"
	key := ed25519.NewKeyFromSeed(bundletest.Seed("issuer account"))
	pt, err := bundletest.P384Point("proof")
	if err != nil {
		t.Fatal(err)
	}
	y := base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0, 1}, pt...))
	body := &schema.KeyCommitment{PST: schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 1, BatchSize: 5,
		Keys: map[string]schema.PSTKey{"1": {Y: y, Expiry: fmt.Sprint(t0.Add(time.Hour).UnixMicro())}}}}}
	idx, leaf, err := e.log.AppendCommitment(issuer, body, key, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.log.Append([]byte("after"))
	if _, err := e.log.Publish(t0, e.ws...); err != nil {
		t.Fatal(err)
	}
	resp, raw := e.get(t, bundle.IssuerProofPath+"?issuer="+url.QueryEscape(issuer), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	got, err := e.v.VerifyIssuerProof(raw, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != idx || !bytes.Equal(got.Entry, leaf) {
		t.Errorf("proof for index %d, want %d", got.Index, idx)
	}
	if resp, _ := e.get(t, bundle.IssuerProofPath+"?issuer="+url.QueryEscape("https://unknown.example"), nil); resp.StatusCode != 404 {
		t.Errorf("unknown issuer: status %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.get(t, bundle.IssuerProofPath, nil); resp.StatusCode != 400 {
		t.Errorf("no issuer: status %d, want 400", resp.StatusCode)
	}
}

// TestBuildChecksSource: Build refuses a source whose key set does not
// match its snapshot.
func TestBuildChecksSource(t *testing.T) {
	l := bundletest.NewLog("keycommit.example/log/bad")
	ks, _ := bundletest.KeySet(1, 1, t0, "a")
	if _, err := l.AppendSnapshot(ks, t0); err != nil {
		t.Fatal(err)
	}
	l.Publish(t0)
	if _, err := bundle.Build(context.Background(), l, 0); err != nil {
		t.Fatal(err)
	}
	bad := badKeySet{l}
	if _, err := bundle.Build(context.Background(), bad, 0); err == nil {
		t.Errorf("Build accepted a key set that does not match the snapshot")
	}
}

type badKeySet struct{ *bundletest.Log }

func (b badKeySet) LatestSnapshot(ctx context.Context, n uint64) (uint64, []byte, []byte, error) {
	i, e, ks, err := b.Log.LatestSnapshot(ctx, n)
	return i, e, append([]byte(" "), ks...), err
}
