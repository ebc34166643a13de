package keysetroot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

// naiveRoot is RFC 6962's MTH written from its definition, with the
// merkle module's hasher.
func naiveRoot(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	switch len(leaves) {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(naiveRoot(leaves[:k]), naiveRoot(leaves[k:]))
}

func leafData(part string, member []byte) []byte {
	return append(append([]byte(part), 0), member...)
}

type testMember struct {
	part   string
	member []byte
}

func randomMembers(r *rand.Rand, n int) []testMember {
	ms := make([]testMember, n)
	for i := range ms {
		part := PST
		if i >= n/2 {
			part = PrivacyPass
		}
		ms[i] = testMember{part, []byte(fmt.Sprintf(`"https://i%d.example":{"k":"%x"}`, i, r.Uint64()))}
	}
	return ms
}

func naiveOf(ms []testMember) []byte {
	var data [][]byte
	for _, m := range ms {
		data = append(data, leafData(m.part, m.member))
	}
	return naiveRoot(data)
}

func treeOf(ms []testMember) *Tree {
	var leaves []Hash
	for _, m := range ms {
		leaves = append(leaves, LeafHash(m.part, m.member))
	}
	return New(leaves)
}

func TestLeafAndNodeHashes(t *testing.T) {
	for _, part := range []string{PST, PrivacyPass} {
		m := []byte(`"https://a.example":null`)
		got := LeafHash(part, m)
		if want := rfc6962.DefaultHasher.HashLeaf(leafData(part, m)); !bytes.Equal(got[:], want) {
			t.Errorf("LeafHash(%s) = %x, want %x", part, got, want)
		}
	}
	l, r := sha256.Sum256([]byte("l")), sha256.Sum256([]byte("r"))
	if got, want := nodeHash(&l, &r), rfc6962.DefaultHasher.HashChildren(l[:], r[:]); !bytes.Equal(got[:], want) {
		t.Errorf("nodeHash = %x, want %x", got, want)
	}
	if got := New(nil).Root(); hex.EncodeToString(got[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root = %x, want SHA-256 of the empty string", got)
	}
}

// TestTreeAgainstNaive checks New, Root and Replace against the naive
// MTH for every size up to 70 (empty, 1, powers of two and the sizes
// around them) and random larger ones.
func TestTreeAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{}
	for n := 0; n <= 70; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025)
	for i := 0; i < 10; i++ {
		sizes = append(sizes, 70+r.IntN(2000))
	}
	for _, n := range sizes {
		ms := randomMembers(r, n)
		tr := treeOf(ms)
		if got, want := tr.Root(), naiveOf(ms); !bytes.Equal(got[:], want) {
			t.Fatalf("size %d: root %x, want %x", n, got, want)
		}
		if tr.Size() != n {
			t.Fatalf("size %d: Size() = %d", n, tr.Size())
		}
		if n == 0 {
			if _, err := tr.Replace([]int{0}, []Hash{{}}); err == nil {
				t.Fatal("Replace of leaf 0 in an empty tree: no error")
			}
			continue
		}
		before := tr.Root()
		for _, k := range []int{1, 2, 10, n} {
			k = min(k, n)
			ms2 := append([]testMember(nil), ms...)
			var idx []int
			var hs []Hash
			for _, x := range r.Perm(n)[:k] {
				ms2[x].member = append(bytes.Clone(ms2[x].member), 'x')
				idx = append(idx, x)
				hs = append(hs, LeafHash(ms2[x].part, ms2[x].member))
			}
			tr2, err := tr.Replace(idx, hs)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tr2.Root(), naiveOf(ms2); !bytes.Equal(got[:], want) {
				t.Fatalf("size %d, %d replaced at %v: root %x, want %x", n, k, idx, got, want)
			}
			if tr.Root() != before {
				t.Fatalf("size %d: Replace changed the tree it was called on", n)
			}
		}
	}
}

func TestReplaceErrors(t *testing.T) {
	tr := treeOf(randomMembers(rand.New(rand.NewPCG(3, 4)), 5))
	if _, err := tr.Replace([]int{5}, []Hash{{}}); err == nil || !strings.Contains(err.Error(), "not in a tree of 5") {
		t.Errorf("index 5 of 5: %v", err)
	}
	if _, err := tr.Replace([]int{-1}, []Hash{{}}); err == nil {
		t.Error("index -1: no error")
	}
	if _, err := tr.Replace([]int{1, 2}, []Hash{{}}); err == nil {
		t.Error("two indexes, one hash: no error")
	}
}

