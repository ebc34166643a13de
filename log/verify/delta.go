package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/keysetroot"
)

// DeltaHeader is the first line of a version 1 delta bundle.
const DeltaHeader = "keycommit.delta/v1"

// CheckDelta names the check that a delta applies to the bundle held.
const CheckDelta Check = "delta"

// Delta is a parsed delta bundle (docs/bundle.md): what changed since the
// bundle a user agent holds (tree size BaseSize, and BaseDigest, the key
// set commitment of its snapshot: its key set root, or its key set digest
// for a snapshot of a log made before the root; see Verified.Commitment).
// Applied to that bundle it yields the full bundle of the delta's
// checkpoint, which is then verified as any bundle is.
type Delta struct {
	BaseSize   uint64
	BaseDigest []byte
	// Entry is the new snapshot entry; nil if the snapshot did not change
	// (then Changes is empty).
	Entry []byte
	// Changes are the members of the key set that were put or deleted,
	// sorted by part (pst, then privacy_pass) and origin.
	Changes     []DeltaChange
	Consistency *ConsistencyProof
	Index       uint64
	Inclusion   [][]byte
	Checkpoint  []byte
}

// DeltaChange is one issuer's member of a key set part put (added or
// replaced) or deleted.
type DeltaChange struct {
	// Part is "pst" or "privacy_pass".
	Part string
	// Origin is the issuer origin.
	Origin string
	// Member is the member's canonical bytes `"<origin>":<value>`; nil
	// for a deletion.
	Member []byte
}

func partRank(p string) int {
	if p == "pst" {
		return 0
	}
	return 1
}

func changeLess(a, b DeltaChange) bool {
	if a.Part != b.Part {
		return partRank(a.Part) < partRank(b.Part)
	}
	return a.Origin < b.Origin
}

// Marshal encodes the delta; it refuses what ParseDelta would refuse.
func (d *Delta) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(DeltaHeader + "\n")
	buf.WriteString("base " + strconv.FormatUint(d.BaseSize, 10) + " " + base64.StdEncoding.EncodeToString(d.BaseDigest) + "\n")
	if d.Entry != nil {
		buf.WriteString("entry ")
		buf.Write(d.Entry)
		buf.WriteString("\n")
	}
	for _, c := range d.Changes {
		if c.Member != nil {
			buf.WriteString("put " + c.Part + " ")
			buf.Write(c.Member)
		} else {
			buf.WriteString("del " + c.Part + " ")
			buf.Write(encodeJSONString(c.Origin))
		}
		buf.WriteString("\n")
	}
	if d.Consistency != nil {
		buf.WriteString("consistency " + strconv.FormatUint(d.Consistency.OldSize, 10) + "\n")
		buf.Write(appendHashes(nil, d.Consistency.Hashes))
	}
	buf.WriteString("index " + strconv.FormatUint(d.Index, 10) + "\n")
	buf.Write(appendHashes(nil, d.Inclusion))
	buf.WriteString("\n")
	buf.Write(d.Checkpoint)
	out := buf.Bytes()
	if _, err := ParseDelta(out); err != nil {
		return nil, fmt.Errorf("couldn't encode delta: %w", err)
	}
	return out, nil
}

func encodeJSONString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// ParseDelta parses a version 1 delta bundle. It checks the format only.
// Errors are *Error with Check CheckFormat.
func ParseDelta(raw []byte) (*Delta, error) {
	d, err := parseDelta(raw)
	if err != nil {
		return nil, failErr(CheckFormat, err)
	}
	return d, nil
}

