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
		writeHashes(&buf, d.Consistency.Hashes)
	}
	buf.WriteString("index " + strconv.FormatUint(d.Index, 10) + "\n")
	writeHashes(&buf, d.Inclusion)
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

// applyMembers merges changes of one part into the sorted members old.
// With leaves (the leaf hashes of old, in order) it also returns the new
// members' leaf hashes, hashing only the members put.
func applyMembers(old []member, leaves []keysetroot.Hash, changes []DeltaChange, hs *keysetroot.Hasher) ([]member, []keysetroot.Hash, error) {
	out := make([]member, 0, len(old)+len(changes))
	var outLeaves []keysetroot.Hash
	if leaves != nil {
		outLeaves = make([]keysetroot.Hash, 0, len(old)+len(changes))
	}
	i := 0
	for _, c := range changes {
		j := i
		for j < len(old) && old[j].origin < c.Origin {
			j++
		}
		out = append(out, old[i:j]...)
		if leaves != nil {
			outLeaves = append(outLeaves, leaves[i:j]...)
		}
		i = j
		exists := i < len(old) && old[i].origin == c.Origin
		if exists {
			i++
		}
		if c.Member == nil {
			if !exists {
				return nil, nil, fmt.Errorf("delta removes %s issuer %q, which the bundle held does not have", c.Part, c.Origin)
			}
			continue
		}
		out = append(out, member{origin: c.Origin, raw: c.Member})
		if leaves != nil {
			outLeaves = append(outLeaves, hs.Leaf(c.Part, c.Member))
		}
	}
	if leaves != nil {
		outLeaves = append(outLeaves, leaves[i:]...)
	}
	return append(out, old[i:]...), outLeaves, nil
}

// replacedLeaves returns the leaf index of every change (all puts) of
// members in part, which holds the leaves from offset on, or false if a
// change adds or removes a member.
func replacedLeaves(idx []int, ms []member, offset int, changes []DeltaChange) ([]int, bool) {
	for _, c := range changes {
		i := sort.Search(len(ms), func(i int) bool { return ms[i].origin >= c.Origin })
		if c.Member == nil || i == len(ms) || ms[i].origin != c.Origin {
			return nil, false
		}
		idx = append(idx, offset+i)
	}
	return idx, true
}

// applyTree returns the tree of the key set m with the changes applied
// (split: the pst changes are changes[:split]), given t, the tree of m:
// when the changes only replace members, only the paths above them are
// hashed again; when they add or remove members, the levels are rebuilt
// from t's leaf hashes and those of the members put.
func applyTree(t *keysetroot.Tree, m *keySetMembers, changes []DeltaChange, split int) (*keysetroot.Tree, error) {
	var hs keysetroot.Hasher
	idx, ok := replacedLeaves(make([]int, 0, len(changes)), m.pst, 0, changes[:split])
	if ok {
		idx, ok = replacedLeaves(idx, m.pp, len(m.pst), changes[split:])
	}
	if ok {
		hashes := make([]keysetroot.Hash, len(changes))
		for i, c := range changes {
			hashes[i] = hs.Leaf(c.Part, c.Member)
		}
		return t.Replace(idx, hashes)
	}
	leaves := t.Leaves()
	_, pl, err := applyMembers(m.pst, leaves[:len(m.pst)], changes[:split], &hs)
	if err != nil {
		return nil, err
	}
	_, ql, err := applyMembers(m.pp, leaves[len(m.pst):], changes[split:], &hs)
	if err != nil {
		return nil, err
	}
	return keysetroot.New(append(pl, ql...)), nil
}

// membersTree returns the tree over the members m, hashing every one.
func membersTree(m *keySetMembers) *keysetroot.Tree {
	var hs keysetroot.Hasher
	leaves := make([]keysetroot.Hash, 0, len(m.pst)+len(m.pp))
	for _, x := range m.pst {
		leaves = append(leaves, hs.Leaf(keysetroot.PST, x.raw))
	}
	for _, x := range m.pp {
		leaves = append(leaves, hs.Leaf(keysetroot.PrivacyPass, x.raw))
	}
	return keysetroot.New(leaves)
}

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

// apply builds the new bundle from prev and its key set's members m, and
// returns the new members (m itself when the key set did not change) and
// the new bundle's encoding (b.KeySet is within it: the key set is written
// once, into the bundle).
func (d *Delta) apply(prev *Bundle, m *keySetMembers) (*Bundle, *keySetMembers, []byte, error) {
	b := &Bundle{KeySet: prev.KeySet, Entry: prev.Entry, Consistency: d.Consistency, Index: d.Index, Inclusion: d.Inclusion, Checkpoint: d.Checkpoint}
	if d.Entry != nil {
		b.Entry = d.Entry
	}
	if d.Entry == nil || len(d.Changes) == 0 {
		raw, err := b.Marshal()
		if err != nil {
			return nil, nil, nil, failErr(CheckDelta, err)
		}
		return b, m, raw, nil
	}
	split := changeSplit(d.Changes)
	pst, _, err := applyMembers(m.pst, nil, d.Changes[:split], nil)
	if err != nil {
		return nil, nil, nil, failErr(CheckDelta, err)
	}
	pp, _, err := applyMembers(m.pp, nil, d.Changes[split:], nil)
	if err != nil {
		return nil, nil, nil, failErr(CheckDelta, err)
	}
	grow := 0
	for _, c := range d.Changes {
		grow += len(c.Member) + 1
	}
	raw, ks, err := b.marshal(len(prev.KeySet)+grow, func(buf *bytes.Buffer) {
		buf.WriteString(`{"pst":{`)
		writeMembers(buf, pst)
		buf.WriteString(`},"privacy_pass":{`)
		writeMembers(buf, pp)
		buf.WriteString(`}}`)
	})
	if err != nil {
		return nil, nil, nil, failErr(CheckDelta, err)
	}
	b.KeySet = ks
	return b, &keySetMembers{pst: pst, pp: pp}, raw, nil
}

