package storagetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/keycommit/keycommit/log/storage"
)

// cosNote is a signed checkpoint note of the given size whose root is 32
// bytes of root, with a log signature line and the given cosignature
// lines. Storage does not verify signatures, so they are placeholders.
func cosNote(size uint64, root byte, cosigs ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "example.com/log\n%d\n%s\n\n", size, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{root}, 32)))
	b.WriteString("\u2014 example.com/log " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 4+64)) + "\n")
	for _, c := range cosigs {
		b.WriteString(c)
	}
	return b.Bytes()
}

// cosLine is a tlog-cosignature line of witness name (key ID id) with
// timestamp ts.
func cosLine(name string, id uint32, ts uint64) string {
	sig := make([]byte, 4+8+64)
	binary.BigEndian.PutUint32(sig, id)
	binary.BigEndian.PutUint64(sig[4:], ts)
	sig[12] = byte(ts) // the signature differs with the timestamp
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// testCosigned checks SetCosigned's merge rule (storage.MergeCosigned):
// re-cosigning the same checkpoint makes the stored note fresher per
// witness, never older; a quorum assembled over several calls is kept; a
// different checkpoint of the same size is refused; a larger size
// replaces everything; and the result survives a reopen.
func testCosigned(t *testing.T, h Harness) {
	ctx := context.Background()
	b := newBackend(t, h)
	set := func(size uint64, note []byte) error { return b.SetCosigned(ctx, size, note) }
	want := func(step string, size uint64, note []byte) {
		t.Helper()
		n, got, err := b.Cosigned(ctx)
		if err != nil || n != size || !bytes.Equal(got, note) {
			t.Fatalf("%s: Cosigned = %d, %q, %v; want %d, %q", step, n, got, err, size, note)
		}
	}
	if err := set(3, cosNote(3, 'a', cosLine("w1", 1, 100))); err != nil {
		t.Fatal(err)
	}
	// Fresher cosignature of the same checkpoint: accepted.
	if err := set(3, cosNote(3, 'a', cosLine("w1", 1, 200))); err != nil {
		t.Fatalf("same size, fresher cosignature: %v", err)
	}
	want("fresher", 3, cosNote(3, 'a', cosLine("w1", 1, 200)))
	// Older one: no error, but it does not replace the newer.
	if err := set(3, cosNote(3, 'a', cosLine("w1", 1, 150))); err != nil {
		t.Fatalf("same size, older cosignature: %v", err)
	}
	want("older", 3, cosNote(3, 'a', cosLine("w1", 1, 200)))
	// Another witness in a later round: merged, the first one's kept.
	if err := set(3, cosNote(3, 'a', cosLine("w2", 2, 180))); err != nil {
		t.Fatalf("same size, other witness: %v", err)
	}
	want("merged", 3, cosNote(3, 'a', cosLine("w1", 1, 200), cosLine("w2", 2, 180)))
	// Both again, one fresher and one older.
	if err := set(3, cosNote(3, 'a', cosLine("w1", 1, 190), cosLine("w2", 2, 300))); err != nil {
		t.Fatal(err)
	}
	want("per witness", 3, cosNote(3, 'a', cosLine("w1", 1, 200), cosLine("w2", 2, 300)))
	// Same size, different root: refused, nothing changes.
	if err := set(3, cosNote(3, 'b', cosLine("w1", 1, 900))); !errors.Is(err, storage.ErrCosignedConflict) {
		t.Fatalf("same size, different root: %v, want ErrCosignedConflict", err)
	}
	want("different root", 3, cosNote(3, 'a', cosLine("w1", 1, 200), cosLine("w2", 2, 300)))
	// Not a note: refused.
	if err := set(4, []byte("not a note")); err == nil {
		t.Fatal("SetCosigned accepted a value that is not a signed note")
	}
	// Smaller size: ignored, even with fresh cosignatures.
	if err := set(2, cosNote(2, 'a', cosLine("w1", 1, 999))); err != nil {
		t.Fatal(err)
	}
	want("smaller", 3, cosNote(3, 'a', cosLine("w1", 1, 200), cosLine("w2", 2, 300)))
	// Larger size: replaces, older-size cosignatures are not carried over.
	if err := set(5, cosNote(5, 'c', cosLine("w2", 2, 50))); err != nil {
		t.Fatal(err)
	}
	want("larger", 5, cosNote(5, 'c', cosLine("w2", 2, 50)))
	if h.Reopen != nil {
		b = h.Reopen(t, b)
		t.Cleanup(func() { b.Close() })
		want("after reopening", 5, cosNote(5, 'c', cosLine("w2", 2, 50)))
		if err := set(5, cosNote(5, 'c', cosLine("w2", 2, 60))); err != nil {
			t.Fatal(err)
		}
		want("fresher after reopening", 5, cosNote(5, 'c', cosLine("w2", 2, 60)))
	}
}
