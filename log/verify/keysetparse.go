package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// The key set parser below reads exactly the canonical encoding
// (KeySet.Marshal) without reflection: every construct is checked to be the
// one encoding Marshal would write for the value read, so accepting b means
// Marshal(ParseKeySet(b)) == b (fuzzed against the reflective decoder in
// FuzzParseKeySet). It also records where each issuer's member lies, so a
// delta can replace members without re-reading the rest (see delta.go).

// member is one issuer's member of a key set part: its origin and the
// member's bytes `"<origin>":<value>` in the canonical encoding.
type member struct {
	origin string
	raw    []byte
}

// keySetMembers lists the members of each part in canonical (sorted) order.
type keySetMembers struct {
	pst, pp []member
}

type ksParser struct {
	b   []byte
	i   int
	err error
	// chunk holds copies of the strings read so far (b is the caller's
	// and may change): a string read is a substring of chunk, so that
	// reading a key set allocates a few chunks, not one string each, and
	// only the strings' bytes, not the JSON around them.
	chunk strings.Builder
	// recent holds short strings read before (labels, expiries, protocol
	// versions repeat), reused instead of copied again.
	recent [32]string
}

// maxChunk is the size of the chunks strings are copied into: a small
// allocation (never a large, page-allocated object), and small enough that
// the last chunk's unused tail stays small (16 KB chunks allocate 189 KB
// for the 100-issuer benchmark key set, 32 KB ones 196 KB).
const maxChunk = 16 << 10

// keep returns a copy of b that p owns (b is a part of p.b).
func (p *ksParser) keep(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	var h int
	if n <= 24 {
		h = (n*7 + int(b[0]) + int(b[n-1])*3) & (len(p.recent) - 1)
		if p.recent[h] == string(b) {
			return p.recent[h]
		}
	}
	if p.chunk.Cap()-p.chunk.Len() < n {
		// The strings still to read are at most the input left.
		size := max(n, min(len(p.b)-p.i, maxChunk))
		p.chunk = strings.Builder{}
		p.chunk.Grow(size)
	}
	off := p.chunk.Len()
	p.chunk.Write(b)
	s := p.chunk.String()[off:]
	if n <= 24 {
		p.recent[h] = s
	}
	return s
}

func (p *ksParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("malformed key set at byte %d: %s", p.i, fmt.Sprintf(format, args...))
	}
}

// lit consumes s or fails.
func (p *ksParser) lit(s string) bool {
	if p.err == nil && len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return p.want(s)
}

// want fails for want of s next.
func (p *ksParser) want(s string) bool {
	p.fail("want %q", s)
	return false
}

// peek reports whether the next byte is c.
func (p *ksParser) peek(c byte) bool { return p.err == nil && p.i < len(p.b) && p.b[p.i] == c }

// null consumes "null" if it is next.
func (p *ksParser) null() bool {
	if p.err == nil && len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a string in its canonical encoding (as encoding/json writes it
// without HTML escaping).
func (p *ksParser) str() string {
	if !p.lit(`"`) {
		return ""
	}
	start := p.i
	n, c := plainPrefix(p.b[start:])
	switch {
	case c == '"':
		s := p.keep(p.b[start : start+n])
		p.i = start + n + 1
		return s
	case start+n == len(p.b):
		p.fail("unterminated string")
		return ""
	default:
		return p.slowStr(start - 1)
	}
}

// special flags (sets the high bit of) the bytes of x (eight bytes, little
// endian) that are '"', '\\', below 0x20 or from 0x80: exactly for the
// lowest flagged byte, whose index is the first special byte's (a false
// flag comes only from a borrow out of a lower flagged byte).
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	// x flags 0x80 and up; x-0x20 flags the bytes below 0x20; x^'"'
	// and x^'\\' are 0 at '"' and '\\', so minus 1 flags them (they
	// flag bytes from 0x80 too, which x does anyway).
	return (x | (x - lo*0x20) | (x ^ lo*'"' - lo) | (x ^ lo*'\\' - lo)) & hi
}

// plainPrefix returns the length n of b's prefix of bytes 0x20..0x7f other
// than '"' and '\\' (a string's canonical encoding as is), and the byte
// b[n] that ends it (0 if n is len(b)), sixteen bytes at a time.
func plainPrefix(b []byte) (n int, end byte) {
	for ; len(b)-n >= 16; n += 16 {
		if special(binary.LittleEndian.Uint64(b[n:]))|special(binary.LittleEndian.Uint64(b[n+8:])) != 0 {
			break
		}
	}
	for ; len(b)-n >= 8; n += 8 {
		if m := special(binary.LittleEndian.Uint64(b[n:])); m != 0 {
			n += bits.TrailingZeros64(m) / 8
			return n, b[n]
		}
	}
	for ; n < len(b); n++ {
		if c := b[n]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return n, c
		}
	}
	return n, 0
}