func writeMembers(buf *bytes.Buffer, ms []member) {
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(m.raw)
	}
}

// VerifyDelta applies a delta to prev, the bundle this user agent holds,
// and verifies the result exactly as Verify verifies a full bundle against
// prev (the digest check binds the applied key set to the new snapshot).
// A delta from another bundle fails the delta check, naming both. The key
// set held is not read again: the typed keys of prev are reused and only
// the members the delta changes are parsed, and a delta that leaves the key
// set as it is does not hash it again (the held bundle's snapshot
// commitment is compared instead).
//
// When the new snapshot commits to the key set root, the held bundle's
// tree (kept by Verify) is updated: a delta that only replaces k members
// hashes those k members and O(k log n) nodes; one that adds or removes
// members hashes the members put and rebuilds the levels from the cached
// leaf hashes (about n 64-byte node hashes). A digest-form snapshot (logs
// made before the root) still costs one SHA-256 of the whole new key set,
// and the first root-form snapshot after a digest-form one hashes every
// member once. Either way the new key set's bytes are written once, with
// the bundle they are part of (Verified.Raw): one copy of the key set.
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
	psnap, err := parseSnapshotEntry(prev.Bundle.Entry)
	if err != nil {
		return nil, fmt.Errorf("previous bundle: %w", failErr(CheckSnapshot, err))
	}
	pform, pc := psnap.Body.commitment()
	if err := d.checkBase(prev.Checkpoint.Size, pform, pc); err != nil {
		return nil, err
	}
	if prev.members == nil && d.Entry != nil && len(d.Changes) > 0 {
		m := &keySetMembers{}
		if _, err := parseKeySetFast(prev.Bundle.KeySet, m); err != nil {
			return nil, fmt.Errorf("previous bundle: %w", failErr(CheckKeySet, err))
		}
		prev.members = m
	}
	b, m, full, err := d.apply(prev.Bundle, prev.members)
	if err != nil {
		return nil, err
	}
	pre := &applied{keySet: pks, members: m, changes: []Change{}}
	if d.Entry == nil || len(d.Changes) == 0 {
		// The key set held, unchanged: prev's snapshot commits to it
		// (prev verified it), so the digest check compares commitments
		// instead of hashing the whole key set again.
		pre.form, pre.commitment, pre.tree = pform, pc, prev.tree
	} else {
		if pre.keySet, pre.changes, err = applyTyped(pks, d.Changes); err != nil {
			return nil, err
		}
		// A snapshot entry that does not parse fails verifyParsed's
		// snapshot check; its form is only read here.
		if nsnap, err := parseSnapshotEntry(d.Entry); err == nil && nsnap.Body.Root != nil {
			t := prev.tree
			if t == nil || t.Size() != len(prev.members.pst)+len(prev.members.pp) {
				// prev commits to its digest: hash every member once.
				t = membersTree(prev.members)
			}
			if t, err = applyTree(t, prev.members, d.Changes, changeSplit(d.Changes)); err != nil {
				return nil, failErr(CheckDelta, err)
			}
			r := t.Root()
			pre.form, pre.commitment, pre.tree = "root", r[:], t
		}
	}
	return v.verifyParsed(full, b, prev, true, pre)
}

// applyTyped returns the typed key set old with the changes applied and
// the changes as Diff reports them. It parses only the changed members
// (from one copy of their bytes) and shares the unchanged issuers with
// old: its cost is the changes' size plus a copy of old's two issuer
// slices (a few dozen bytes per issuer), not a parse of the key set.
func applyTyped(old *KeySet, changes []DeltaChange) (*KeySet, []Change, error) {
	var all strings.Builder
	for _, c := range changes {
		all.Grow(len(c.Member))
	}
	for _, c := range changes {
		all.Write(c.Member)
	}
	p := newOwnedParser(all.String())
	split := len(changes)
	for i, c := range changes {
		if c.Part != "pst" {
			split = i
			break
		}
	}
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
		for i < len(old) && P(&old[i]).originString() < c.Origin {
			rs = append(rs, old[i])
			i++
		}
		var was string
		existed := i < len(old) && P(&old[i]).originString() == c.Origin
		if existed {
			was = P(&old[i]).memberString()
			i++
		}
		if c.Member == nil {
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
