package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/keycommit/keycommit/log/keysetroot"
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
	// b is the input: d.src's bytes. The parser only reads b, and
	// nothing writes d.src (the owned copy of the caller's bytes, see
	// newOwnedParser), so the strings read are substrings of it.
	b   []byte
	d   *ksData
	i   int
	err error
	// plain is set when b is plain text (see plainText): then every
	// string's canonical encoding is its bytes between two quotes.
	plain bool
	// wanted is the literal missing at wantedAt, if err is errWanted.
	wanted   string
	wantedAt int
	// The key set's arrays (no pointers but the sub-slices): each
	// commitment's versions, each version's keys and each directory's
	// token keys are a sub-slice of these, so that reading a key set
	// allocates a few arrays, not one per issuer. (A sub-slice taken
	// before an append grew an array stays valid: it keeps the old
	// array.)
	vers []verRec
	keys []keyRec
	tks  []tokenKeyRec
}

// newOwnedParser returns a parser of s (a copy the caller made of its
// bytes, so that they cannot change under the key set read): the strings
// it reads are substrings of s, as offsets that fit in an int32.
func newOwnedParser(s string) *ksParser {
	// The only view of s as bytes, and read only: the parser never
	// writes p.b.
	p := &ksParser{b: unsafe.Slice(unsafe.StringData(s), len(s)), d: &ksData{src: s}}
	p.plain = plainText(p.b)
	if len(s) > math.MaxInt32 {
		p.fail("%d bytes is too long for a key set", len(s))
	}
	return p
}

// ref returns the string at b[i:j].
func (p *ksParser) ref(i, j int) strRef { return strRef{int32(i), int32(j - i)} }

func (p *ksParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("malformed key set at byte %d: %s", p.i, fmt.Sprintf(format, args...))
	}
}

// lit consumes s or fails. It is small enough to inline, so that
// comparing with a constant s compiles to a few loads: it records a
// failure without formatting it (see error). After a failure the parse's
// result is the first error, whatever lit reads.
func (p *ksParser) lit(s string) bool {
	if rest := p.b[p.i:]; len(rest) >= len(s) && string(rest[:len(s)]) == s {
		p.i += len(s)
		return true
	}
	if p.err == nil {
		p.err, p.wanted, p.wantedAt = errWanted, s, p.i
	}
	return false
}

// errWanted is p.err when the first failure was lit's: p.wanted was
// missing at p.wantedAt.
var errWanted = errors.New("want a literal")

// want fails for want of s next.
func (p *ksParser) want(s string) bool {
	p.fail("want %q", s)
	return false
}

// error returns the parse's first failure, nil if none.
func (p *ksParser) error() error {
	if p.err == errWanted {
		return fmt.Errorf("malformed key set at byte %d: want %q", p.wantedAt, p.wanted)
	}
	return p.err
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
func (p *ksParser) str() strRef {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		p.want(`"`)
		return strRef{}
	}
	p.i++
	start := p.i
	if !p.plain {
		return p.scanStr(start)
	}
	n := keysetroot.QuoteIndex(p.b[start:])
	if n < 0 {
		p.fail("unterminated string")
		return strRef{}
	}
	p.i = start + n + 1
	return p.ref(start, start+n)
}