// slowStr reads a string with escapes or non-ASCII bytes starting at the
// quote at start: it must be valid JSON and re-encode to the same bytes.
func (p *ksParser) slowStr(start int) string {
	end := -1
	for j := start + 1; j < len(p.b); j++ {
		if p.b[j] == '\\' {
			j++
			continue
		}
		if p.b[j] == '"' {
			end = j + 1
			break
		}
	}
	if end < 0 {
		p.i = start
		p.fail("unterminated string")
		return ""
	}
	var s string
	if err := json.Unmarshal(p.b[start:end], &s); err != nil {
		p.i = start
		p.fail("bad string: %v", err)
		return ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	if !bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), p.b[start:end]) {
		p.i = start
		p.fail("string is not in its canonical encoding")
		return ""
	}
	p.i = end
	return s
}

// int reads a canonical decimal integer of the given bit size.
func (p *ksParser) int(signed bool, bits int) int64 {
	if p.err != nil {
		return 0
	}
	start := p.i
	j := p.i
	neg := signed && j < len(p.b) && p.b[j] == '-'
	if neg {
		j++
	}
	d := j
	var u uint64
	over := false
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		c := uint64(p.b[j] - '0')
		if u > (math.MaxUint64-c)/10 {
			over = true
		}
		u = u*10 + c
		j++
	}
	if j == d || (p.b[d] == '0' && j-d > 1) || (p.b[d] == '0' && d > start) {
		p.fail("want a canonical integer")
		return 0
	}
	var limit uint64 // the largest magnitude allowed
	switch {
	case !signed:
		limit = math.MaxUint64 >> (64 - bits)
	case neg:
		limit = 1 << (bits - 1)
	default:
		limit = 1<<(bits-1) - 1
	}
	if over || u > limit {
		p.fail("integer %s: out of range", p.b[start:j])
		return 0
	}
	p.i = j
	if neg {
		return -int64(u)
	}
	return int64(u)
}

// objectIter walks a JSON object with string keys in strictly increasing
// order (as Marshal sorts map keys): next reads the object's opening brace
// or the comma before the next member, and the member's key and colon.
type objectIter struct {
	key string
	n   int
}

// next reads up to the next member's value and reports whether there is
// one (its key is it.key), or reads the end of the object.
func (p *ksParser) next(it *objectIter) bool {
	if p.err != nil {
		return false
	}
	if it.n == 0 {
		if !p.lit("{") {
			return false
		}
		if p.peek('}') {
			p.i++
			return false
		}
	} else if p.peek(',') {
		p.i++
	} else {
		p.lit("}")
		return false
	}
	k := p.str()
	if p.err != nil {
		return false
	}
	if it.n > 0 && k <= it.key {
		p.fail("key %q is not after %q (keys must be sorted and unique)", k, it.key)
		return false
	}
	it.key = k
	it.n++
	return p.lit(":")
}

// parseKeySetFast parses the canonical encoding of a key set, recording
// each issuer's member if m is not nil.
func parseKeySetFast(b []byte, m *keySetMembers) (*KeySet, error) {
	return parseKeySetSized(b, m, 0)
}

