package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"sort"
	"strconv"
	"strings"
)

// KeySet is the complete key set a bundle carries, parsed: the shape of
// schema.KeySet (this package does not import schema, which pulls in
// elliptic-curve code a verifier does not need; a test keeps the two
// encodings identical). Its pst part has exactly the shape of the file
// Chrome's component ships to browsers (PSTJSON encodes it); its
// privacy_pass part maps origins to RFC 9578 issuer directories.
//
// A KeySet is immutable and safe for concurrent use. It is read through
// its methods, which return values (the views PSTCommitment and
// IssuerDirectory, and the keys in them) that share its memory and cannot
// change it. Its issuers are sorted arrays searched by binary search; its
// strings (origins, versions, labels, keys) are substrings of one owned
// copy of the encoding it was read from, which nothing writes after the
// parse, held as offsets in arrays without pointers (the rare string with
// escapes is kept decoded beside the copy). So reading a key set
// allocates a handful of times, not once per key or issuer, and leaves
// little for the garbage collector to scan. Key sets derived from others
// (by a delta, or merged from several logs) share the unchanged issuers
// with them.
type KeySet struct {
	pst []pstRec // sorted by origin
	pp  []ppRec  // sorted by origin
}

// ksData is the memory the strings of a key set read from one encoding
// live in.
type ksData struct {
	// src is the owned copy of the encoding read; nothing writes it.
	src string
	// decoded holds the strings whose encoding has escapes, decoded.
	decoded []string
}

// strRef is a string of a ksData: src[off:off+n], or decoded[off] if n is
// negative.
type strRef struct{ off, n int32 }

func (d *ksData) str(r strRef) string {
	if r.n < 0 {
		return d.decoded[r.off]
	}
	return d.src[r.off : r.off+r.n]
}

// pstRec is one issuer's member of the pst part.
type pstRec struct {
	d      *ksData
	origin strRef
	// member is the member's canonical encoding `"<origin>":<value>`,
	// value its value's.
	member, value strRef
	versions      []verRec // sorted by version
}

// verRec is the commitment for one protocol version.
type verRec struct {
	version, protocolVersion strRef
	raw                      strRef // its encoding
	id                       uint32
	keysNull                 bool // "keys":null rather than an object
	batchSize                int
	keys                     []keyRec // sorted by label
}

type keyRec struct{ label, y, expiry strRef }

// ppRec is one issuer's member of the privacy_pass part.
type ppRec struct {
	d                *ksData
	origin           strRef
	member, value    strRef
	issuerRequestURI strRef
	tokenKeysNull    bool // "token-keys":null rather than an array
	tokenKeys        []tokenKeyRec
}

type tokenKeyRec struct {
	key          strRef
	notBefore    int64
	tokenType    uint16
	hasNotBefore bool
}

func (r *pstRec) originString() string { return r.d.str(r.origin) }
func (r *pstRec) memberString() string { return r.d.str(r.member) }
func (r *ppRec) originString() string  { return r.d.str(r.origin) }
func (r *ppRec) memberString() string  { return r.d.str(r.member) }

// record is a member record of either part, as a pointer.
type record[R any] interface {
	*R
	originString() string
	memberString() string
}

// PSTCommitment is an issuer's PST key commitment (protocol version ->
// commitment), as a KeySet holds it: a read-only view sharing the key
// set's memory. The zero PSTCommitment is null.
type PSTCommitment struct{ r *pstRec }

// PSTVersionCommitment is the commitment for one PST protocol version, as
// a KeySet holds it; its keys are read through its methods.
type PSTVersionCommitment struct {
	// Version is the protocol version the commitment is listed under (its
	// member name in the commitment); ProtocolVersion is the member
	// protocol_version inside it (the log's policy requires the two to be
	// equal; the key set format does not).
	Version         string
	ProtocolVersion string
	ID              uint32
	BatchSize       int

	d *ksData
	r *verRec
}