func parseDelta(raw []byte) (*Delta, error) {
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("delta is %d bytes, over the limit of %d", len(raw), MaxBundleSize)
	}
	r := lineReader{rest: raw}
	line, ok := r.next()
	if !ok || string(line) != DeltaHeader {
		return nil, fmt.Errorf("delta does not start with the line %q", DeltaHeader)
	}
	d := &Delta{}
	v, err := r.field("base")
	if err != nil {
		return nil, err
	}
	sz, dg, found := bytes.Cut(v, []byte(" "))
	if !found {
		return nil, errors.New("base line: want <size> <digest>")
	}
	if d.BaseSize, err = c2sp.ParseDecimal(string(sz)); err != nil {
		return nil, fmt.Errorf("base size %w", err)
	}
	if d.BaseSize == 0 {
		return nil, errors.New("base size is 0")
	}
	if d.BaseDigest, err = decodeHash(string(dg)); err != nil {
		return nil, fmt.Errorf("base digest: %w", err)
	}
	if line, ok = r.next(); !ok {
		return nil, errors.New("delta ends after the base line")
	}
	if e, found := bytes.CutPrefix(line, []byte("entry ")); found {
		if len(e) == 0 || len(e) > MaxEntrySize {
			return nil, fmt.Errorf("entry is %d bytes, want 1 to %d", len(e), MaxEntrySize)
		}
		d.Entry = e
		if line, ok = r.next(); !ok {
			return nil, errors.New("delta ends after the entry")
		}
	}
	for {
		var put bool
		var rest []byte
		if rest, found = bytes.CutPrefix(line, []byte("put ")); found {
			put = true
		} else if rest, found = bytes.CutPrefix(line, []byte("del ")); !found {
			break
		}
		if d.Entry == nil {
			return nil, errors.New("delta changes the key set but carries no new snapshot entry")
		}
		part, m, _ := bytes.Cut(rest, []byte(" "))
		c := DeltaChange{Part: string(part)}
		if c.Part != "pst" && c.Part != "privacy_pass" {
			return nil, fmt.Errorf("change to unknown key set part %.20q", part)
		}
		p := newOwnedParser(string(m))
		c.Origin = p.d.str(p.str())
		if put {
			p.lit(":")
			if c.Part == "pst" {
				p.pstCommitment(&pstRec{})
			} else {
				p.issuerDirectory(&ppRec{})
			}
			c.Member = m
		}
		if p.err == nil && p.i != len(m) {
			p.fail("trailing data")
		}
		if p.err != nil {
			return nil, fmt.Errorf("change to %s: %w", c.Part, p.error())
		}
		if n := len(d.Changes); n > 0 && !changeLess(d.Changes[n-1], c) {
			return nil, fmt.Errorf("changes are not sorted by part and origin, or change %s %q twice", c.Part, c.Origin)
		}
		d.Changes = append(d.Changes, c)
		if line, ok = r.next(); !ok {
			return nil, errors.New("delta ends inside the changes")
		}
	}
	// The rest reads as the tail of a bundle.
	tail := append([]byte(BundleHeader+"\nkeyset {}\nentry {}\n"), line...)
	tail = append(tail, '\n')
	tail = append(tail, r.rest...)
	b, err := parseBundle(tail)
	if err != nil {
		return nil, err
	}
	d.Consistency, d.Index, d.Inclusion, d.Checkpoint = b.Consistency, b.Index, b.Inclusion, b.Checkpoint
	if d.Consistency != nil && d.Consistency.OldSize != d.BaseSize {
		return nil, fmt.Errorf("consistency proof is from size %d, the base is size %d", d.Consistency.OldSize, d.BaseSize)
	}
	return d, nil
}

// MakeDelta returns the delta that turns base, a bundle of tree size
// baseSize (only its KeySet, Entry and Index are read; its snapshot entry
// gives the base line's commitment), into next, a full
// bundle carrying the consistency proof from baseSize if its tree is
// larger. The log uses it to serve deltas.
func MakeDelta(base *Bundle, baseSize uint64, next *Bundle) (*Delta, error) {
	ncp, err := ParseCheckpoint(next.Checkpoint)
	if err != nil {
		return nil, err
	}
	if baseSize == 0 || baseSize > ncp.Size {
		return nil, fmt.Errorf("base tree size %d is not in 1..%d", baseSize, ncp.Size)
	}
	if ncp.Size > baseSize && (next.Consistency == nil || next.Consistency.OldSize != baseSize) {
		return nil, fmt.Errorf("next bundle carries no consistency proof from the base's size %d", baseSize)
	}
	bsnap, err := parseSnapshotEntry(base.Entry)
	if err != nil {
		return nil, fmt.Errorf("base snapshot entry: %w", err)
	}
	_, bc := bsnap.Body.commitment()
	d := &Delta{BaseSize: baseSize, BaseDigest: bc, Index: next.Index, Inclusion: next.Inclusion, Checkpoint: next.Checkpoint}
	if ncp.Size > baseSize {
		d.Consistency = next.Consistency
	}
	if next.Index == base.Index && bytes.Equal(next.Entry, base.Entry) {
		if !bytes.Equal(next.KeySet, base.KeySet) {
			return nil, errors.New("same snapshot entry, different key sets")
		}
		return d, nil
	}
	d.Entry = next.Entry
	var om, nm keySetMembers
	if _, err := parseKeySetFast(base.KeySet, &om); err != nil {
		return nil, fmt.Errorf("base key set: %w", err)
	}
	if _, err := parseKeySetFast(next.KeySet, &nm); err != nil {
		return nil, fmt.Errorf("next key set: %w", err)
	}
	d.Changes = diffMembers(d.Changes, "pst", om.pst, nm.pst)
	d.Changes = diffMembers(d.Changes, "privacy_pass", om.pp, nm.pp)
	return d, nil
}

