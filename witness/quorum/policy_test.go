package quorum_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/witness/quorum"
)

var update = flag.Bool("update", false, "rewrite testdata/witness/policy from the table in this file")

// testKey is a deterministic Ed25519 key for vectors.
func testKey(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("keycommit quorum test key " + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

func pub(label string) ed25519.PublicKey { return testKey(label).Public().(ed25519.PublicKey) }

// keys substituted for $NAME placeholders in vectors.
var placeholders = map[string]string{
	"$LOG":     c2sp.FormatVKey("example.com/log", c2sp.TypeEd25519, pub("log")),
	"$LOG2":    c2sp.FormatVKey("example.com/log2", c2sp.TypeEd25519, pub("log2")),
	"$W1":      c2sp.FormatVKey("w1.example", c2sp.TypeCosignatureV1, pub("w1")),
	"$W2":      c2sp.FormatVKey("w2.example", c2sp.TypeCosignatureV1, pub("w2")),
	"$W3":      c2sp.FormatVKey("w3.example", c2sp.TypeCosignatureV1, pub("w3")),
	"$W4":      c2sp.FormatVKey("w4.example", c2sp.TypeCosignatureV1, pub("w4")),
	"$W1AS01":  c2sp.FormatVKey("w1.example", c2sp.TypeEd25519, pub("w1")),
	"$W1DUP":   c2sp.FormatVKey("other-name.example", c2sp.TypeCosignatureV1, pub("w1")),
	"$BADID":   "w1.example+00000000+" + base64.StdEncoding.EncodeToString(append([]byte{4}, pub("w1")...)),
	"$SHORT":   "w1.example+01020304+" + base64.StdEncoding.EncodeToString([]byte{4, 1, 2, 3}),
	"$LOGAS04": c2sp.FormatVKey("example.com/log", c2sp.TypeCosignatureV1, pub("log")),
}

func expand(s string) string {
	// Longest placeholders first so $W1AS01 is not read as $W1.
	var names []string
	for k := range placeholders {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, k := range names {
		s = strings.ReplaceAll(s, k, placeholders[k])
	}
	return s
}

// policyCases generate testdata/witness/policy. wantErr is a substring of
// the error, "" for a valid policy.
var policyCases = []struct {
	file, description, text, wantErr string
}{
	{"ok-2of3", "three witnesses, two needed", "log $LOG https://log.example/\nwitness w1 $W1 https://w1.example/\nwitness w2 $W2\nwitness w3 $W3\ngroup g 2 w1 w2 w3\nquorum g\n", ""},
	{"ok-nested", "groups of groups with any/all and comments", "# organisations\nwitness x1 $W1 # trailing comment\nwitness x2 $W2\n\twitness y1 $W3\nwitness y2 $W4\ngroup X all x1 x2\ngroup Y any y1 y2\ngroup XY 2 X Y\nquorum XY\n", ""},
	{"ok-none", "no witnesses required", "log $LOG\nquorum none\n", ""},
	{"ok-single-witness-quorum", "quorum names a witness", "witness w1 $W1\nquorum w1\n", ""},
	{"ok-type01-witness", "a type 0x01 key is read as a cosignature key, as Tessera does", "witness w1 $W1AS01\nquorum w1\n", ""},
	{"ok-quorum-not-last", "lines after the quorum line", "witness w1 $W1\nquorum w1\nwitness w2 $W2\n", ""},
	{"no-quorum", "quorum line missing", "witness w1 $W1\n", "no quorum line"},
	{"two-quorums", "two quorum lines", "witness w1 $W1\nquorum w1\nquorum none\n", "second quorum"},
	{"undefined-quorum", "quorum names nothing", "witness w1 $W1\nquorum w2\n", "not defined"},
	{"forward-reference", "group member defined later", "group g any w1\nwitness w1 $W1\nquorum g\n", "not defined on an earlier line"},
	{"duplicate-name", "name defined twice", "witness w1 $W1\nwitness w1 $W2\nquorum w1\n", "defined twice"},
	{"group-name-clash", "group reuses a witness name", "witness w1 $W1\ngroup w1 any w1\nquorum w1\n", "defined twice"},
	{"none-as-name", "none is reserved", "witness none $W1\nquorum none\n", "reserved"},
	{"none-as-member", "none cannot be a member", "witness w1 $W1\ngroup g any w1 none\nquorum g\n", "cannot be a group member"},
	{"member-twice", "member listed twice", "witness w1 $W1\nwitness w2 $W2\ngroup g 1 w1 w1 w2\nquorum g\n", "listed twice"},
	{"threshold-zero", "k = 0", "witness w1 $W1\ngroup g 0 w1\nquorum g\n", "outside 1..1"},
	{"threshold-too-big", "k > n", "witness w1 $W1\nwitness w2 $W2\ngroup g 3 w1 w2\nquorum g\n", "outside 1..2"},
	{"threshold-junk", "k not a number", "witness w1 $W1\ngroup g most w1\nquorum g\n", "not any, all or a decimal"},
	{"threshold-leading-zero", "k with leading zero", "witness w1 $W1\ngroup g 01 w1\nquorum g\n", "not any, all or a decimal"},
	{"group-no-members", "group without members", "group g any\nquorum none\n", "want `group"},
	{"duplicate-witness-key", "same public key under two names", "witness w1 $W1\nwitness w2 $W1DUP\nquorum w1\n", "duplicates the key"},
	{"duplicate-log-key", "same log twice", "log $LOG\nlog $LOG\nquorum none\n", "duplicates the key"},
	{"bad-key-id", "key ID does not match the key", "witness w1 $BADID\nquorum w1\n", "key ID"},
	{"short-key", "key too short", "witness w1 $SHORT\nquorum w1\n", "bytes"},
	{"log-cosig-type", "a log key must be type 0x01", "log $LOGAS04\nquorum none\n", "want Ed25519"},
	{"log-extra-field", "log with too many fields", "log $LOG https://a/ extra\nquorum none\n", "want `log"},
	{"witness-missing-key", "witness without key", "witness w1\nquorum w1\n", "want `witness"},
	{"unknown-keyword", "unknown keyword", "witnesses w1 $W1\nquorum none\n", "unknown keyword"},
	{"control-char", "carriage return is a control character", "witness w1 $W1\r\nquorum w1\n", "control character"},
	{"not-a-vkey", "garbage key", "witness w1 hello\nquorum w1\n", "not name+keyid+key"},
}

const vectorDir = "../../testdata/witness/policy"

// TestGenerateVectors rewrites the vector files when run with -update, and
// otherwise checks they match this table.
func TestGenerateVectors(t *testing.T) {
	for _, c := range policyCases {
		want := "ok"
		if c.wantErr != "" {
			want = "error " + c.wantErr
		}
		content := fmt.Sprintf("# description: %s\n# want: %s\n%s", c.description, want, expand(c.text))
		path := filepath.Join(vectorDir, c.file+".policy")
		if *update {
			if err := os.MkdirAll(vectorDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGenerateVectors -update)", err)
		}
		if string(got) != content {
			t.Errorf("%s is stale (run go test -run TestGenerateVectors -update)", path)
		}
	}
}

// TestPolicyVectors parses every vector file and checks the verdict written
// in its header.
func TestPolicyVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.policy"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s: %v", vectorDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		for _, l := range strings.Split(string(b), "\n") {
			if w, ok := strings.CutPrefix(l, "# want: "); ok {
				want = w
			}
		}
		_, err = quorum.Parse(b)
		switch {
		case want == "ok" && err != nil:
			t.Errorf("%s: %v, want ok", f, err)
		case strings.HasPrefix(want, "error "):
			sub := strings.TrimPrefix(want, "error ")
			if err == nil || !strings.Contains(err.Error(), sub) {
				t.Errorf("%s: error %v, want one containing %q", f, err, sub)
			}
		case want != "ok":
			t.Errorf("%s: no `# want:` header", f)
		}
	}
}

// TestSatisfied evaluates nested thresholds over every subset of witnesses.
func TestSatisfied(t *testing.T) {
	p, err := quorum.Parse([]byte(expand("witness x1 $W1\nwitness x2 $W2\nwitness y1 $W3\nwitness y2 $W4\n" +
		"group X all x1 x2\ngroup Y any y1 y2\ngroup XY 1 X Y\ngroup top 2 XY y2 x1\nquorum top\n")))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"x1", "x2", "y1", "y2"}
	for mask := 0; mask < 16; mask++ {
		set := map[string]bool{}
		for i, n := range names {
			if mask&(1<<i) != 0 {
				set[n] = true
			}
		}
		X := set["x1"] && set["x2"]
		Y := set["y1"] || set["y2"]
		XY := X || Y
		count := 0
		for _, b := range []bool{XY, set["y2"], set["x1"]} {
			if b {
				count++
			}
		}
		if got, want := p.Satisfied(set), count >= 2; got != want {
			t.Errorf("cosigned %v: Satisfied = %v, want %v", set, got, want)
		}
	}
	none, err := quorum.Parse([]byte("quorum none\n"))
	if err != nil || !none.Satisfied(nil) {
		t.Errorf("quorum none: %v %v", none, err)
	}
}