// parseKeySetSized is parseKeySetFast with a size hint: issuers, if
// positive, is how many issuers the key set should have (pst and
// privacy_pass members together, as a snapshot records them), to size its
// maps; a wrong hint costs memory or time, never correctness.
func parseKeySetSized(b []byte, m *keySetMembers, issuers int) (*KeySet, error) {
	p := &ksParser{b: b}
	// Every member takes at least 8 bytes (`"":null,`), which bounds
	// the hint whatever it says.
	issuers = min(max(issuers, 0), len(b)/8)
	k := &KeySet{PST: make(map[string]PSTCommitment, issuers)}
	p.lit(`{"pst":`)
	for it := (objectIter{}); p.next(&it); {
		start := p.i
		c := p.pstCommitment()
		if p.err != nil {
			break
		}
		k.PST[it.key] = c
		if m != nil {
			m.pst = append(m.pst, member{origin: it.key, raw: b[memberStart(b, start, it.key):p.i]})
		}
	}
	p.lit(`,"privacy_pass":`)
	k.PrivacyPass = make(map[string]IssuerDirectory, max(issuers-len(k.PST), 0))
	for it := (objectIter{}); p.next(&it); {
		start := p.i
		d := p.issuerDirectory()
		if p.err != nil {
			break
		}
		k.PrivacyPass[it.key] = d
		if m != nil {
			m.pp = append(m.pp, member{origin: it.key, raw: b[memberStart(b, start, it.key):p.i]})
		}
	}
	p.lit("}")
	if p.err == nil && p.i != len(b) {
		p.fail("trailing data")
	}
	if p.err != nil {
		return nil, p.err
	}
	return k, nil
}

// memberStart returns where the member whose value starts at valueStart
// begins: its key (canonically encoded, as the parser checked) and ':'
// precede the value.
func memberStart(b []byte, valueStart int, origin string) int {
	return valueStart - 1 - encodedLen(origin)
}

// encodedLen returns the length of s's canonical JSON string encoding.
func encodedLen(s string) int {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return len(s) + 2
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return buf.Len() - 1
}

func (p *ksParser) pstCommitment() PSTCommitment {
	if p.null() {
		return nil
	}
	c := PSTCommitment{}
	for it := (objectIter{}); p.next(&it); {
		var v PSTVersionCommitment
		p.lit(`{"protocol_version":`)
		v.ProtocolVersion = p.str()
		p.lit(`,"id":`)
		v.ID = uint32(p.int(false, 32))
		p.lit(`,"batchsize":`)
		v.BatchSize = int(p.int(true, strconv.IntSize))
		p.lit(`,"keys":`)
		if !p.null() {
			v.Keys = map[string]PSTKey{}
			for kt := (objectIter{}); p.next(&kt); {
				var key PSTKey
				p.lit(`{"Y":`)
				key.Y = p.str()
				p.lit(`,"expiry":`)
				key.Expiry = p.str()
				p.lit("}")
				v.Keys[kt.key] = key
			}
		}
		p.lit("}")
		c[it.key] = v
	}
	return c
}

func (p *ksParser) issuerDirectory() IssuerDirectory {
	var d IssuerDirectory
	p.lit(`{"issuer-request-uri":`)
	d.IssuerRequestURI = p.str()
	p.lit(`,"token-keys":`)
	if !p.null() && p.lit("[") {
		d.TokenKeys = []TokenKey{}
		for p.err == nil && !p.peek(']') {
			if len(d.TokenKeys) > 0 {
				p.lit(",")
			}
			var tk TokenKey
			p.lit(`{"token-type":`)
			tk.TokenType = uint16(p.int(false, 16))
			p.lit(`,"token-key":`)
			tk.TokenKey = p.str()
			if p.peek(',') {
				p.lit(`,"not-before":`)
				nb := p.int(true, 64)
				tk.NotBefore = &nb
			}
			p.lit("}")
			d.TokenKeys = append(d.TokenKeys, tk)
		}
		p.lit("]")
	}
	p.lit("}")
	return d
}