func diffMembers(out []DeltaChange, part string, old, new []member) []DeltaChange {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || i < len(old) && old[i].origin < new[j].origin:
			out = append(out, DeltaChange{Part: part, Origin: old[i].origin})
			i++
		case i == len(old) || new[j].origin < old[i].origin:
			out = append(out, DeltaChange{Part: part, Origin: new[j].origin, Member: new[j].raw})
			j++
		default:
			if !bytes.Equal(old[i].raw, new[j].raw) {
				out = append(out, DeltaChange{Part: part, Origin: new[j].origin, Member: new[j].raw})
			}
			i++
			j++
		}
	}
	return out
}

// mergeLeaves appends to out the leaf hashes of one part, whose records
// are old and leaf hashes leaves, with the changes to it (sorted by
// origin) applied: the members put are hashed, the others' hashes copied.
func mergeLeaves[R any, P record[R]](out []keysetroot.Hash, old []R, leaves []keysetroot.Hash, changes []DeltaChange, hs *keysetroot.Hasher) ([]keysetroot.Hash, error) {
	i := 0
	for _, c := range changes {
		j := i + sort.Search(len(old)-i, func(k int) bool { return P(&old[i+k]).originString() >= c.Origin })
		out = append(out, leaves[i:j]...)
		i = j
		exists := i < len(old) && P(&old[i]).originString() == c.Origin
		if exists {
			i++
		}
		if c.Member == nil {
			if !exists {
				return nil, fmt.Errorf("delta removes %s issuer %q, which the bundle held does not have", c.Part, c.Origin)
			}
			continue
		}
		out = append(out, hs.Leaf(c.Part, c.Member))
	}
	return append(out, leaves[i:]...), nil
}

// replacedLeaves appends to idx the leaf index of every change (all puts)
// of members of one part, whose records are rs and whose leaves start at
// offset, or returns false if a change adds or removes a member.
func replacedLeaves[R any, P record[R]](idx []int, rs []R, offset int, changes []DeltaChange) ([]int, bool) {
	for _, c := range changes {
		i, ok := search[R, P](rs, c.Origin)
		if c.Member == nil || !ok {
			return nil, false
		}
		idx = append(idx, offset+i)
	}
	return idx, true
}

// applyTree returns the tree of the key set old with the changes applied
// (split: the pst changes are changes[:split]), given t, the tree of old:
// when the changes only replace members, only the paths above them are
// hashed again; when they add or remove members, the levels are rebuilt
// from t's leaf hashes and those of the members put.
func applyTree(t *keysetroot.Tree, old *KeySet, changes []DeltaChange, split int) (*keysetroot.Tree, error) {
	var hs keysetroot.Hasher
	idx, ok := replacedLeaves(make([]int, 0, len(changes)), old.pst, 0, changes[:split])
	if ok {
		idx, ok = replacedLeaves(idx, old.pp, len(old.pst), changes[split:])
	}
	if ok {
		hashes := make([]keysetroot.Hash, len(changes))
		for i, c := range changes {
			hashes[i] = hs.Leaf(c.Part, c.Member)
		}
		return t.Replace(idx, hashes)
	}
	leaves := t.Leaves()
	out := make([]keysetroot.Hash, 0, len(leaves)+len(changes))
	out, err := mergeLeaves(out, old.pst, leaves[:len(old.pst)], changes[:split], &hs)
	if err != nil {
		return nil, err
	}
	if out, err = mergeLeaves(out, old.pp, leaves[len(old.pst):], changes[split:], &hs); err != nil {
		return nil, err
	}
	return keysetroot.New(out), nil
}

