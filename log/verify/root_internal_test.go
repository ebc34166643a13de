package verify

import (
	"fmt"
	"testing"

	"github.com/keycommit/keycommit/log/keysetroot"
)

// FuzzApplyTree checks the delta's tree update (replacing leaves, or
// rebuilding the levels from the cached leaf hashes) against the root
// computed afresh over the members the delta yields.
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
		np, _, perr := applyMembers(m.pst, nil, pst, nil)
		nq, _, qerr := applyMembers(m.pp, nil, pp, nil)
		got, err := applyTree(membersTree(m), m, changes, len(pst))
		if perr != nil || qerr != nil {
			if err == nil {
				t.Fatalf("applyMembers refused (%v, %v), applyTree did not", perr, qerr)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var a, b [][]byte
		for _, x := range np {
			a = append(a, x.raw)
		}
		for _, x := range nq {
			b = append(b, x.raw)
		}
		if want := keysetroot.Root(a, b); got.Root() != want || got.Size() != len(a)+len(b) {
			t.Fatalf("applyTree root %x over %d leaves, want %x over %d", got.Root(), got.Size(), want, len(a)+len(b))
		}
	})
}

func sortDeltaChanges(cs []DeltaChange) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && changeLess(cs[j], cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}
