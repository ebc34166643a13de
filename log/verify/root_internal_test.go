package verify

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/keysetroot"
)

// FuzzApplyTree checks the delta's tree update (replacing leaves, or
// rebuilding the levels from the cached leaf hashes) against the root
// computed afresh over the members a reference (a map) says the delta
// yields, and that it refuses what the reference refuses.
func FuzzApplyTree(f *testing.F) {
	f.Add(uint8(5), uint8(3), []byte{0, 1, 2, 3})
	f.Add(uint8(0), uint8(0), []byte{7, 7})
	f.Add(uint8(16), uint8(1), []byte{1, 0x81, 0x42, 9, 200})
	f.Fuzz(func(t *testing.T, npst, npp uint8, ops []byte) {
		mk := func(part string, i int, v byte) member {
			o := fmt.Sprintf("https://%s-%03d.example", part, i)
			return member{origin: o, raw: []byte(fmt.Sprintf(`"%s":{"v":%d}`, o, v))}
		}
		m := &keySetMembers{}
		for i := 0; i < int(npst%40); i++ {
			m.pst = append(m.pst, mk("pst", 2*i, 0))
		}
		for i := 0; i < int(npp%40); i++ {
			m.pp = append(m.pp, mk("pp", 2*i, 0))
		}
		// Each op byte: bit 7 part, bits 0-5 origin slot (even slots
		// exist, odd ones do not), bit 6 delete.
		var pst, pp []DeltaChange
		seen := map[string]bool{}
		for k, op := range ops {
			part, name := "pst", "pst"
			if op&0x80 != 0 {
				part, name = "privacy_pass", "pp"
			}
			x := mk(name, int(op&0x3f), byte(k+1))
			if seen[part+x.origin] {
				continue
			}
			seen[part+x.origin] = true
			c := DeltaChange{Part: part, Origin: x.origin, Member: x.raw}
			if op&0x40 != 0 {
				c.Member = nil
			}
			if part == "pst" {
				pst = append(pst, c)
			} else {
				pp = append(pp, c)
			}
		}
		sortDeltaChanges(pst)
		sortDeltaChanges(pp)
		changes := append(pst, pp...)
		if len(changes) == 0 {
			return
		}
		old := recordsOf(m)
		got, err := applyTree(keySetTree(old), old, changes, len(pst))
		np, perr := applyReference(m.pst, pst)
		nq, qerr := applyReference(m.pp, pp)
		if perr != nil || qerr != nil {
			if err == nil {
				t.Fatalf("the reference refused (%v, %v), applyTree did not", perr, qerr)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := keysetroot.Root(np, nq); got.Root() != want || got.Size() != len(np)+len(nq) {
			t.Fatalf("applyTree root %x over %d leaves, want %x over %d", got.Root(), got.Size(), want, len(np)+len(nq))
		}
	})
}

// recordsOf returns a key set whose records are the members m (their
// values need not be key commitments: applyTree reads only the origins
// and members).
func recordsOf(m *keySetMembers) *KeySet {
	var src strings.Builder
	ref := func(s string) strRef {
		r := strRef{int32(src.Len()), int32(len(s))}
		src.WriteString(s)
		return r
	}
	type rec struct{ origin, member strRef }
	var ps, qs []rec
	for _, x := range m.pst {
		ps = append(ps, rec{ref(x.origin), ref(string(x.raw))})
	}
	for _, x := range m.pp {
		qs = append(qs, rec{ref(x.origin), ref(string(x.raw))})
	}
	d := &ksData{src: src.String()}
	ks := &KeySet{}
	for _, r := range ps {
		ks.pst = append(ks.pst, pstRec{d: d, origin: r.origin, member: r.member})
	}
	for _, r := range qs {
		ks.pp = append(ks.pp, ppRec{d: d, origin: r.origin, member: r.member})
	}
	return ks
}

// applyReference applies the changes to one part's members old, by a map:
// the members the key set would have, in order.
func applyReference(old []member, changes []DeltaChange) ([][]byte, error) {
	ms := map[string][]byte{}
	for _, x := range old {
		ms[x.origin] = x.raw
	}
	for _, c := range changes {
		if _, ok := ms[c.Origin]; !ok && c.Member == nil {
			return nil, fmt.Errorf("no member %q to remove", c.Origin)
		}
		if c.Member == nil {
			delete(ms, c.Origin)
		} else {
			ms[c.Origin] = c.Member
		}
	}
	var out [][]byte
	for _, o := range slices.Sorted(maps.Keys(ms)) {
		out = append(out, ms[o])
	}
	return out, nil
}

func sortDeltaChanges(cs []DeltaChange) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && changeLess(cs[j], cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}