// PSTKey is one PST key: Label is its member name in the commitment's
// keys, Y standard base64 of the key bytes (key id ‖ point(s)), Expiry
// microseconds since the epoch in decimal.
type PSTKey struct {
	Label  string `json:"-"`
	Y      string `json:"Y"`
	Expiry string `json:"expiry"`
}

// IssuerDirectory is an RFC 9578 issuer directory, as a KeySet holds it:
// a read-only view sharing the key set's memory; its token keys are read
// through its methods.
type IssuerDirectory struct {
	IssuerRequestURI string

	r *ppRec
}

// TokenKey is one key of an issuer directory. TokenKey is base64url;
// NotBefore (Unix seconds) is set if HasNotBefore.
type TokenKey struct {
	TokenType    uint16
	TokenKey     string
	NotBefore    int64
	HasNotBefore bool
}

// ParseKeySet parses a key set strictly: no unknown members, no trailing
// data, and the input must be the canonical encoding (the encoding
// schema.KeySet.Marshal produces), so it has exactly one meaning for every
// parser, duplicate members included. The key set read owns a copy of b.
func ParseKeySet(b []byte) (*KeySet, error) {
	return parseKeySetFast(b, nil)
}

// Marshal returns the canonical encoding of k: compact JSON, members in
// declaration order, map keys sorted, no HTML escaping, empty maps as {}.
// For a parsed key set it is the input, byte for byte.
func (k *KeySet) Marshal() ([]byte, error) {
	return k.appendEncoding(make([]byte, 0, k.encodedLen())), nil
}

// encodedLen returns the length of k's canonical encoding.
func (k *KeySet) encodedLen() int {
	n := len(`{"pst":{},"privacy_pass":{}}`) + max(len(k.pst)-1, 0) + max(len(k.pp)-1, 0)
	for i := range k.pst {
		n += int(k.pst[i].member.n)
	}
	for i := range k.pp {
		n += int(k.pp[i].member.n)
	}
	return n
}

// appendEncoding appends k's canonical encoding to out.
func (k *KeySet) appendEncoding(out []byte) []byte {
	out = append(out, `{"pst":`...)
	out = appendPart(out, k.pst)
	out = append(out, `,"privacy_pass":`...)
	out = appendPart(out, k.pp)
	return append(out, '}')
}

// MarshalJSON returns the canonical encoding of k (Marshal).
func (k *KeySet) MarshalJSON() ([]byte, error) { return k.Marshal() }

// PSTJSON returns the canonical encoding of k's pst part: an object
// mapping issuer origins to PST commitments, the shape of the file
// Chrome's component ships to browsers.
func (k *KeySet) PSTJSON() []byte { return appendPart(nil, k.pst) }

// PrivacyPassJSON returns the canonical encoding of k's privacy_pass part:
// an object mapping issuer origins to RFC 9578 issuer directories.
func (k *KeySet) PrivacyPassJSON() []byte { return appendPart(nil, k.pp) }

func appendPart[R any, P record[R]](out []byte, rs []R) []byte {
	out = append(out, '{')
	for i := range rs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, P(&rs[i]).memberString()...)
	}
	return append(out, '}')
}

// NumPST returns how many issuers have a member in k's pst part.
func (k *KeySet) NumPST() int { return len(k.pst) }

// NumPrivacyPass returns how many issuers have a member in k's
// privacy_pass part.
func (k *KeySet) NumPrivacyPass() int { return len(k.pp) }

// Issuers returns the sorted origins that have keys in k.
func (k *KeySet) Issuers() []string {
	out := make([]string, 0, max(len(k.pst), len(k.pp)))
	i, j := 0, 0
	for i < len(k.pst) || j < len(k.pp) {
		var a, b string
		if i < len(k.pst) {
			a = k.pst[i].originString()
		}
		if j < len(k.pp) {
			b = k.pp[j].originString()
		}
		switch {
		case j == len(k.pp) || i < len(k.pst) && a < b:
			out = append(out, a)
			i++
		case i == len(k.pst) || b < a:
			out = append(out, b)
			j++
		default:
			out = append(out, a)
			i++
			j++
		}
	}
	return out
}