// scanStr reads a string whose contents start at start, in input that is
// not plain text.
func (p *ksParser) scanStr(start int) strRef {
	n, c := plainPrefix(p.b[start:])
	switch {
	case c == '"':
		p.i = start + n + 1
		return p.ref(start, start+n)
	case start+n == len(p.b):
		p.fail("unterminated string")
		return strRef{}
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

// plainText reports whether b has only the bytes 0x20..0x7f and no '\\',
// so that no string in it has an escape or a byte that needs one (or a
// byte from 0x80, which must be checked to be UTF-8). The key sets logs
// serve are plain text (origins, versions, labels and base64).
func plainText(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return false
	}
	// x | (x - 0x20 in each byte) flags (sets the high bit of) every
	// byte from 0x80 or below 0x20; a borrow can only add a flag above
	// a flagged byte.
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	for ; len(b) >= 32; b = b[32:] {
		x0, x1 := binary.LittleEndian.Uint64(b[0:8]), binary.LittleEndian.Uint64(b[8:16])
		x2, x3 := binary.LittleEndian.Uint64(b[16:24]), binary.LittleEndian.Uint64(b[24:32])
		acc |= x0 | (x0 - lo*0x20) | x1 | (x1 - lo*0x20) | x2 | (x2 - lo*0x20) | x3 | (x3 - lo*0x20)
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return acc&hi == 0
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
func (p *ksParser) slowStr(start int) strRef {
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
		return strRef{}
	}
	var s string
	if err := json.Unmarshal(p.b[start:end], &s); err != nil {
		p.i = start
		p.fail("bad string: %v", err)
		return strRef{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	if !bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), p.b[start:end]) {
		p.i = start
		p.fail("string is not in its canonical encoding")
		return strRef{}
	}
	p.i = end
	if len(s) == end-start-2 {
		// No escapes (each is longer than what it stands for): the
		// string is its encoding's bytes.
		return p.ref(start+1, end-1)
	}
	p.d.decoded = append(p.d.decoded, s)
	return strRef{int32(len(p.d.decoded) - 1), -1}
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
	ref strRef // key's
	n   int
	// start is where the member's key starts.
	start int
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
	it.start = p.i
	r := p.str()
	if p.err != nil {
		return false
	}
	k := p.d.str(r)
	if it.n > 0 && k <= it.key {
		p.fail("key %q is not after %q (keys must be sorted and unique)", k, it.key)
		return false
	}
	it.key, it.ref = k, r
	it.n++
	return p.lit(":")
}

// parseKeySetFast parses the canonical encoding of a key set, recording
// each issuer's member if m is not nil.
func parseKeySetFast(b []byte, m *keySetMembers) (*KeySet, error) {
	return parseKeySetSized(b, m, 0)
}

// Every member takes at least minMemberLen bytes, which bounds the size
// hint whatever it says; a PST key of version 1 VOPRF (one P-384 point)
// takes about pstKeyLen (label and expiry included), which sizes the keys'
// array (an array too small grows; its elements are 24 bytes).
const (
	minMemberLen = len(`"":null,`)
	pstKeyLen    = 180
)

// parseKeySetSized is parseKeySetFast with a size hint: issuers, if
// positive, is how many issuers the key set should have (pst and
// privacy_pass members together, as a snapshot records them), to size its
// arrays; a wrong hint costs memory or time, never correctness. The key
// set read is one copy of b (its strings are substrings of it) and a few
// arrays.
func parseKeySetSized(b []byte, m *keySetMembers, issuers int) (*KeySet, error) {
	return parseKeySetWith(newOwnedParser(string(b)), b, m, issuers)
}

// parseKeySetWith is parseKeySetSized with p, a parser of a copy of b.
func parseKeySetWith(p *ksParser, b []byte, m *keySetMembers, issuers int) (*KeySet, error) {
	issuers = min(max(issuers, 0), len(b)/minMemberLen)
	k := &KeySet{pst: make([]pstRec, 0, issuers)}
	p.vers = make([]verRec, 0, issuers)
	p.keys = make([]keyRec, 0, len(b)/pstKeyLen)
	p.lit(`{"pst":`)
	for it := (objectIter{}); p.next(&it); {
		r := p.pstMember(it.ref, it.start)
		if p.err != nil {
			break
		}
		k.pst = append(k.pst, r)
		if m != nil {
			m.pst = append(m.pst, member{origin: it.key, raw: b[it.start:p.i]})
		}
	}
	p.lit(`,"privacy_pass":`)
	if p.err == nil && !bytes.HasPrefix(p.b[p.i:], []byte("{}")) {
		k.pp = make([]ppRec, 0, max(issuers-len(k.pst), 1))
	}
	for it := (objectIter{}); p.next(&it); {
		r := p.ppMember(it.ref, it.start)
		if p.err != nil {
			break
		}
		k.pp = append(k.pp, r)
		if m != nil {
			m.pp = append(m.pp, member{origin: it.key, raw: b[it.start:p.i]})
		}
	}
	p.lit("}")
	if p.err == nil && p.i != len(b) {
		p.fail("trailing data")
	}
	if p.err != nil {
		return nil, p.error()
	}
	return k, nil
}

// pstMember reads the value of the pst member whose key (origin) starts
// at start.
func (p *ksParser) pstMember(origin strRef, start int) pstRec {
	r := pstRec{d: p.d, origin: origin}
	p.pstCommitment(&r)
	r.member = p.ref(start, p.i)
	return r
}

// ppMember reads the value of the privacy_pass member whose key (origin)
// starts at start.
func (p *ksParser) ppMember(origin strRef, start int) ppRec {
	r := ppRec{d: p.d, origin: origin}
	p.issuerDirectory(&r)
	r.member = p.ref(start, p.i)
	return r
}

// pstCommitment reads a PST commitment (a member's value) into r.
func (p *ksParser) pstCommitment(r *pstRec) {
	start := p.i
	if p.null() {
		r.value = p.ref(start, p.i)
		return
	}
	first := len(p.vers)
	for it := (objectIter{}); p.next(&it); {
		vstart := p.i
		v := verRec{version: it.ref}
		p.lit(`{"protocol_version":`)
		v.protocolVersion = p.str()
		p.lit(`,"id":`)
		v.id = uint32(p.int(false, 32))
		p.lit(`,"batchsize":`)
		v.batchSize = int(p.int(true, strconv.IntSize))
		p.lit(`,"keys":`)
		if p.null() {
			v.keysNull = true
		} else {
			kfirst := len(p.keys)
			for kt := (objectIter{}); p.next(&kt); {
				key := keyRec{label: kt.ref}
				p.lit(`{"Y":`)
				key.y = p.str()
				p.lit(`,"expiry":`)
				key.expiry = p.str()
				p.lit("}")
				p.keys = append(p.keys, key)
			}
			v.keys = p.keys[kfirst:len(p.keys):len(p.keys)]
		}
		p.lit("}")
		if p.err != nil {
			break
		}
		v.raw = p.ref(vstart, p.i)
		p.vers = append(p.vers, v)
	}
	r.value = p.ref(start, p.i)
	r.versions = p.vers[first:len(p.vers):len(p.vers)]
}

// issuerDirectory reads an issuer directory (a member's value) into r.
func (p *ksParser) issuerDirectory(r *ppRec) {
	start := p.i
	p.lit(`{"issuer-request-uri":`)
	r.issuerRequestURI = p.str()
	p.lit(`,"token-keys":`)
	if p.null() {
		r.tokenKeysNull = true
	} else if p.lit("[") {
		first := len(p.tks)
		for p.err == nil && !p.peek(']') {
			if len(p.tks) > first {
				p.lit(",")
			}
			var tk tokenKeyRec
			p.lit(`{"token-type":`)
			tk.tokenType = uint16(p.int(false, 16))
			p.lit(`,"token-key":`)
			tk.key = p.str()
			if p.peek(',') {
				p.lit(`,"not-before":`)
				tk.notBefore, tk.hasNotBefore = p.int(true, 64), true
			}
			p.lit("}")
			p.tks = append(p.tks, tk)
		}
		p.lit("]")
		r.tokenKeys = p.tks[first:len(p.tks):len(p.tks)]
	}
	p.lit("}")
	r.value = p.ref(start, p.i)
}
