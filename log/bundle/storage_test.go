package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"golang.org/x/mod/sumdb/tlog"
)

// TestStorageSource runs the real sequencer over the in-memory backend,
// with test witnesses cosigning every checkpoint, and builds bundles and
// issuer proofs from what it stored. A handler started afresh on the same
// storage (as after a restart of the log) serves the delta from the
// oldest bundle a user agent holds, byte-identical to the one the handler
// that served that bundle answers, and it verifies.
func TestStorageSource(t *testing.T) {
	ws := []*bundletest.Witness{bundletest.NewWitness("a.example"), bundletest.NewWitness("b.example"), bundletest.NewWitness("c.example")}
	mem := storage.NewMemory()
	l := logtest.Start(t, mem, &logtest.Options{Witness: func(ctx context.Context, signed []byte) ([]byte, error) {
		return bundletest.Cosign(signed, time.Now(), ws[0], ws[2]), nil
	}})
	pol, err := quorum.Parse([]byte(bundletest.Policy(l.VKey, 2, ws...)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{LogKey: l.VKey, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	src := bundle.NewStorageSource(mem)
	ctx := context.Background()

	submit := func(is *issuertest.Issuer, sub *schema.Submission) {
		t.Helper()
		res, err := l.Client.Submit(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		is.Logged(tilesLeaf(res.Entry))
	}
	// waitCosigned waits until the witness hook has cosigned the latest
	// checkpoint (it runs asynchronously).
	waitCosigned := func() {
		t.Helper()
		size, _, err := mem.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n, _, err := mem.Cosigned(ctx); err == nil && n >= size {
				return
			}
		}
		t.Fatalf("checkpoint of size %d was not cosigned", size)
	}

	serve := func(h *bundle.Handler, path string) (int, []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		if strings.HasPrefix(path, bundle.DeltaPath) {
			h.ServeDelta(w, r)
		} else {
			h.ServeBundle(w, r)
		}
		return w.Code, w.Body.Bytes()
	}
	h1, err := bundle.NewHandler(bundle.Config{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	var prev, first *verify.Verified
	var full []byte
	var code int
	var d1 []byte
	for i := 1; i <= 3; i++ {
		is := issuertest.Numbered(t, i)
		submit(is, is.Register(t))
		submit(is, is.Commit(t, 3, l.Clock.Now()))
		waitCosigned()
		var old uint64
		if prev != nil {
			old = prev.Checkpoint.Size
		}
		raw, err := bundle.Build(ctx, src, old)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(raw, prev)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ks, err := got.KeySet()
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := ks.PST(is.Origin); ks.NumPST() != i || !ok || c.IsNull() {
			t.Fatalf("round %d: key set has %d issuers, not %s", i, ks.NumPST(), is.Origin)
		}
		if prev != nil && (len(got.Changes) != 1 || got.Changes[0].Issuer != is.Origin || got.Changes[0].Op != "added") {
			t.Errorf("round %d: changes %v, want %s added", i, got.Changes, is.Origin)
		}
		p, err := bundle.BuildIssuerProof(ctx, src, is.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyIssuerProof(p, is.Origin); err != nil {
			t.Fatal(err)
		}
		prev = got
		if first == nil {
			first = got
		}
		if code, full = serve(h1, bundle.BundlePath); code != 200 {
			t.Fatalf("round %d: bundle status %d: %s", i, code, full)
		}
	}
	code, d1 = serve(h1, deltaPath(first))
	if code != 200 {
		t.Fatalf("delta from the first bundle: status %d: %s", code, d1)
	}
	h2, err := bundle.NewHandler(bundle.Config{Source: bundle.NewStorageSource(mem)})
	if err != nil {
		t.Fatal(err)
	}
	code, d2 := serve(h2, deltaPath(first))
	if code != 200 || !bytes.Equal(d1, d2) {
		t.Fatalf("delta from the first bundle after a restart: status %d, same bytes %v: %s", code, bytes.Equal(d1, d2), d2)
	}
	got, err := v.VerifyDelta(d2, first)
	if err != nil {
		t.Fatal(err)
	}
	if want, err := v.Verify(full, nil); err != nil || !bytes.Equal(got.Bundle().KeySet, want.Bundle().KeySet) || len(got.Changes) != 2 {
		t.Fatalf("delta applied: %v, changes %v", err, got.Changes)
	}
	if _, err := bundle.BuildIssuerProof(ctx, src, "https://nobody.example"); !errors.Is(err, bundle.ErrNotLogged) {
		t.Errorf("issuer proof for an unknown issuer: %v, want ErrNotLogged", err)
	}
}

func tilesLeaf(entry []byte) tlog.Hash { return tiles.LeafHash(entry) }