// search returns the index of origin in the records rs (sorted by
// origin), or where it would be, and whether it is there.
func search[R any, P record[R]](rs []R, origin string) (int, bool) {
	i := sort.Search(len(rs), func(i int) bool { return P(&rs[i]).originString() >= origin })
	return i, i < len(rs) && P(&rs[i]).originString() == origin
}

func (k *KeySet) pstIndex(origin string) (int, bool) { return search(k.pst, origin) }
func (k *KeySet) ppIndex(origin string) (int, bool)  { return search(k.pp, origin) }

// PST returns the issuer's PST commitment, if k has a pst member for it
// (which may be null: see PSTCommitment.IsNull).
func (k *KeySet) PST(origin string) (PSTCommitment, bool) {
	if i, ok := k.pstIndex(origin); ok {
		return PSTCommitment{&k.pst[i]}, true
	}
	return PSTCommitment{}, false
}

// PrivacyPass returns the issuer's Privacy Pass directory, if k has one.
func (k *KeySet) PrivacyPass(origin string) (IssuerDirectory, bool) {
	if i, ok := k.ppIndex(origin); ok {
		return newIssuerDirectory(&k.pp[i]), true
	}
	return IssuerDirectory{}, false
}

func newIssuerDirectory(r *ppRec) IssuerDirectory {
	return IssuerDirectory{IssuerRequestURI: r.d.str(r.issuerRequestURI), r: r}
}

// AllPST yields the issuers' PST commitments, sorted by origin.
func (k *KeySet) AllPST() iter.Seq2[string, PSTCommitment] {
	return func(yield func(string, PSTCommitment) bool) {
		for i := range k.pst {
			if !yield(k.pst[i].originString(), PSTCommitment{&k.pst[i]}) {
				return
			}
		}
	}
}

// AllPrivacyPass yields the issuers' Privacy Pass directories, sorted by
// origin.
func (k *KeySet) AllPrivacyPass() iter.Seq2[string, IssuerDirectory] {
	return func(yield func(string, IssuerDirectory) bool) {
		for i := range k.pp {
			if !yield(k.pp[i].originString(), newIssuerDirectory(&k.pp[i])) {
				return
			}
		}
	}
}

// raw returns the commitment's canonical encoding.
func (c PSTCommitment) raw() string {
	if c.r == nil {
		return "null"
	}
	return c.r.d.str(c.r.value)
}

// IsNull reports whether the commitment is JSON null (the key set format
// allows it; it commits no keys).
func (c PSTCommitment) IsNull() bool { return c.raw() == "null" }

// Len returns the number of protocol versions the commitment has.
func (c PSTCommitment) Len() int {
	if c.r == nil {
		return 0
	}
	return len(c.r.versions)
}

func (c PSTCommitment) version(i int) PSTVersionCommitment {
	d, v := c.r.d, &c.r.versions[i]
	return PSTVersionCommitment{Version: d.str(v.version), ProtocolVersion: d.str(v.protocolVersion), ID: v.id, BatchSize: v.batchSize, d: d, r: v}
}

// Versions yields the commitment's protocol versions, sorted by Version.
func (c PSTCommitment) Versions() iter.Seq[PSTVersionCommitment] {
	return each(c.Len(), c.version)
}

// Version returns the commitment for protocol version v, if it has one.
func (c PSTCommitment) Version(v string) (PSTVersionCommitment, bool) {
	return lookup(c.Len(), func(i int) string { return c.r.d.str(c.r.versions[i].version) }, v, c.version)
}

// MarshalJSON returns the commitment's canonical encoding, as the key set
// holds it.
func (c PSTCommitment) MarshalJSON() ([]byte, error) { return []byte(c.raw()), nil }

// NumKeys returns the number of keys.
func (v PSTVersionCommitment) NumKeys() int {
	if v.r == nil {
		return 0
	}
	return len(v.r.keys)
}

