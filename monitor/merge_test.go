package monitor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
)

// TestMergeNotesKeepsNewestPerWitness: a log re-cosigning an unchanged
// checkpoint every hour for a week hands the monitor a note with fresher
// cosignatures each time; the merged anchor keeps one line per witness,
// the newest, and never grows. Mutation caught: merging line by line
// (the anchor grows by a line per witness per round).
func TestMergeNotesKeepsNewestPerWitness(t *testing.T) {
	l := bundletest.NewLog("keycommit.example/log/merge")
	l.Append([]byte("entry"))
	w1, w2 := bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	anchor, err := l.Publish(t0, w1, w2)
	if err != nil {
		t.Fatal(err)
	}
	text := anchor[:bytes.Index(anchor, []byte("\n\n"))+1]
	var last []byte
	for h := 1; h <= 24*7; h++ {
		ts := uint64(t0.Add(time.Duration(h) * time.Hour).Unix())
		// The log's note (its signature line first), re-cosigned by w1;
		// w2 answers every other round.
		next := append([]byte(nil), anchor[:bytes.Index(anchor, []byte("\n\n"))+2]...)
		next = append(next, strings.SplitAfter(string(anchor[len(text)+1:]), "\n")[0]...)
		next = append(next, w1.CosignatureLine(text, ts)...)
		if h%2 == 0 {
			next = append(next, w2.CosignatureLine(text, ts)...)
		}
		merged, changed := mergeNotes(anchor, next)
		if !changed {
			t.Fatalf("hour %d: fresher cosignatures not merged", h)
		}
		anchor = merged
		last = []byte(w1.CosignatureLine(text, ts))
	}
	if n := bytes.Count(anchor, []byte("\u2014 ")); n != 3 {
		t.Fatalf("merged anchor has %d signature lines after a week, want 3 (log, w1, w2):\n%s", n, anchor)
	}
	if !bytes.Contains(anchor, last) {
		t.Fatalf("merged anchor lacks w1's newest cosignature:\n%s", anchor)
	}
	if _, changed := mergeNotes(anchor, anchor); changed {
		t.Fatal("merging a note into itself changed it")
	}
}