// fixture is a checkpoint signed by a log and cosigned by witnesses through
// formats/note, the reference implementation.
type fixture struct {
	policy *quorum.Policy
	text   string
	logSig []byte            // signed note with the log signature only
	cosigs map[string][]byte // witness policy name -> signature line
	verifs []note.Verifier   // log and witness verifiers, for differential checks
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	text := "example.com/log\n42\n" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\nextension line\n"
	logSigner, err := note.NewSigner(skey("example.com/log", 0x01, testKey("log")))
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := note.NewVerifier(placeholders["$LOG"])
	signed, err := note.Sign(&note.Note{Text: text}, logSigner)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{text: text, logSig: signed, cosigs: map[string][]byte{}, verifs: []note.Verifier{logV}}
	f.policy, err = quorum.Parse([]byte(expand("log $LOG\nwitness a $W1\nwitness b $W2\nwitness c $W3\ngroup g 2 a b c\nquorum g\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ policyName, keyName, label string }{{"a", "w1.example", "w1"}, {"b", "w2.example", "w2"}, {"c", "w3.example", "w3"}} {
		s, err := fnote.NewSignerForCosignatureV1(skey(w.keyName, 0x04, testKey(w.label)))
		if err != nil {
			t.Fatal(err)
		}
		full, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		f.cosigs[w.policyName] = full[len(text)+1:]
		v, err := fnote.NewVerifierForCosignatureV1(c2sp.FormatVKey(w.keyName, 0x04, pub(w.label)))
		if err != nil {
			t.Fatal(err)
		}
		f.verifs = append(f.verifs, v)
	}
	return f
}

func skey(name string, typ byte, k ed25519.PrivateKey) string {
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, c2sp.KeyHash(name, typ, k.Public().(ed25519.PublicKey)),
		base64.StdEncoding.EncodeToString(append([]byte{typ}, k.Seed()...)))
}

func (f *fixture) note(witnesses ...string) []byte {
	b := append([]byte(nil), f.logSig...)
	for _, w := range witnesses {
		b = append(b, f.cosigs[w]...)
	}
	return b
}

func TestCheckWithFormatsCosignatures(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		witnesses []string
		met       bool
	}{
		{nil, false},
		{[]string{"a"}, false},
		{[]string{"a", "a"}, false}, // a duplicate counts once
		{[]string{"a", "c"}, true},
		{[]string{"c", "b", "a"}, true},
	} {
		res, err := f.policy.Check(f.note(tc.witnesses...))
		if err != nil {
			t.Fatalf("%v: %v", tc.witnesses, err)
		}
		if res.QuorumMet != tc.met || res.Origin != "example.com/log" || res.Log != placeholders["$LOG"] {
			t.Errorf("%v: %+v, want QuorumMet %v", tc.witnesses, res, tc.met)
		}
		for _, c := range res.Cosignatures {
			if c.Timestamp == 0 {
				t.Errorf("%v: cosignature of %s without timestamp", tc.witnesses, c.Witness)
			}
		}
		_, err = f.policy.Verify(f.note(tc.witnesses...))
		if tc.met != (err == nil) || (!tc.met && !errors.Is(err, quorum.ErrQuorumNotMet)) {
			t.Errorf("%v: Verify error %v", tc.witnesses, err)
		}
	}
	// Unknown signature lines are ignored.
	other, _ := fnote.NewSignerForCosignatureV1(skey("stranger.example", 0x04, testKey("stranger")))
	full, _ := note.Sign(&note.Note{Text: f.text}, other)
	n := append(f.note("a"), full[len(f.text)+1:]...)
	n = append(n, f.cosigs["b"]...)
	if res, err := f.policy.Verify(n); err != nil || len(res.Cosignatures) != 2 {
		t.Errorf("with an unknown cosigner: %+v %v", res, err)
	}
	// Without the log's signature, a policy with logs refuses.
	noLog := append([]byte(f.text+"\n"), f.cosigs["a"]...)
	noLog = append(noLog, f.cosigs["b"]...)
	if _, err := f.policy.Check(noLog); err == nil {
		t.Error("checkpoint without log signature accepted")
	}
	// A cosignature over other text is refused, not ignored.
	otherText := strings.Replace(f.text, "42", "43", 1)
	bad := append([]byte(otherText+"\n"), f.logSig[len(f.text)+1:]...)
	if _, err := f.policy.Check(append(bad, f.cosigs["a"]...)); err == nil {
		t.Error("signatures over different text accepted")
	}
}