// keySetTree returns the tree over the members of ks, hashing every one.
func keySetTree(ks *KeySet) *keysetroot.Tree {
	var hs keysetroot.Hasher
	leaves := make([]keysetroot.Hash, 0, len(ks.pst)+len(ks.pp))
	for i := range ks.pst {
		leaves = append(leaves, hs.Leaf(keysetroot.PST, stringBytes(ks.pst[i].memberString())))
	}
	for i := range ks.pp {
		leaves = append(leaves, hs.Leaf(keysetroot.PrivacyPass, stringBytes(ks.pp[i].memberString())))
	}
	return keysetroot.New(leaves)
}

// stringBytes returns s's bytes without a copy; they must only be read.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (d *Delta) checkBase(size uint64, form string, commitment []byte) error {
	if d.BaseSize != size || !bytes.Equal(d.BaseDigest, commitment) {
		return fail(CheckDelta, "delta is from the bundle of tree size %d with key set commitment %x, but the bundle held has tree size %d and key set %s %x: fetch the full bundle",
			d.BaseSize, d.BaseDigest, size, form, commitment)
	}
	return nil
}

// changeSplit returns the index of the first change to privacy_pass.
func changeSplit(changes []DeltaChange) int {
	for i, c := range changes {
		if c.Part != "pst" {
			return i
		}
	}
	return len(changes)
}

// VerifyDelta applies a delta to prev, the bundle this user agent holds,
// and verifies the result exactly as Verify verifies a full bundle against
// prev (the digest check binds the applied key set to the new snapshot).
// A delta from another bundle fails the delta check, naming both. It keeps
// no reference to raw.
//
// What it costs follows what changed, not the key set's size: the
// signatures, the consistency and inclusion proofs, and the parse and leaf
// hash of each member the delta puts. The typed key set held is reused:
// the result's is the held one with the changes applied, sharing the
// unchanged issuers' records (a copy of the two record arrays, a few dozen
// bytes per issuer). A delta that leaves the key set as it is does not
// hash it (the held bundle's snapshot commitment is compared instead).
// When the new snapshot commits to the key set root, the held bundle's
// tree is updated: a delta that only replaces k members hashes O(k log n)
// nodes (and copies the tree's levels, 64 bytes per member); one that adds
// or removes members rebuilds the levels from the cached leaf hashes
// (about n 64-byte node hashes). The new key set's encoding is not
// written: the result's Raw and Bundle write it on their first call (one
// copy of the key set, shared), Stored on each call, and KeySet never.
//
// A digest-form snapshot (logs made before the root) still costs writing
// the new key set's encoding and one SHA-256 of it, and the first
// root-form snapshot after a digest-form one hashes every member once.
func (v *Verifier) VerifyDelta(raw []byte, prev *Verified) (*Verified, error) {
	if prev == nil {
		return nil, fail(CheckDelta, "a delta needs the bundle it applies to")
	}
	d, err := ParseDelta(raw)
	if err != nil {
		return nil, err
	}
	pks, err := prev.KeySet()
	if err != nil {
		return nil, fmt.Errorf("previous bundle: %w", err)
	}
	// prev verified: its key set is the one its snapshot commits to.
	if err := d.checkBase(prev.Checkpoint.Size, prev.form, prev.commitment); err != nil {
		return nil, err
	}
	// The new bundle but its key set (prev's, or built below), with its
	// entry and checkpoint copied out of raw.
	own := append(append(make([]byte, 0, len(d.Entry)+len(d.Checkpoint)), d.Entry...), d.Checkpoint...)
	b := &Bundle{Entry: prev.parts.Entry, Consistency: d.Consistency, Index: d.Index, Inclusion: d.Inclusion, Checkpoint: own[len(d.Entry):]}
	pre := &applied{keySet: pks, enc: prev.enc, changes: []Change{}, snap: prev.snap}
	if d.Entry != nil {
		b.Entry = own[:len(d.Entry):len(d.Entry)]
		// An entry that does not parse fails verifyParsed's snapshot
		// check (pre.snap nil: it parses the entry again).
		pre.snap, _ = parseSnapshotEntry(b.Entry)
	}
	if d.Entry == nil || len(d.Changes) == 0 {
		// The key set held, unchanged: prev's snapshot commits to it
		// (prev verified it), so the digest check compares commitments
		// instead of hashing the whole key set again.
		pre.form, pre.commitment, pre.tree = prev.form, prev.commitment, prev.tree
	} else {
		if pre.keySet, pre.changes, err = applyTyped(pks, d.Changes); err != nil {
			return nil, err
		}
		pre.enc = &keySetEnc{size: pre.keySet.encodedLen(), from: pre.keySet}
		if pre.snap != nil && pre.snap.Body.Root != nil {
			t := prev.tree
			if t == nil || t.Size() != len(pks.pst)+len(pks.pp) {
				// prev commits to its digest: hash every member once.
				t = keySetTree(pks)
			}
			if t, err = applyTree(t, pks, d.Changes, changeSplit(d.Changes)); err != nil {
				return nil, failErr(CheckDelta, err)
			}
			r := t.Root()
			pre.form, pre.commitment, pre.tree = "root", r[:], t
		}
	}
	if n := b.encodedLen(pre.enc.size); n > MaxBundleSize {
		return nil, fail(CheckDelta, "the bundle the delta builds is %d bytes, over the limit of %d", n, MaxBundleSize)
	}
	if pre.snap != nil {
		if form, _ := pre.snap.Body.commitment(); pre.commitment == nil || pre.form != form {
			// The digest check hashes the key set whole: a digest-form
			// snapshot, or the key set held, unchanged, under a
			// snapshot of the other form.
			b.KeySet = pre.enc.bytes()
		}
	}
	return v.verifyParsed(nil, b, prev, true, pre)
}

