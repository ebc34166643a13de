// Package schema defines what keycommit logs, byte for byte.
//
// Every leaf of the log is one Entry in its canonical encoding: compact JSON
// with object members in the order the Go types below declare them, map keys
// sorted, no HTML escaping and no trailing newline (exactly what
// encoding/json produces with SetEscapeHTML(false)). Parsing is strict: an
// unknown member, a missing required member, or any input that does not
// re-encode to the same bytes is rejected, so every entry has exactly one
// encoding and monitors in any language can recompute leaf hashes.
//
// The package does no I/O.
package schema

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the schema version written in every entry's "v" member by
// this code. Entries of version 1 (VersionLegacy), written before it,
// still parse, verify and replay: their statements name no log (signed
// with the "keycommit/statement/v1" context) and their registrations
// record no proof of origin control. Version 2 adds, in this member
// order, "log" after "time" (the log the statement was signed for: its
// checkpoint origin; every issuer-signed entry has one) and "control"
// after "sig" (registrations only: the proof of origin control the log
// checked). See docs/entries.md.
const Version = 2

// VersionLegacy is the entry format of logs made before Version 2.
const VersionLegacy = 1

// MaxEntrySize is the largest canonical entry the log accepts. C2SP
// tlog-tiles entry bundles prefix each entry with a uint16 length.
const MaxEntrySize = 65535

// MaxSubmissionSize is the largest submission, in its compact encoding
// (as log/client and log/issuer send it), whose entry fits in
// MaxEntrySize: the entry is the submission's members plus "v":2, a
// "time" of 13 digits (every millisecond time from 2001 to 2286) and,
// for a registration, the log's "control" record (maxControlSize). A
// larger body cannot be admitted, so servers refuse it before parsing.
const MaxSubmissionSize = MaxEntrySize - len(`"v":2,"time":1000000000000,`) - maxControlSize

// maxControlSize bounds the encoded "control" member: its fixed text, an
// origin of at most 253 + 6 bytes of host and port, the challenge path
// and a 13-digit time.
const maxControlSize = len(`,"control":{"method":"https","url":"https://","time":1000000000000}`) + 253 + 6 + len(ChallengePath) + 64

// Kind names what an entry records.
type Kind string

// The entry kinds.
const (
	// KindRegistration binds an issuer origin to its account key. The first
	// registration of an origin is signed by the key it registers (proof of
	// possession); a renewal or an account key change is signed by the
	// account key in force.
	KindRegistration Kind = "registration"
	// KindKeyCommitment is an issuer's key commitment exactly as user agents
	// consume it, normal or emergency (with a preliminary incident report).
	KindKeyCommitment Kind = "key_commitment"
	// KindIncidentReport is the final report for an earlier emergency.
	KindIncidentReport Kind = "incident_report"
	// KindPolicyParams records the policy parameters in force from this entry
	// on. Written by the log itself; carries no issuer signature.
	KindPolicyParams Kind = "policy_params"
	// KindSnapshot records the digest of the complete key set as of this
	// entry. Written by the log itself; carries no issuer signature.
	KindSnapshot Kind = "snapshot"
)

// IssuerSigned reports whether entries of kind k carry an issuer's signature.
func (k Kind) IssuerSigned() bool {
	switch k {
	case KindRegistration, KindKeyCommitment, KindIncidentReport:
		return true
	}
	return false
}

// Known reports whether k is one of the kinds above.
func (k Kind) Known() bool {
	switch k {
	case KindRegistration, KindKeyCommitment, KindIncidentReport, KindPolicyParams, KindSnapshot:
		return true
	}
	return false
}

// ErrNotCanonical is returned (wrapped) when input parses but is not in the
// canonical encoding.
var ErrNotCanonical = errors.New("not in canonical encoding")