// TestMangledNotes changes and truncates every byte of a cosigned note and
// compares the verdict with golang.org/x/mod/sumdb/note verifying the same
// keys: whatever this package accepts, the reference accepts too, with the
// same signers, and no accepted variant has different text.
func TestMangledNotes(t *testing.T) {
	f := newFixture(t)
	orig := f.note("a", "b")
	check := func(desc string, m []byte) {
		res, err := f.policy.Verify(m)
		ref, refErr := note.Open(m, note.VerifierList(f.verifs...))
		if err != nil {
			return
		}
		if refErr != nil {
			t.Errorf("%s: accepted here, refused by x/mod note: %v", desc, refErr)
			return
		}
		if ref.Text != f.text {
			t.Errorf("%s: accepted a note with different text %q", desc, ref.Text)
		}
		if len(ref.Sigs) != 1+len(res.Cosignatures) {
			t.Errorf("%s: %d cosignatures here, %d signatures by x/mod note", desc, len(res.Cosignatures), len(ref.Sigs))
		}
	}
	for i := range orig {
		m := bytes.Clone(orig)
		m[i] ^= 0x01
		check(fmt.Sprintf("flip byte %d", i), m)
		m[i] ^= 0x41
		check(fmt.Sprintf("change byte %d", i), m)
		check(fmt.Sprintf("truncate at %d", i), orig[:i])
		check(fmt.Sprintf("delete byte %d", i), append(bytes.Clone(orig[:i]), orig[i+1:]...))
	}
}

