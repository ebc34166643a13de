package witness_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/witness"
)

// newKeysWitness is newTestWitness with the given keys.
func newKeysWitness(t *testing.T, keys witness.Keys, logs ...*testLog) (*testWitness, []string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	vkeys, err := witness.InitDirKeys(ctx, dir, "witness.test/pq", keys)
	if err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.VKeys, "\n") != strings.Join(vkeys, "\n") {
		t.Fatalf("OpenDir vkeys %v, InitDirKeys said %v", d.VKeys, vkeys)
	}
	for _, l := range logs {
		if err := d.Store.AddLog(ctx, l.origin, l.vkey); err != nil {
			t.Fatal(err)
		}
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signers: d.Signers, VKeys: d.VKeys})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() {
		srv.Close()
		w.Close()
		d.Close()
	})
	return &testWitness{w: w, store: d.Store, srv: srv, vkey: d.VKey, dir: dir}, vkeys
}

// TestMLDSAWitness: a witness with an ML-DSA-44 key (alone, or next to an
// Ed25519 one) answers add-checkpoint with one cosignature line per key,
// and transparency-dev/formats/note verifies them: the ML-DSA-44 one as a
// tlog-cosignature v1.1 subtree/v1 cosignature of [0, size) carrying a
// timestamp. The key file is private and lists one key a line.
func TestMLDSAWitness(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  witness.Keys
		types []byte
	}{
		{"mldsa-only", witness.Keys{MLDSA44: true}, []byte{c2sp.TypeCosignatureMLDSA44}},
		{"both", witness.Keys{Ed25519: true, MLDSA44: true}, []byte{c2sp.TypeCosignatureV1, c2sp.TypeCosignatureMLDSA44}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t, "example.com/pq-log", 20)
			tw, vkeys := newKeysWitness(t, tc.keys, l)
			if len(vkeys) != len(tc.types) {
				t.Fatalf("%d vkeys, want %d", len(vkeys), len(tc.types))
			}
			var vs []note.Verifier
			for i, vk := range vkeys {
				k, err := c2sp.ParseVKey(vk)
				if err != nil || k.Type != tc.types[i] {
					t.Fatalf("vkey %d: type %#x, %v; want %#x", i, k.Type, err, tc.types[i])
				}
				var v note.Verifier
				if k.Type == c2sp.TypeCosignatureMLDSA44 {
					v, err = fnote.NewMLDSAVerifier(vk)
				} else {
					v, err = fnote.NewVerifierForCosignatureV1(vk)
				}
				if err != nil {
					t.Fatalf("formats can't read vkey %d: %v", i, err)
				}
				vs = append(vs, v)
			}
			fi, err := os.Stat(filepath.Join(tw.dir, witness.KeyFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, %v", fi.Mode(), err)
			}
			for _, step := range []struct{ old, size uint64 }{{0, 10}, {10, 20}} {
				cp := l.checkpoint(t, step.size)
				r := tw.add(t, l, step.old, step.size)
				if r.status != 200 {
					t.Fatalf("add-checkpoint %d -> %d: %d %s", step.old, step.size, r.status, r.body)
				}
				if got := strings.Count(string(r.body), "\u2014 "); got != len(vkeys) {
					t.Fatalf("%d cosignature lines, want %d:\n%s", got, len(vkeys), r.body)
				}
				lv, _ := note.NewVerifier(l.vkey)
				n, err := note.Open(append(append([]byte(nil), cp...), r.body...), note.VerifierList(append(vs, lv)...))
				if err != nil {
					t.Fatalf("formats/note does not verify the cosigned checkpoint: %v\n%s%s", err, cp, r.body)
				}
				if len(n.Sigs) != 1+len(vkeys) {
					t.Fatalf("%d signatures verified, want %d", len(n.Sigs), 1+len(vkeys))
				}
				for _, s := range n.Sigs[1:] {
					if ts, err := fnote.CoSigV1Timestamp(s); err != nil || ts.Unix() <= 0 {
						t.Errorf("cosignature timestamp %v, %v", ts, err)
					}
				}
			}
			info := tw.get(t, "/")
			for _, vk := range vkeys {
				if !strings.Contains(string(info.body), "vkey "+vk+"\n") {
					t.Errorf("GET / does not list %s:\n%s", vk, info.body)
				}
			}
		})
	}
}

// TestWitnessKeyFileMismatch: a key file whose ML-DSA-44 line was replaced
// by another key is refused at open, as is a key file with two keys of one
// type, and InitDirKeys without keys.
func TestWitnessKeyFileMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := witness.InitDirKeys(ctx, dir, "witness.test/pq", witness.Keys{Ed25519: true, MLDSA44: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, witness.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	other, _, _ := witness.GenerateMLDSAKey("witness.test/pq")
	for name, content := range map[string]string{
		"other ML-DSA key": lines[0] + "\n" + other + "\n",
		"two ML-DSA keys":  lines[1] + "\n" + other + "\n",
		"Ed25519 only":     lines[0] + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, witness.KeyFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if d, err := witness.OpenDir(ctx, dir); err == nil {
			d.Close()
			t.Errorf("%s: OpenDir succeeded", name)
		}
	}
	if _, err := witness.InitDirKeys(ctx, t.TempDir(), "w", witness.Keys{}); err == nil {
		t.Error("InitDirKeys without keys succeeded")
	}
}