// Statement is what an issuer signs: the kind, its origin, the leaf hash of
// its previous entry in the log (empty for an origin's first registration),
// and the kind's body. Prev binds every statement to the issuer's history,
// so a statement cannot be replayed, and two submissions made against the
// same history cannot both be admitted.
//
// Log names the log the statement is for (its checkpoint origin, e.g.
// "keycommit.example/log/2026"), so a statement signed for one log cannot
// be replayed into another. DryRun marks a statement made for POST
// /v1/check only: it is signed in its own context and can never be
// logged. A statement with no Log is a legacy (version 1) one.
type Statement struct {
	Kind   Kind            `json:"kind"`
	Log    string          `json:"log,omitempty"`
	Issuer string          `json:"issuer"`
	Prev   []byte          `json:"prev"`
	Body   json.RawMessage `json:"body"`
	DryRun bool            `json:"dry_run,omitempty"`
}

// The contexts prepended to the canonical statement to form the signed
// message, so a keycommit signature can never be confused with a
// signature over anything else, a dry run with a statement to log, nor
// a legacy statement (no log) with a current one.
const (
	statementContextLegacy = "keycommit/statement/v1\n"
	statementContext       = "keycommit/statement/v2\n"
	dryRunContext          = "keycommit/dry-run/v2\n"
)

// SignedMessage returns the bytes an issuer signs for s.
func (s *Statement) SignedMessage() ([]byte, error) {
	if _, err := ParseBody(s.Kind, s.Body); err != nil {
		return nil, err
	}
	return s.message()
}

// message is SignedMessage without parsing the body.
func (s *Statement) message() ([]byte, error) {
	b, err := canonicalJSON(s)
	if err != nil {
		return nil, err
	}
	ctx := statementContext
	switch {
	case s.DryRun:
		ctx = dryRunContext
	case s.Log == "":
		ctx = statementContextLegacy
	}
	return append([]byte(ctx), b...), nil
}

// Submission is the wire form of POST /v1/submit: a statement and the
// issuer's Ed25519 signature over its SignedMessage.
type Submission struct {
	Statement
	Sig []byte `json:"sig"`
}

// Sign builds a submission of s signed with key.
func Sign(s Statement, key ed25519.PrivateKey) (*Submission, error) {
	msg, err := s.SignedMessage()
	if err != nil {
		return nil, err
	}
	return &Submission{Statement: s, Sig: ed25519.Sign(key, msg)}, nil
}

// Verify checks the submission's signature against the account key pub.
func (s *Submission) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("account key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	msg, err := s.SignedMessage()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, s.Sig) {
		return fmt.Errorf("bad signature: %s statement for %q does not verify under the account key", s.Kind, s.Issuer)
	}
	return nil
}

// ParseSubmission parses a submission strictly: one JSON object with
// exactly-spelled members, none of them twice (at any depth), none
// unknown. The body must already be canonical (clients canonicalize
// before they sign; see CanonicalizeBody).
func ParseSubmission(b []byte) (*Submission, error) {
	if err := checkMembers(b, submissionMembers); err != nil {
		return nil, fmt.Errorf("malformed submission: %w", err)
	}
	var s Submission
	if err := strictUnmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("malformed submission: %w", err)
	}
	if !s.Kind.Known() {
		return nil, fmt.Errorf("unknown entry kind %q", s.Kind)
	}
	if !s.Kind.IssuerSigned() {
		return nil, fmt.Errorf("entry kind %q is written by the log, not submitted", s.Kind)
	}
	if s.Issuer == "" {
		return nil, errors.New("submission has no issuer")
	}
	if n, err := NormalizeOrigin(s.Issuer); err != nil {
		return nil, err
	} else if n != s.Issuer {
		return nil, fmt.Errorf("issuer %q is not a normalized origin (want %q)", s.Issuer, n)
	}
	if len(s.Prev) != 0 && len(s.Prev) != 32 {
		return nil, fmt.Errorf("prev is %d bytes, want 32 (a leaf hash) or empty", len(s.Prev))
	}
	if err := emptyIsNull("prev", s.Prev); err != nil {
		return nil, err
	}
	if len(s.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d", len(s.Sig), ed25519.SignatureSize)
	}
	if s.DryRun && s.Log == "" {
		return nil, errors.New("a dry-run statement must name its log")
	}
	if s.Log != "" {
		if err := checkLogName(s.Log); err != nil {
			return nil, err
		}
	}
	if _, err := ParseBody(s.Kind, s.Body); err != nil {
		return nil, err
	}
	return &s, nil
}