func TestSplit(t *testing.T) {
	pst := [][]byte{
		[]byte(`"https://a.example":{"PrivateStateTokenV1VOPRF":{"protocol_version":"PrivateStateTokenV1VOPRF","id":1,"batchsize":1,"keys":{"0":{"Y":"AAAA","expiry":"1"}}}}`),
		[]byte(`"https://b\"},.example":null`),
	}
	pp := [][]byte{[]byte(`"https://c.example":{"issuer-request-uri":"https://c.example/\\","token-keys":[{"token-type":2,"token-key":"k,}]"}]}`)}
	ks := []byte(`{"pst":{` + string(bytes.Join(pst, []byte(","))) + `},"privacy_pass":{` + string(bytes.Join(pp, []byte(","))) + `}}`)
	var got []testMember
	if err := Split(ks, func(part string, m []byte) { got = append(got, testMember{part, m}) }); err != nil {
		t.Fatal(err)
	}
	want := []testMember{{PST, pst[0]}, {PST, pst[1]}, {PrivacyPass, pp[0]}}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("Split = %q, want %q", got, want)
	}
	root, err := OfKeySet(ks)
	if err != nil {
		t.Fatal(err)
	}
	if r := Root(pst, pp); root != r || !bytes.Equal(root[:], naiveOf(want)) {
		t.Errorf("OfKeySet = %x, Root = %x, naive %x", root, r, naiveOf(want))
	}
	empty, err := OfKeySet([]byte(`{"pst":{},"privacy_pass":{}}`))
	if err != nil || empty != sha256.Sum256(nil) {
		t.Errorf("empty key set: %x, %v", empty, err)
	}
	for _, bad := range []string{
		``, `{}`, `{"pst":{}}`, `{"pst":{},"privacy_pass":{}}x`, `{"pst":{},"privacy_pass":{}`,
		`{"pst":{,},"privacy_pass":{}}`, `{"pst":{"a":1,},"privacy_pass":{}}`, `{"pst":{"a":"},"privacy_pass":{}}`,
		`{"pst":{"a":[}]},"privacy_pass":{}}`, `{"pst":{"a":{}},"privacy_pass":{"b":]}}`, `{"pst":{ "a":1},"privacy_pass":{}}`,
		`{"privacy_pass":{},"pst":{}}`, `{"pst":{"a":{"b":1}`,
	} {
		if err := Split([]byte(bad), func(string, []byte) {}); err == nil {
			t.Errorf("Split(%q): no error", bad)
		}
	}
}

// TestSplitBinds checks that every key set Split accepts is its members
// joined in the key set's frame, so the root binds the bytes: for random
// byte strings built from key set characters.
func TestSplitBinds(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte(`"\{}[],:ab`)
	accepted := 0
	for i := 0; i < 200000; i++ {
		body := make([]byte, r.IntN(12))
		for j := range body {
			body[j] = alphabet[r.IntN(len(alphabet))]
		}
		ks := []byte(`{"pst":{` + string(body) + `},"privacy_pass":{"x":1}}`)
		var pst, pp [][]byte
		if Split(ks, func(part string, m []byte) {
			if part == PST {
				pst = append(pst, m)
			} else {
				pp = append(pp, m)
			}
		}) != nil {
			continue
		}
		accepted++
		re := `{"pst":{` + string(bytes.Join(pst, []byte(","))) + `},"privacy_pass":{` + string(bytes.Join(pp, []byte(","))) + `}}`
		if re != string(ks) {
			t.Fatalf("Split(%q) gives members that join to %q", ks, re)
		}
	}
	if accepted < 100 {
		t.Fatalf("only %d random key sets accepted: the test checks too little", accepted)
	}
}

func BenchmarkFromKeySet(b *testing.B) {
	var ms []string
	for i := 0; i < 1000; i++ {
		ms = append(ms, fmt.Sprintf(`"https://i%04d.example":{"k":"%s"}`, i, strings.Repeat("A", 1200)))
	}
	ks := []byte(`{"pst":{` + strings.Join(ms, ",") + `},"privacy_pass":{}}`)
	b.SetBytes(int64(len(ks)))
	for b.Loop() {
		if _, err := FromKeySet(ks); err != nil {
			b.Fatal(err)
		}
	}
}
