package schema

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// This file reads key commitments as issuers serve them: the PST key
// commitment at the issuer's key commitment endpoint and the RFC 9578
// issuer directory. Both accept any JSON layout (whitespace, member
// order) and ignore what their consumers ignore, then return the value in
// the form keycommit logs; the notes say what was dropped or rewritten, so
// an issuer can tell that what is logged is not byte for byte what it
// serves. Anything a consumer would refuse is an error.

// ParseCommitmentFile parses a commitment as served: an RFC 9578 issuer
// directory if the top-level object has a "token-keys" member, a PST key
// commitment otherwise. The result is a canonical, validated key
// commitment (without an incident report).
func ParseCommitmentFile(b []byte) (*KeyCommitment, []string, error) {
	root, err := parseJSONTree(b)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if root.kind == 'o' && root.member("token-keys") != nil {
		d, notes, err := directoryFromTree(root)
		if err != nil {
			return nil, notes, err
		}
		return &KeyCommitment{PrivacyPass: d}, notes, nil
	}
	c, notes, err := pstFromTree(root)
	if err != nil {
		return nil, notes, err
	}
	return &KeyCommitment{PST: c}, notes, nil
}

// ParsePSTFile parses a PST key commitment as an issuer serves it, with
// the rules of Chrome's parser (trust_token_key_commitment_parser.cc):
//
//   - the top level is an object; members that are not a protocol version
//     Chrome knows are ignored;
//   - each version's value is an object whose protocol_version is a
//     string equal to the member name; id and batchsize are JSON integers
//     in 1..2147483647 (Chrome reads them as C++ ints: 1.0, 1e3, "1",
//     negative numbers and larger numbers are refused); other members are
//     ignored;
//   - keys is an object; a member whose value is not an object is
//     ignored, as Chrome does; every other member's name is a uint32 in
//     decimal (Chrome's StringToUint64 also takes a leading '+' and
//     leading zeros: the label is rewritten in canonical decimal), with Y
//     and expiry strings; expiry is a uint64 of microseconds, rewritten in
//     canonical decimal; Y is padded standard base64 without whitespace,
//     re-encoded canonically.
//
// Where keycommit is stricter than Chrome, the error says so: every
// version present is validated, not just the preferred one; a version must
// have at least one key; keys must be valid P-384 points of the right
// size; an object with a member twice is refused; expired keys are not
// skipped here (the policy refuses them).
func ParsePSTFile(b []byte) (PSTCommitment, []string, error) {
	root, err := parseJSONTree(b)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed JSON: %w", err)
	}
	return pstFromTree(root)
}

// ParseDirectoryFile parses an RFC 9578 issuer directory as served at
// /.well-known/private-token-issuer-directory. Unknown members are
// ignored; token-keys of a token type other than 1 or 2 are dropped (a
// client ignores the types it does not support); token-key may be padded
// or unpadded base64url and is rewritten padded; not-before, if present,
// is a non-negative JSON integer.
func ParseDirectoryFile(b []byte) (*IssuerDirectory, []string, error) {
	root, err := parseJSONTree(b)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed JSON: %w", err)
	}
	return directoryFromTree(root)
}

func pstFromTree(root *jsonValue) (PSTCommitment, []string, error) {
	var notes []string
	if root.kind != 'o' {
		return nil, nil, fmt.Errorf("PST key commitment is %s, want an object", root.typeName())
	}
	c := PSTCommitment{}
	for _, m := range root.obj {
		if !KnownPSTVersion(m.name) {
			notes = append(notes, fmt.Sprintf("ignored top-level member %q: not a PST protocol version Chrome knows", m.name))
			continue
		}
		vc, vnotes, err := pstVersionFromTree(m.name, m.val)
		notes = append(notes, vnotes...)
		if err != nil {
			return nil, notes, err
		}
		c[m.name] = vc
	}
	if len(c) == 0 {
		return nil, notes, fmt.Errorf("PST key commitment has none of the protocol versions Chrome knows (%s)", strings.Join(PSTVersions, ", "))
	}
	if err := c.Validate(); err != nil {
		return nil, notes, err
	}
	return c, notes, nil
}