// checkLogName refuses a log name that cannot be a checkpoint origin line.
func checkLogName(l string) error {
	if len(l) > 256 || !utf8.ValidString(l) {
		return fmt.Errorf("log %q is not a checkpoint origin", l)
	}
	for _, r := range l {
		if r <= ' ' || r == 0x7f || r == '+' {
			return fmt.Errorf("log %q is not a checkpoint origin (no spaces, controls or '+')", l)
		}
	}
	return nil
}

// Entry is one leaf of the log: a statement, the issuer's signature, and
// the log's timestamp (milliseconds since the Unix epoch, assigned by the
// log, never taken from the client). Entries of log-written kinds have an
// empty Issuer, Prev and Sig.
//
// Version 2 entries carry the Log their statement was signed for, and a
// registration carries the Control the log checked when the policy asks
// for one (see OriginControl); version 1 entries carry neither.
type Entry struct {
	V       int             `json:"v"`
	Kind    Kind            `json:"kind"`
	Time    int64           `json:"time"`
	Log     string          `json:"log,omitempty"`
	Issuer  string          `json:"issuer"`
	Prev    []byte          `json:"prev"`
	Body    json.RawMessage `json:"body"`
	Sig     []byte          `json:"sig"`
	Control *OriginControl  `json:"control,omitempty"`

	// parsed caches ParsedBody's result for the Kind and Body it was
	// computed from.
	parsed *parsedBody
}

type parsedBody struct {
	kind Kind
	raw  []byte
	v    any
}

// NewEntry makes the entry that records sub at log time timeMillis.
func NewEntry(sub *Submission, timeMillis int64) *Entry {
	return &Entry{V: Version, Kind: sub.Kind, Time: timeMillis, Log: sub.Log, Issuer: sub.Issuer,
		Prev: sub.Prev, Body: sub.Body, Sig: sub.Sig}
}

// NewLogEntry makes an entry of a log-written kind with the given body.
func NewLogEntry(kind Kind, timeMillis int64, body any) (*Entry, error) {
	if kind.IssuerSigned() {
		return nil, fmt.Errorf("entry kind %q must be signed by an issuer", kind)
	}
	b, err := canonicalJSON(body)
	if err != nil {
		return nil, err
	}
	return &Entry{V: Version, Kind: kind, Time: timeMillis, Body: b}, nil
}

// Submission returns the issuer's submission recorded by e.
func (e *Entry) Submission() *Submission {
	return &Submission{Statement: Statement{Kind: e.Kind, Log: e.Log, Issuer: e.Issuer, Prev: e.Prev, Body: e.Body}, Sig: e.Sig}
}

// Marshal returns the canonical encoding of e.
func (e *Entry) Marshal() ([]byte, error) {
	b, err := canonicalJSON(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("entry is %d bytes, over the limit of %d", len(b), MaxEntrySize)
	}
	return b, nil
}

// ParsedBody returns the typed body of e (see ParseBody). The result is
// remembered (as long as Kind and Body do not change) and shared between
// calls: do not modify it.
func (e *Entry) ParsedBody() (any, error) {
	if p := e.parsed; p != nil && p.kind == e.Kind && bytes.Equal(p.raw, e.Body) {
		return p.v, nil
	}
	v, err := ParseBody(e.Kind, e.Body)
	if err != nil {
		return nil, err
	}
	e.parsed = &parsedBody{kind: e.Kind, raw: bytes.Clone(e.Body), v: v}
	return v, nil
}