// KeysNull reports whether the commitment's keys are JSON null rather
// than an object (both commit no keys when empty; they encode
// differently).
func (v PSTVersionCommitment) KeysNull() bool { return v.r != nil && v.r.keysNull }

func (v PSTVersionCommitment) key(i int) PSTKey {
	k := &v.r.keys[i]
	return PSTKey{Label: v.d.str(k.label), Y: v.d.str(k.y), Expiry: v.d.str(k.expiry)}
}

// Keys yields the keys, sorted by Label.
func (v PSTVersionCommitment) Keys() iter.Seq[PSTKey] {
	return each(v.NumKeys(), v.key)
}

// Key returns the key with the given label, if there is one.
func (v PSTVersionCommitment) Key(label string) (PSTKey, bool) {
	return lookup(v.NumKeys(), func(i int) string { return v.d.str(v.r.keys[i].label) }, label, v.key)
}

// each yields at(i) for i from 0 to n-1.
func each[T any](n int, at func(int) T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for i := range n {
			if !yield(at(i)) {
				return
			}
		}
	}
}

// lookup returns at(i) for the i in [0, n) with nameAt(i) == name, where
// nameAt is sorted, and whether there is one.
func lookup[T any](n int, nameAt func(int) string, name string, at func(int) T) (T, bool) {
	i := sort.Search(n, func(i int) bool { return nameAt(i) >= name })
	if i < n && nameAt(i) == name {
		return at(i), true
	}
	var zero T
	return zero, false
}

// MarshalJSON returns the version commitment's canonical encoding, as the
// key set holds it (the zero value encodes as null).
func (v PSTVersionCommitment) MarshalJSON() ([]byte, error) {
	if v.r == nil {
		return []byte("null"), nil
	}
	return []byte(v.d.str(v.r.raw)), nil
}

// NumTokenKeys returns the number of token keys.
func (d IssuerDirectory) NumTokenKeys() int {
	if d.r == nil {
		return 0
	}
	return len(d.r.tokenKeys)
}

// TokenKeysNull reports whether the directory's token-keys are JSON null
// rather than an array.
func (d IssuerDirectory) TokenKeysNull() bool { return d.r != nil && d.r.tokenKeysNull }

// TokenKeys yields the token keys in the directory's order.
func (d IssuerDirectory) TokenKeys() iter.Seq[TokenKey] {
	return each(d.NumTokenKeys(), func(i int) TokenKey {
		tk := &d.r.tokenKeys[i]
		return TokenKey{TokenType: tk.tokenType, TokenKey: d.r.d.str(tk.key), NotBefore: tk.notBefore, HasNotBefore: tk.hasNotBefore}
	})
}

// raw returns the directory's canonical encoding.
func (d IssuerDirectory) raw() string {
	if d.r == nil {
		return "null"
	}
	return d.r.d.str(d.r.value)
}

// MarshalJSON returns the directory's canonical encoding, as the key set
// holds it (the zero value encodes as null).
func (d IssuerDirectory) MarshalJSON() ([]byte, error) { return []byte(d.raw()), nil }

// MarshalJSON returns the token key's canonical encoding.
func (tk TokenKey) MarshalJSON() ([]byte, error) {
	out := append([]byte(`{"token-type":`), strconv.FormatUint(uint64(tk.TokenType), 10)...)
	out = append(out, `,"token-key":`...)
	out = append(out, encodeJSONString(tk.TokenKey)...)
	if tk.HasNotBefore {
		out = append(out, `,"not-before":`...)
		out = strconv.AppendInt(out, tk.NotBefore, 10)
	}
	return append(out, '}'), nil
}

// PSTKey returns the key bytes (4-byte key id ‖ point(s)) of the issuer's
// PST key with the given label under protocol version, if the key set has
// it.
func (k *KeySet) PSTKey(issuer, version, label string) ([]byte, bool) {
	c, _ := k.PST(issuer)
	v, ok := c.Version(version)
	if !ok {
		return nil, false
	}
	key, ok := v.Key(label)
	if !ok {
		return nil, false
	}
	y, err := base64.StdEncoding.Strict().DecodeString(key.Y)
	if err != nil {
		return nil, false
	}
	return y, true
}