func pstVersionFromTree(v string, val *jsonValue) (PSTVersionCommitment, []string, error) {
	var notes []string
	var vc PSTVersionCommitment
	if val.kind != 'o' {
		return vc, nil, fmt.Errorf("%s is %s, want an object", v, val.typeName())
	}
	pv := val.member("protocol_version")
	if pv == nil || pv.kind != 's' || pv.str != v {
		return vc, nil, fmt.Errorf("%s: protocol_version must be the string %q", v, v)
	}
	vc.ProtocolVersion = v
	id, err := chromeInt(val.member("id"))
	if err != nil {
		return vc, nil, fmt.Errorf("%s: id %v", v, err)
	}
	vc.ID = uint32(id)
	bs, err := chromeInt(val.member("batchsize"))
	if err != nil {
		return vc, nil, fmt.Errorf("%s: batchsize %v", v, err)
	}
	vc.BatchSize = int(bs)
	for _, m := range val.obj {
		switch m.name {
		case "protocol_version", "id", "batchsize", "keys":
		default:
			notes = append(notes, fmt.Sprintf("%s: ignored member %q", v, m.name))
		}
	}
	keys := val.member("keys")
	if keys == nil {
		return vc, notes, fmt.Errorf("%s: no keys member (Chrome accepts a commitment without keys, but there is nothing to log)", v)
	}
	if keys.kind != 'o' {
		return vc, notes, fmt.Errorf("%s: keys is %s, want an object", v, keys.typeName())
	}
	vc.Keys = map[string]PSTKey{}
	for _, m := range keys.obj {
		if m.val.kind != 'o' {
			notes = append(notes, fmt.Sprintf("%s: ignored key %q: its value is %s, not an object (Chrome skips it)", v, m.name, m.val.typeName()))
			continue
		}
		l, ok := chromeStringToUint64(m.name)
		if !ok || l > 0xffffffff {
			return vc, notes, fmt.Errorf("%s: key label %q is not a uint32", v, m.name)
		}
		label := strconv.FormatUint(l, 10)
		if label != m.name {
			notes = append(notes, fmt.Sprintf("%s: key label %q rewritten as %q", v, m.name, label))
		}
		if _, dup := vc.Keys[label]; dup {
			return vc, notes, fmt.Errorf("%s: two keys have label %s", v, label)
		}
		k, knotes, err := pstKeyFromTree(v, label, m.val)
		notes = append(notes, knotes...)
		if err != nil {
			return vc, notes, err
		}
		vc.Keys[label] = k
	}
	return vc, notes, nil
}

func pstKeyFromTree(v, label string, val *jsonValue) (PSTKey, []string, error) {
	var notes []string
	y, exp := val.member("Y"), val.member("expiry")
	if y == nil || y.kind != 's' {
		return PSTKey{}, nil, fmt.Errorf("%s key %s: Y must be a string", v, label)
	}
	if exp == nil || exp.kind != 's' {
		return PSTKey{}, nil, fmt.Errorf("%s key %s: expiry must be a string (microseconds since the epoch)", v, label)
	}
	for _, m := range val.obj {
		if m.name != "Y" && m.name != "expiry" {
			notes = append(notes, fmt.Sprintf("%s key %s: ignored member %q", v, label, m.name))
		}
	}
	e, ok := chromeStringToUint64(exp.str)
	if !ok {
		return PSTKey{}, notes, fmt.Errorf("%s key %s: expiry %q is not a uint64 (microseconds since the epoch)", v, label, exp.str)
	}
	expiry := strconv.FormatUint(e, 10)
	if expiry != exp.str {
		notes = append(notes, fmt.Sprintf("%s key %s: expiry %q rewritten as %q", v, label, exp.str, expiry))
	}
	if strings.ContainsAny(y.str, " \t\r\n") {
		return PSTKey{}, notes, fmt.Errorf("%s key %s: Y contains whitespace", v, label)
	}
	raw, err := base64.StdEncoding.DecodeString(y.str)
	if err != nil {
		return PSTKey{}, notes, fmt.Errorf("%s key %s: Y is not padded standard base64: %v", v, label, err)
	}
	yc := base64.StdEncoding.EncodeToString(raw)
	if yc != y.str {
		notes = append(notes, fmt.Sprintf("%s key %s: Y re-encoded in canonical base64", v, label))
	}
	return PSTKey{Y: yc, Expiry: expiry}, notes, nil
}