// VerifySignature checks e's issuer signature against the account key pub.
// It is Submission().Verify(pub) without parsing the body again.
func (e *Entry) VerifySignature(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("account key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if _, err := e.ParsedBody(); err != nil {
		return err
	}
	st := Statement{Kind: e.Kind, Log: e.Log, Issuer: e.Issuer, Prev: e.Prev, Body: e.Body}
	msg, err := st.message()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, e.Sig) {
		return fmt.Errorf("bad signature: %s statement for %q does not verify under the account key", e.Kind, e.Issuer)
	}
	return nil
}

// ParseEntry parses a leaf strictly and checks that it is canonical.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("entry is %d bytes, over the limit of %d", len(b), MaxEntrySize)
	}
	var e Entry
	if err := strictUnmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("malformed entry: %w", err)
	}
	if e.V != Version && e.V != VersionLegacy {
		return nil, fmt.Errorf("entry schema version %d, want %d (or %d for a legacy entry)", e.V, Version, VersionLegacy)
	}
	if err := e.checkVersioned(); err != nil {
		return nil, err
	}
	if !e.Kind.Known() {
		return nil, fmt.Errorf("unknown entry kind %q", e.Kind)
	}
	if e.Kind.IssuerSigned() {
		if e.Issuer == "" || len(e.Sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%s entry needs an issuer and a %d-byte signature", e.Kind, ed25519.SignatureSize)
		}
		if len(e.Prev) != 0 && len(e.Prev) != 32 {
			return nil, fmt.Errorf("prev is %d bytes, want 32 or empty", len(e.Prev))
		}
	} else if e.Issuer != "" || len(e.Prev) != 0 || len(e.Sig) != 0 {
		return nil, fmt.Errorf("%s entry is written by the log and must have no issuer, prev or sig", e.Kind)
	}
	if err := emptyIsNull("prev", e.Prev); err != nil {
		return nil, err
	}
	if err := emptyIsNull("sig", e.Sig); err != nil {
		return nil, err
	}
	if _, err := e.ParsedBody(); err != nil {
		return nil, err
	}
	re, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(re, b) {
		return nil, fmt.Errorf("entry: %w", ErrNotCanonical)
	}
	return &e, nil
}

// canonicalJSON encodes v compactly without HTML escaping.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encode appends '\n'.
}

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown
// members and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// emptyIsNull refuses an empty byte string encoded as "" rather than null:
// both decode to no bytes, and an entry must have one encoding.
func emptyIsNull(name string, b []byte) error {
	if b != nil && len(b) == 0 {
		return fmt.Errorf("%s is \"\"; an empty %s is encoded as null: %w", name, name, ErrNotCanonical)
	}
	return nil
}

// checkVersioned checks the members that depend on the entry's version:
// a legacy entry has no log and no control; a current issuer-signed entry
// names its log; only registrations carry a control, and it is
// well-formed.
func (e *Entry) checkVersioned() error {
	if e.V == VersionLegacy {
		if e.Log != "" || e.Control != nil {
			return fmt.Errorf("a version %d entry has no log or control member", VersionLegacy)
		}
		return nil
	}
	if !e.Kind.IssuerSigned() {
		if e.Log != "" || e.Control != nil {
			return fmt.Errorf("%s entry is written by the log and must have no log or control", e.Kind)
		}
		return nil
	}
	if e.Log == "" {
		return fmt.Errorf("version %d %s entry names no log", e.V, e.Kind)
	}
	if err := checkLogName(e.Log); err != nil {
		return err
	}
	if e.Control != nil {
		if e.Kind != KindRegistration {
			return fmt.Errorf("%s entry has a control member; only registrations do", e.Kind)
		}
		if err := e.Control.validate(); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	return nil
}
