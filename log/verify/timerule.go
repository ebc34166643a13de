package verify

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// TimeSkew is how far entry times and cosignature timestamps may
// disagree before the time rule (docs/time.md) is broken: the log's and
// the witnesses' clocks (NTP keeps them within a second; ten minutes
// tolerates a badly kept one), the time from an entry's admission to the
// cosignature of the checkpoint that first holds it (batching, the
// durable write, the witness round trip: seconds, bounded by the
// sequencer's 30 s witness timeout), and the whole-second resolution of
// cosignature timestamps. It is well under anything the policy measures
// (60 days between rotations), so a lie that matters to the policy cannot
// hide inside it. The log, the monitor and this verifier all use it.
const TimeSkew = 10 * time.Minute

// TimeRelation says how an entry relates to a cosigned checkpoint.
type TimeRelation int

const (
	// Contained: the checkpoint contains the entry (its size is larger
	// than the entry's index). Its witnesses saw the entry when they
	// cosigned, so the entry may not be dated later than their
	// cosignatures plus TimeSkew.
	Contained TimeRelation = iota
	// NotContained: the checkpoint does not contain the entry (its size
	// is at most the entry's index). Its witnesses cosigned before the
	// entry was added, so the entry may not be dated earlier than their
	// cosignatures minus TimeSkew.
	NotContained
)

// Relation returns how the entry at index relates to a checkpoint of
// size.
func Relation(index, size uint64) TimeRelation {
	if index < size {
		return Contained
	}
	return NotContained
}

// Quorum is what the time rule needs of a witness policy
// (*quorum.Policy): whether a set of witnesses, by policy name, meets it.
type Quorum interface {
	Satisfied(witnesses map[string]bool) bool
}

// Contradicts reports whether an entry dated t breaks the time rule
// against one cosignature timestamp cosig on a checkpoint in relation
// rel to the entry.
func Contradicts(t time.Time, rel TimeRelation, cosig time.Time) bool {
	if rel == Contained {
		return t.After(cosig.Add(TimeSkew))
	}
	return t.Before(cosig.Add(-TimeSkew))
}

// CheckEntryTime applies the time rule (docs/time.md) to an entry at
// index dated t, against the valid cosignatures (timestamps by witness
// policy name) of one checkpoint of size, signed by the log. The rule is
// broken when the witnesses whose cosignatures t contradicts meet the
// quorum: the policy trusts such a set to say when the checkpoint
// existed. It returns nil, or an *Error with CheckTime naming the entry,
// the witnesses and their timestamps.
func CheckEntryTime(index uint64, t time.Time, size uint64, cosigs map[string]time.Time, q Quorum) error {
	rel := Relation(index, size)
	against := map[string]bool{}
	var names []string
	for w, c := range cosigs {
		if Contradicts(t, rel, c) {
			against[w] = true
			names = append(names, w)
		}
	}
	if len(against) == 0 || !q.Satisfied(against) {
		return nil
	}
	sort.Strings(names)
	var parts []string
	for _, w := range names {
		parts = append(parts, fmt.Sprintf("%s at %s", w, cosigs[w].UTC().Format(time.RFC3339)))
	}
	if rel == Contained {
		return fail(CheckTime, "entry %d is dated %s, more than %v after the cosignatures of the checkpoint of size %d that contains it: %s",
			index, t.UTC().Format(time.RFC3339Nano), TimeSkew, size, strings.Join(parts, ", "))
	}
	return fail(CheckTime, "entry %d is dated %s, more than %v before the cosignatures of the checkpoint of size %d that does not contain it: %s",
		index, t.UTC().Format(time.RFC3339Nano), TimeSkew, size, strings.Join(parts, ", "))
}

// CosignatureTimes returns the timestamps of c's valid cosignatures by
// witness name, for CheckEntryTime.
func (c *VerifiedCheckpoint) CosignatureTimes() map[string]time.Time {
	m := make(map[string]time.Time, len(c.Cosignatures))
	for _, s := range c.Cosignatures {
		m[s.Witness] = s.Time
	}
	return m
}