// chromeInt reads a JSON value as Chrome's base::Value::FindInt does, and
// requires it to be positive: a JSON number written as an integer that
// fits in a 32-bit int.
func chromeInt(v *jsonValue) (int64, error) {
	if v == nil {
		return 0, fmt.Errorf("is missing")
	}
	if v.kind != 'n' {
		return 0, fmt.Errorf("is %s, want a JSON integer", v.typeName())
	}
	s := v.num.String()
	if strings.ContainsAny(s, ".eE") {
		return 0, fmt.Errorf("%s is not written as an integer (Chrome reads it as a double)", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > ChromeMaxInt {
		return 0, fmt.Errorf("%s is above %d, the largest Chrome reads", s, ChromeMaxInt)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%s is not positive", s)
	}
	return n, nil
}

// chromeStringToUint64 follows base::StringToUint64: an optional '+',
// then one or more decimal digits, and no overflow.
func chromeStringToUint64(s string) (uint64, bool) {
	d := strings.TrimPrefix(s, "+")
	if d == "" || strings.IndexFunc(d, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(d, 10, 64)
	return n, err == nil
}

func directoryFromTree(root *jsonValue) (*IssuerDirectory, []string, error) {
	var notes []string
	if root.kind != 'o' {
		return nil, nil, fmt.Errorf("issuer directory is %s, want an object", root.typeName())
	}
	d := &IssuerDirectory{}
	for _, m := range root.obj {
		switch m.name {
		case "issuer-request-uri":
			if m.val.kind != 's' {
				return nil, notes, fmt.Errorf("issuer-request-uri is %s, want a string", m.val.typeName())
			}
			d.IssuerRequestURI = m.val.str
		case "token-keys":
			if m.val.kind != 'a' {
				return nil, notes, fmt.Errorf("token-keys is %s, want an array", m.val.typeName())
			}
			for i, kv := range m.val.arr {
				k, keep, knotes, err := tokenKeyFromTree(i, kv)
				notes = append(notes, knotes...)
				if err != nil {
					return nil, notes, err
				}
				if keep {
					d.TokenKeys = append(d.TokenKeys, k)
				}
			}
		default:
			notes = append(notes, fmt.Sprintf("ignored member %q", m.name))
		}
	}
	if root.member("issuer-request-uri") == nil {
		return nil, notes, fmt.Errorf("issuer directory has no issuer-request-uri")
	}
	if err := d.Validate(); err != nil {
		return nil, notes, err
	}
	return d, notes, nil
}

func tokenKeyFromTree(i int, v *jsonValue) (TokenKey, bool, []string, error) {
	var notes []string
	var k TokenKey
	if v.kind != 'o' {
		return k, false, nil, fmt.Errorf("token-keys[%d] is %s, want an object", i, v.typeName())
	}
	tt := v.member("token-type")
	if tt == nil || tt.kind != 'n' {
		return k, false, nil, fmt.Errorf("token-keys[%d]: token-type must be a JSON integer", i)
	}
	t, err := strconv.ParseUint(tt.num.String(), 10, 16)
	if err != nil {
		return k, false, nil, fmt.Errorf("token-keys[%d]: token-type %s is not an integer in 0..65535", i, tt.num)
	}
	if t != TokenTypeVOPRF && t != TokenTypeBlindRSA {
		return k, false, []string{fmt.Sprintf("dropped token-keys[%d]: token-type %d is not one keycommit logs (1 or 2)", i, t)}, nil
	}
	k.TokenType = uint16(t)
	tk := v.member("token-key")
	if tk == nil || tk.kind != 's' {
		return k, false, nil, fmt.Errorf("token-keys[%d]: token-key must be a string", i)
	}
	enc := base64.RawURLEncoding
	if strings.HasSuffix(tk.str, "=") {
		enc = base64.URLEncoding
	}
	if strings.ContainsAny(tk.str, " \t\r\n") {
		return k, false, nil, fmt.Errorf("token-keys[%d]: token-key contains whitespace", i)
	}
	raw, err := enc.DecodeString(tk.str)
	if err != nil {
		return k, false, nil, fmt.Errorf("token-keys[%d]: token-key is not base64url: %v", i, err)
	}
	k.TokenKey = base64.URLEncoding.EncodeToString(raw)
	if k.TokenKey != tk.str {
		notes = append(notes, fmt.Sprintf("token-keys[%d]: token-key re-encoded as padded base64url", i))
	}
	if nb := v.member("not-before"); nb != nil {
		if nb.kind != 'n' {
			return k, false, notes, fmt.Errorf("token-keys[%d]: not-before is %s, want a JSON integer (Unix seconds)", i, nb.typeName())
		}
		n, err := strconv.ParseInt(nb.num.String(), 10, 64)
		if err != nil || n < 0 {
			return k, false, notes, fmt.Errorf("token-keys[%d]: not-before %s is not a non-negative integer (Unix seconds)", i, nb.num)
		}
		k.NotBefore = &n
	}
	for _, m := range v.obj {
		switch m.name {
		case "token-type", "token-key", "not-before":
		default:
			notes = append(notes, fmt.Sprintf("token-keys[%d]: ignored member %q", i, m.name))
		}
	}
	return k, true, notes, nil
}
