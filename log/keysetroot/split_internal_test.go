package keysetroot

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// refSplit is Split's frame read byte by byte, from its definition: each
// member starts with '"' and ends at the first ',' or '}' outside strings
// and brackets (a backslash in a string escapes the next byte); it
// returns the members, "pst" ones then "privacy_pass" ones, or false.
func refSplit(b []byte) (ms []testMember, ok bool) {
	i := 0
	for _, part := range []struct{ open, name string }{{`{"pst":{`, PST}, {`,"privacy_pass":{`, PrivacyPass}} {
		if !bytes.HasPrefix(b[i:], []byte(part.open)) {
			return nil, false
		}
		i += len(part.open)
		if i < len(b) && b[i] == '}' {
			i++
			continue
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, false
			}
			start, depth, inString := i, 0, false
			for ; i < len(b); i++ {
				c := b[i]
				if inString {
					switch c {
					case '\\':
						i++
					case '"':
						inString = false
					}
					continue
				}
				if c == '"' {
					inString = true
				} else if c == '{' || c == '[' {
					depth++
				} else if c == ']' || c == '}' {
					depth--
				}
				if depth < 0 && c == ']' {
					return nil, false
				}
				if depth < 0 || depth == 0 && c == ',' {
					break
				}
			}
			if i >= len(b) {
				return nil, false
			}
			ms = append(ms, testMember{part.name, b[start:i]})
			i++
			if b[i-1] == '}' {
				break
			}
		}
	}
	return ms, i == len(b)-1 && b[i] == '}'
}

// checkSplit checks Split, and its plain-text path where it applies (b
// has no backslash), against refSplit and against the general path: the
// same members, or both an error, the same one.
func checkSplit(t *testing.T, b []byte) {
	t.Helper()
	read := func(plain bool) ([]testMember, error) {
		var ms []testMember
		err := split(b, plain, func(part string, m []byte) { ms = append(ms, testMember{part, m}) })
		return ms, err
	}
	var got []testMember
	err := Split(b, func(part string, m []byte) { got = append(got, testMember{part, m}) })
	want, ok := refSplit(b)
	if (err == nil) != ok || ok && fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("Split(%q) = %q, %v; the reference reads %q, %v", b, got, err, want, ok)
	}
	general, gerr := read(false)
	if fmt.Sprint(gerr) != fmt.Sprint(err) || fmt.Sprintf("%q", general) != fmt.Sprintf("%q", got) {
		t.Fatalf("Split(%q) = %q, %v; the general path reads %q, %v", b, got, err, general, gerr)
	}
	if bytes.IndexByte(b, '\\') >= 0 {
		return
	}
	plain, perr := read(true)
	if fmt.Sprint(perr) != fmt.Sprint(gerr) || fmt.Sprintf("%q", plain) != fmt.Sprintf("%q", general) {
		t.Fatalf("split(%q): the plain-text path reads %q, %v; the general path %q, %v", b, plain, perr, general, gerr)
	}
}

// TestSplitPaths checks Split's plain-text path (input without a
// backslash) and its general path against each other and against
// refSplit: on the key sets of TestSplit, on random frames around bodies
// of key set characters (quotes, brackets and commas inside and outside
// strings, escapes, strings longer than the plain path's eight-byte
// probe) and on every truncation of a key set.
func TestSplitPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	long := strings.Repeat("x", 20)
	pieces := []string{`"`, `\`, `{`, `}`, `[`, `]`, `,`, `:`, `a`, `"a"`, `"\""`, `"\\"`, `"{"`, `"}"`, `"[,]"`, `"` + long + `"`, `"` + long + `\"` + long + `"`, "\x80", "\n"}
	accepted := 0
	for i := 0; i < 100000; i++ {
		var body strings.Builder
		for range r.IntN(10) {
			body.WriteString(pieces[r.IntN(len(pieces))])
		}
		var ks string
		switch r.IntN(3) {
		case 0:
			ks = `{"pst":{` + body.String() + `},"privacy_pass":{"x":1}}`
		case 1:
			ks = `{"pst":{"a":{}},"privacy_pass":{` + body.String() + `}}`
		default:
			ks = `{"pst":{"` + body.String() + `":{"k":"` + body.String() + `"}},"privacy_pass":{}}`
		}
		checkSplit(t, []byte(ks))
		if Split([]byte(ks), func(string, []byte) {}) == nil {
			accepted++
		}
	}
	t.Logf("%d of 100000 random key sets accepted", accepted)
	if accepted < 1000 {
		t.Fatalf("only %d random key sets accepted: the test checks too little", accepted)
	}
	ks := []byte(`{"pst":{"https://a.example":{"v":{"keys":{"0":{"Y":"` + long + `","expiry":"1"}}}},"https://b\"},.example":null},"privacy_pass":{"https://c.example":{"u":"https://c.example/\\","k":[{"t":2,"k":"k,}]"}]}}}`)
	for _, b := range [][]byte{ks, bytes.ReplaceAll(ks, []byte(`\`), nil)} {
		for n := 0; n <= len(b); n++ {
			checkSplit(t, b[:n])
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		`{"pst":{},"privacy_pass":{}}`,
		`{"pst":{"https://a.example":{"k":"AAAAAAAAAAAA"},"b":null},"privacy_pass":{"c":[1,{"d":"]"}]}}`,
		`{"pst":{"https://b\"},.example":null},"privacy_pass":{"c":"\\"}}`,
		`{"pst":{"a":[}]},"privacy_pass":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSplit(t, b) })
}

// TestFromKeySetAllocs checks that the tree of a key set takes a fixed
// number of allocations however many members it has (none per member),
// and that a count FromKeySetSized is told sizes its leaves but cannot
// make them larger than the key set's bytes allow.
func TestFromKeySetAllocs(t *testing.T) {
	var ms []string
	for i := range 200 {
		ms = append(ms, fmt.Sprintf(`"https://i%03d.example":{"k":"%s"}`, i, strings.Repeat("A", 100)))
	}
	ks := []byte(`{"pst":{` + strings.Join(ms[:150], ",") + `},"privacy_pass":{` + strings.Join(ms[150:], ",") + `}}`)
	// Hasher (and its SHA-256 state), leaves, Tree, levels, nodes.
	const maxAllocs = 6
	if a := testing.AllocsPerRun(20, func() {
		if _, err := FromKeySetSized(ks, len(ms)); err != nil {
			t.Fatal(err)
		}
	}); a > maxAllocs {
		t.Errorf("FromKeySetSized of %d members: %v allocations, want at most %d", len(ms), a, maxAllocs)
	}
	var pst, pp [][]byte
	for i, m := range ms {
		if i < 150 {
			pst = append(pst, []byte(m))
		} else {
			pp = append(pp, []byte(m))
		}
	}
	want := Root(pst, pp)
	for _, tc := range []struct{ count, maxCap int }{{len(ms), len(ms)}, {1 << 40, len(ks) / minMemberLen}, {-1, 2 * len(ms)}, {0, 2 * len(ms)}} {
		tr, err := FromKeySetSized(ks, tc.count)
		if err != nil {
			t.Fatal(err)
		}
		if c := cap(tr.Leaves()); c > tc.maxCap || tr.Size() != len(ms) {
			t.Errorf("FromKeySetSized(%d members, told %d): %d leaves, capacity %d, want at most %d", len(ms), tc.count, tr.Size(), c, tc.maxCap)
		}
		if tr.Root() != want {
			t.Errorf("FromKeySetSized(told %d): root %x, want %x", tc.count, tr.Root(), want)
		}
	}
}