// HasPSTKey reports whether the issuer committed a PST key with exactly
// the bytes y (key id ‖ point(s)) under protocol version.
func (k *KeySet) HasPSTKey(issuer, version string, y []byte) bool {
	c, _ := k.PST(issuer)
	v, ok := c.Version(version)
	if !ok {
		return false
	}
	for key := range v.Keys() {
		if b, err := base64.StdEncoding.Strict().DecodeString(key.Y); err == nil && bytes.Equal(b, y) {
			return true
		}
	}
	return false
}

// HasTokenKey reports whether the issuer's Privacy Pass directory lists a
// key of tokenType with exactly the bytes key.
func (k *KeySet) HasTokenKey(issuer string, tokenType uint16, key []byte) bool {
	d, ok := k.PrivacyPass(issuer)
	if !ok {
		return false
	}
	for tk := range d.TokenKeys() {
		if tk.TokenType != tokenType {
			continue
		}
		if b, err := decodeBase64URL(tk.TokenKey); err == nil && bytes.Equal(b, key) {
			return true
		}
	}
	return false
}

func decodeBase64URL(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// Change is one issuer whose keys differ between two key sets.
type Change struct {
	Issuer string
	// Part is "pst" or "privacy_pass".
	Part string
	// Op is "added", "removed" or "changed".
	Op string
}

func (c Change) String() string { return c.Issuer + " " + c.Part + " " + c.Op }

// Diff returns the issuers whose keys differ from old to new, sorted by
// issuer then part. (The encoding is canonical, so two members hold the
// same keys exactly when their encodings are the same bytes.)
func Diff(old, new *KeySet) []Change {
	var out []Change
	out = diffPart(out, "pst", old.pst, new.pst)
	out = diffPart(out, "privacy_pass", old.pp, new.pp)
	sortChanges(out)
	return out
}

// diffPart appends the changes from old to new, records of one part.
func diffPart[R any, P record[R]](out []Change, part string, old, new []R) []Change {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		var o, n P
		if i < len(old) {
			o = &old[i]
		}
		if j < len(new) {
			n = &new[j]
		}
		switch {
		case n == nil || o != nil && o.originString() < n.originString():
			out = append(out, Change{Issuer: o.originString(), Part: part, Op: "removed"})
			i++
		case o == nil || n.originString() < o.originString():
			out = append(out, Change{Issuer: n.originString(), Part: part, Op: "added"})
			j++
		default:
			if o.memberString() != n.memberString() {
				out = append(out, Change{Issuer: n.originString(), Part: part, Op: "changed"})
			}
			i++
			j++
		}
	}
	return out
}

// sortChanges sorts changes by issuer, then part.
func sortChanges(cs []Change) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Issuer != cs[j].Issuer {
			return cs[i].Issuer < cs[j].Issuer
		}
		return cs[i].Part < cs[j].Part
	})
}

// The types below decode a commitment with encoding/json, for
// sameCommitment (which compares a logged key commitment, in whatever
// valid encoding the log wrote it, with a key set's members).

type jsonPSTCommitment map[string]struct {
	ProtocolVersion string `json:"protocol_version"`
	ID              uint32 `json:"id"`
	BatchSize       int    `json:"batchsize"`
	Keys            map[string]struct {
		Y      string `json:"Y"`
		Expiry string `json:"expiry"`
	} `json:"keys"`
}

type jsonIssuerDirectory struct {
	IssuerRequestURI string `json:"issuer-request-uri"`
	TokenKeys        []struct {
		TokenType uint16 `json:"token-type"`
		TokenKey  string `json:"token-key"`
		NotBefore *int64 `json:"not-before,omitempty"`
	} `json:"token-keys"`
}

// canonicalJSON encodes v as the key set's canonical encoding does
// (compact, map keys sorted, no HTML escaping).
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("couldn't encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