// applyTyped returns the typed key set old with the changes applied and
// the changes as Diff reports them; a removal of a member old does not
// have fails the delta check. It parses only the changed members (from
// one copy of their bytes, which the new records own) and shares the
// unchanged issuers with old: its cost is the changes' size plus a copy
// of old's two issuer slices (a few dozen bytes per issuer), not a parse
// of the key set.
func applyTyped(old *KeySet, changes []DeltaChange) (*KeySet, []Change, error) {
	var all strings.Builder
	for _, c := range changes {
		all.Grow(len(c.Member))
	}
	for _, c := range changes {
		all.Write(c.Member)
	}
	p := newOwnedParser(all.String())
	split := changeSplit(changes)
	ks := &KeySet{}
	out := []Change{}
	var err error
	if ks.pst, out, err = applyPart(p, old.pst, changes[:split], out, p.pstMember); err != nil {
		return nil, nil, err
	}
	if ks.pp, out, err = applyPart(p, old.pp, changes[split:], out, p.ppMember); err != nil {
		return nil, nil, err
	}
	sortChanges(out)
	return ks, out, nil
}

// applyPart merges the changes to one part (sorted by origin, their
// members next in p's input) into its records old (sorted by origin),
// appending them to out as Diff reports them; read reads a member's value
// at p (as pstMember and ppMember do).
func applyPart[R any, P record[R]](p *ksParser, old []R, changes []DeltaChange, out []Change, read func(origin strRef, start int) R) ([]R, []Change, error) {
	rs := make([]R, 0, len(old)+len(changes))
	i := 0
	for _, c := range changes {
		j := i + sort.Search(len(old)-i, func(k int) bool { return P(&old[i+k]).originString() >= c.Origin })
		rs = append(rs, old[i:j]...)
		i = j
		var was string
		existed := i < len(old) && P(&old[i]).originString() == c.Origin
		if existed {
			was = P(&old[i]).memberString()
			i++
		}
		if c.Member == nil {
			if !existed {
				return nil, nil, fail(CheckDelta, "delta removes %s issuer %q, which the bundle held does not have", c.Part, c.Origin)
			}
			out = append(out, Change{Issuer: c.Origin, Part: c.Part, Op: "removed"})
			continue
		}
		start := p.i
		origin := p.str()
		p.lit(":")
		r := read(origin, start)
		if p.err == nil && p.i != start+len(c.Member) {
			p.fail("trailing data")
		}
		if p.err != nil {
			return nil, nil, failErr(CheckDelta, p.error())
		}
		rs = append(rs, r)
		switch {
		case !existed:
			out = append(out, Change{Issuer: c.Origin, Part: c.Part, Op: "added"})
		case was != string(c.Member):
			out = append(out, Change{Issuer: c.Origin, Part: c.Part, Op: "changed"})
		}
	}
	return append(rs, old[i:]...), out, nil
}
