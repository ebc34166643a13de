package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
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
	b []byte
	// s is b as one string: the strings read are substrings of it, so
	// that reading a key set allocates one copy of it, not one per string.
	s   string
	i   int
	err error
}

func (p *ksParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("malformed key set at byte %d: %s", p.i, fmt.Sprintf(format, args...))
	}
}

// lit consumes s or fails.
func (p *ksParser) lit(s string) bool {
	if p.err != nil {
		return false
	}
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.fail("want %q", s)
		return false
	}
	p.i += len(s)
	return true
}

// peek reports whether the next byte is c.
func (p *ksParser) peek(c byte) bool { return p.err == nil && p.i < len(p.b) && p.b[p.i] == c }

// null consumes "null" if it is next.
func (p *ksParser) null() bool {
	if p.err == nil && bytes.HasPrefix(p.b[p.i:], []byte("null")) {
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
	n := bytes.IndexByte(p.b[start:], '"')
	if n < 0 {
		p.fail("unterminated string")
		return ""
	}
	if !plainASCII(p.b[start : start+n]) {
		return p.slowStr(start - 1)
	}
	p.i = start + n + 1
	return p.s[start : start+n]
}

// plainASCII reports whether b has only bytes 0x20..0x7f other than '\\'
// (then it is a string's canonical encoding as is), eight bytes at a time.
func plainASCII(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		bs := x ^ (lo * '\\')
		if (x|((x-lo*0x20)&^x)|((bs-lo)&^bs))&hi != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
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
	if signed && j < len(p.b) && p.b[j] == '-' {
		j++
	}
	d := j
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == d || (p.b[d] == '0' && j-d > 1) || (p.b[d] == '0' && d > start) {
		p.fail("want a canonical integer")
		return 0
	}
	s := string(p.b[start:j])
	var v int64
	var err error
	if signed {
		v, err = strconv.ParseInt(s, 10, bits)
	} else {
		var u uint64
		u, err = strconv.ParseUint(s, 10, bits)
		v = int64(u)
	}
	if err != nil {
		p.fail("integer %s: out of range", s)
		return 0
	}
	p.i = j
	return v
}

// object reads a JSON object with string keys in strictly increasing order
// (as Marshal sorts map keys), calling val after each key.
func (p *ksParser) object(val func(key string)) {
	if !p.lit("{") {
		return
	}
	if p.peek('}') {
		p.i++
		return
	}
	prev, first := "", true
	for p.err == nil {
		k := p.str()
		if p.err != nil {
			return
		}
		if !first && k <= prev {
			p.fail("key %q is not after %q (keys must be sorted and unique)", k, prev)
			return
		}
		prev, first = k, false
		if !p.lit(":") {
			return
		}
		val(k)
		if p.peek(',') {
			p.i++
			continue
		}
		p.lit("}")
		return
	}
}

// parseKeySetFast parses the canonical encoding of a key set, recording
// each issuer's member if m is not nil.
func parseKeySetFast(b []byte, m *keySetMembers) (*KeySet, error) {
	p := &ksParser{b: b, s: string(b)}
	k := &KeySet{PST: map[string]PSTCommitment{}, PrivacyPass: map[string]IssuerDirectory{}}
	p.lit(`{"pst":`)
	p.object(func(origin string) {
		start := p.i
		k.PST[origin] = p.pstCommitment()
		if m != nil && p.err == nil {
			m.pst = append(m.pst, member{origin: origin, raw: b[memberStart(b, start, origin):p.i]})
		}
	})
	p.lit(`,"privacy_pass":`)
	p.object(func(origin string) {
		start := p.i
		k.PrivacyPass[origin] = p.issuerDirectory()
		if m != nil && p.err == nil {
			m.pp = append(m.pp, member{origin: origin, raw: b[memberStart(b, start, origin):p.i]})
		}
	})
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
	p.object(func(version string) {
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
			p.object(func(label string) {
				var key PSTKey
				p.lit(`{"Y":`)
				key.Y = p.str()
				p.lit(`,"expiry":`)
				key.Expiry = p.str()
				p.lit("}")
				v.Keys[label] = key
			})
		}
		p.lit("}")
		c[version] = v
	})
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
