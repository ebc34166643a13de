package c2sp_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/c2sp"
)

func hashes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		out[i] = h[:]
	}
	return out
}

func hashLines(hs [][]byte) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	return b.String()
}

// TestAddCheckpointRequest: round trip, and each malformed body refused
// with an error naming the problem.
func TestAddCheckpointRequest(t *testing.T) {
	cp := []byte(string(sample().Marshal()) + "\n— " + origin + " AQIDBAU=\n")
	for _, r := range []*c2sp.AddCheckpointRequest{
		{OldSize: 0, Checkpoint: cp},
		{OldSize: 12344, Proof: hashes(3), Checkpoint: cp},
		{OldSize: 1<<64 - 1, Proof: hashes(c2sp.MaxConsistencyProofLines), Checkpoint: cp},
	} {
		body, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2sp.ParseAddCheckpointRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		if got.OldSize != r.OldSize || hashLines(got.Proof) != hashLines(r.Proof) || !bytes.Equal(got.Checkpoint, cp) {
			t.Fatalf("round trip: %+v, want %+v", got, r)
		}
	}
	h := hashLines(hashes(1))
	for _, tc := range []struct{ body, wantErr string }{
		{"", "no old size line"},
		{"old 1", "no old size line"},
		{"new 1\n\n" + string(cp), "is not `old <size>`"},
		{"old  1\n\n" + string(cp), "not a canonical decimal"},
		{"old 01\n\n" + string(cp), "not a canonical decimal"},
		{"old -1\n\n" + string(cp), "not a canonical decimal"},
		{"old 1.0\n\n" + string(cp), "not a canonical decimal"},
		{"old 18446744073709551616\n\n" + string(cp), "out of range"},
		{"old 1\n" + h + string(cp), "not a base64 SHA-256 hash"},
		{"old 1\n" + h, "not followed by an empty line"},
		{"old 1\n" + h + "\n", "no checkpoint"},
		{"old 1\n" + hashLines(hashes(c2sp.MaxConsistencyProofLines+1)) + "\n" + string(cp), "more than 63 hashes"},
		{"old 1\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n\n" + string(cp), "not a base64 SHA-256 hash"},
		{"old 1\n" + strings.TrimSuffix(h, "=\n") + "\n\n" + string(cp), "not a base64 SHA-256 hash"},
		{"old 1\n" + h[:42] + "B=\n\n" + string(cp), "not a base64 SHA-256 hash"},
		{"old 1\n\n" + strings.Repeat("x", c2sp.MaxNoteSize+1), "over the limit"},
	} {
		if _, err := c2sp.ParseAddCheckpointRequest([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseAddCheckpointRequest(%.60q): %v, want %q", tc.body, err, tc.wantErr)
		}
	}
	if _, err := (&c2sp.AddCheckpointRequest{Proof: hashes(64), Checkpoint: cp}).Marshal(); err == nil {
		t.Error("Marshal of 64 proof lines succeeded")
	}
	if _, err := (&c2sp.AddCheckpointRequest{Proof: [][]byte{{1}}, Checkpoint: cp}).Marshal(); err == nil {
		t.Error("Marshal of a 1-byte hash succeeded")
	}
	for _, tc := range []struct{ in, want string }{{string(cp), origin}, {"\nx", ""}, {"x", ""}} {
		got, err := c2sp.CheckpointOrigin([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("CheckpointOrigin(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// FuzzParseAddCheckpointRequest: never panics; one encoding per request.
func FuzzParseAddCheckpointRequest(f *testing.F) {
	f.Add([]byte("old 0\n\nx\n"))
	f.Add([]byte("old 5\n" + hashLines(hashes(2)) + "\n" + string(sample().Marshal()) + "\n— a AQIDBAU=\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := c2sp.ParseAddCheckpointRequest(in)
		if err != nil {
			return
		}
		re, err := r.Marshal()
		if err != nil || !bytes.Equal(re, in) {
			t.Fatalf("request has a second encoding (%v): %q", err, in)
		}
	})
}

// TestProof: round trip and hostile tlog-proofs.
func TestProof(t *testing.T) {
	cp := []byte(string(sample().Marshal()) + "\n— " + origin + " AQIDBAU=\n")
	for _, p := range []*c2sp.Proof{
		{Index: 0, Checkpoint: cp},
		{Extra: []byte("entry"), Index: 73894, Inclusion: hashes(5), Checkpoint: cp},
		{Extra: []byte{}, Index: 1<<64 - 1, Inclusion: hashes(c2sp.MaxInclusionHashes), Checkpoint: cp},
	} {
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2sp.ParseProof(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Extra, p.Extra) || (got.Extra == nil) != (p.Extra == nil) || got.Index != p.Index || hashLines(got.Inclusion) != hashLines(p.Inclusion) || !bytes.Equal(got.Checkpoint, cp) {
			t.Fatalf("round trip: %+v, want %+v", got, p)
		}
	}
	hd := c2sp.ProofHeader + "\n"
	h := hashLines(hashes(1))
	for _, tc := range []struct{ in, wantErr string }{
		{"", "does not start with"},
		{"c2sp.org/tlog-proof@v2\nindex 0\n\n" + string(cp), "does not start with"},
		{hd, "ends after its header"},
		{hd + "extra QUJD\n", "ends after its extra line"},
		{hd + "extra QUJ\nindex 0\n\n" + string(cp), "not canonical base64"},
		{hd + "extra QUJD\nextra QUJD\nindex 0\n\n" + string(cp), "want an index line"},
		{hd + "index 01\n\n" + string(cp), "not a canonical decimal"},
		{hd + "index 18446744073709551616\n\n" + string(cp), "out of range"},
		{hd + "index 0\n" + h, "not followed by an empty line"},
		{hd + "index 0\n" + h + "\n", "no checkpoint"},
		{hd + "index 0\n" + hashLines(hashes(64)) + "\n" + string(cp), "more than 63 hashes"},
		{hd + "index 0\nAAAA\n\n" + string(cp), "not a base64 SHA-256 hash"},
		{hd + "extra " + base64.StdEncoding.EncodeToString(make([]byte, c2sp.MaxProofExtra+3)) + "\nindex 0\n\n" + string(cp), "over the limit"},
		{hd + "index 0\n\n" + strings.Repeat("x", c2sp.MaxProofSize), "over the limit"},
	} {
		if _, err := c2sp.ParseProof([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseProof(%.60q): %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// FuzzParseProof: never panics; one encoding per proof.
func FuzzParseProof(f *testing.F) {
	f.Add([]byte(c2sp.ProofHeader + "\nextra QUJD\nindex 3\n5SB4fm0fbJ7J9THeiZiXCtvwWNpA1OM0YI8FEUnBWaI=\n\nx\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := c2sp.ParseProof(in)
		if err != nil {
			return
		}
		re, err := p.Marshal()
		if err != nil || !bytes.Equal(re, in) {
			t.Fatalf("tlog-proof has a second encoding (%v)", err)
		}
	})
}

// TestEntryBundle: round trip, the width and size bounds, truncation and
// trailing data.
func TestEntryBundle(t *testing.T) {
	var entries [][]byte
	for i := 0; i < c2sp.EntryBundleWidth; i++ {
		entries = append(entries, []byte(fmt.Sprintf("entry %d", i)))
	}
	entries[3] = []byte{}
	entries[4] = bytes.Repeat([]byte{'x'}, c2sp.MaxEntrySize)
	b, err := c2sp.AppendEntryBundle(nil, entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 5, c2sp.EntryBundleWidth} {
		part, _ := c2sp.AppendEntryBundle(nil, entries[:n])
		got, err := c2sp.ParseEntryBundle(part, n)
		if err != nil || len(got) != n {
			t.Fatalf("ParseEntryBundle(%d): %v", n, err)
		}
		for i := range got {
			if !bytes.Equal(got[i], entries[i]) {
				t.Fatalf("entry %d differs", i)
			}
		}
		// A partial bundle read from the full one.
		pre, rest, err := c2sp.SplitEntryBundle(b, n)
		if err != nil || len(pre) != n || len(rest) != len(b)-len(part) {
			t.Fatalf("SplitEntryBundle(%d): %v", n, err)
		}
	}
	got, _ := c2sp.ParseEntryBundle(b, c2sp.EntryBundleWidth)
	if cap(got[0]) != len(got[0]) {
		t.Error("an entry's capacity reaches into the next entry")
	}
	two, _ := c2sp.AppendEntryBundle(nil, entries[:2])
	for _, tc := range []struct {
		b       []byte
		n       int
		wantErr string
	}{
		{two, 3, "truncated"},
		{two, 1, "bytes after its 1 entries"},
		{two[:len(two)-1], 2, "entry 1 is truncated"},
		{two[:1], 1, "truncated"},
		{nil, 1, "truncated"},
		{two, 0, "width 0"},
		{b, c2sp.EntryBundleWidth + 1, "width 257"},
		{append(bytes.Clone(two), 0), 2, "1 bytes after"},
	} {
		if _, err := c2sp.ParseEntryBundle(tc.b, tc.n); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseEntryBundle(%d bytes, %d): %v, want %q", len(tc.b), tc.n, err, tc.wantErr)
		}
	}
	if _, err := c2sp.AppendEntryBundle(nil, [][]byte{make([]byte, c2sp.MaxEntrySize+1)}); err == nil {
		t.Error("AppendEntryBundle of an oversized entry succeeded")
	}
	if _, err := c2sp.AppendEntryBundle(nil, append(entries, nil)); err == nil {
		t.Error("AppendEntryBundle of 257 entries succeeded")
	}
}

// FuzzParseEntryBundle: never panics; AppendEntryBundle writes back what
// it accepted.
func FuzzParseEntryBundle(f *testing.F) {
	two, _ := c2sp.AppendEntryBundle(nil, [][]byte{[]byte("a"), []byte("bc")})
	f.Add(two, 2)
	f.Add([]byte{0, 0}, 1)
	f.Fuzz(func(t *testing.T, in []byte, n int) {
		entries, err := c2sp.ParseEntryBundle(in, n)
		if err != nil {
			return
		}
		re, err := c2sp.AppendEntryBundle(nil, entries)
		if err != nil || !bytes.Equal(re, in) {
			t.Fatalf("entry bundle does not round-trip (%v)", err)
		}
	})
}

// FuzzParseVKey: never panics; one encoding per vkey.
func FuzzParseVKey(f *testing.F) {
	f.Add(c2sp.FormatVKey("w1.example", c2sp.TypeCosignatureV1, pubOf(seededKey("w1"))))
	f.Fuzz(func(t *testing.T, in string) {
		k, err := c2sp.ParseVKey(in)
		if err != nil {
			return
		}
		// One encoding, but for the case of the key ID's hex digits.
		k2, err := c2sp.ParseVKey(k.String())
		if err != nil || !strings.EqualFold(k.String(), in) || k2.String() != k.String() {
			t.Fatalf("vkey %q re-encodes as %q (%v)", in, k.String(), err)
		}
	})
}