// TestVKeyRoundTrip checks VKey and KeyID against x/mod note's key IDs.
func TestVKeyRoundTrip(t *testing.T) {
	vk, err := note.NewEd25519VerifierKey("example.com/log", pub("log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c2sp.FormatVKey("example.com/log", c2sp.TypeEd25519, pub("log")); got != vk {
		t.Errorf("VKey = %s, x/mod note says %s", got, vk)
	}
	w, err := quorum.ParseWitnessVKey(placeholders["$W1AS01"])
	if err != nil {
		t.Fatal(err)
	}
	v, _ := fnote.NewVerifierForCosignatureV1(placeholders["$W1AS01"])
	if w.KeyID != v.KeyHash() {
		t.Errorf("type 0x01 witness key ID %08x, formats/note says %08x", w.KeyID, v.KeyHash())
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range policyCases {
		f.Add([]byte(expand(c.text)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := quorum.Parse(b)
		if err != nil {
			return
		}
		// A parsed policy evaluates without panicking, for all or none.
		all := map[string]bool{}
		for _, w := range p.Witnesses() {
			all[w.Name] = true
		}
		if p.Quorum() != quorum.NameNone && p.Satisfied(nil) {
			t.Errorf("quorum %q satisfied by nobody", p.Quorum())
		}
		if !p.Satisfied(all) {
			t.Errorf("quorum %q not satisfied by everybody", p.Quorum())
		}
	})
}

// TestNonCanonicalBase64Refused: a signature line whose base64 differs
// from the canonical encoding only in its padding bits decodes to the same
// bytes under lenient decoding; it must be refused, so that every accepted
// note has one encoding.
func TestNonCanonicalBase64Refused(t *testing.T) {
	f := newFixture(t)
	n := f.note("a", "c")
	if _, err := f.policy.Verify(n); err != nil {
		t.Fatalf("canonical note: %v", err)
	}
	// The last line is a cosignature: 76 bytes, so its base64 ends in "=="
	// and the character before carries four zero padding bits.
	lines := strings.Split(strings.TrimSuffix(string(n), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasSuffix(last, "==") {
		t.Fatalf("unexpected signature line %q", last)
	}
	i := len(last) - 3
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	c := strings.IndexByte(alphabet, last[i])
	lines[len(lines)-1] = last[:i] + string(alphabet[c|1]) + last[i+1:]
	if lines[len(lines)-1] == last {
		lines[len(lines)-1] = last[:i] + string(alphabet[c^2]) + last[i+1:]
	}
	mangled := []byte(strings.Join(lines, "\n") + "\n")
	if _, err := f.policy.Check(mangled); err == nil {
		t.Errorf("a cosignature line with non-zero padding bits was accepted:\n%s", mangled)
	}
}
