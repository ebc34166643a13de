package verify

import (
	"encoding/json"
	"time"
)

// IssuerEntry is an issuer's key commitment entry proven by a verified
// tlog-proof.
type IssuerEntry struct {
	// Issuer is the issuer's origin.
	Issuer string
	// Index is the entry's index in the log.
	Index uint64
	// Time is the log's timestamp of the entry.
	Time time.Time
	// Entry is the entry, exactly the log leaf.
	Entry []byte
	// Commitment is the entry's body: the key commitment (schema
	// KeyCommitment JSON: "pst" and/or "privacy_pass", "emergency").
	Commitment json.RawMessage
	// Checkpoint is the verified checkpoint the proof leads to.
	Checkpoint *VerifiedCheckpoint
}

// VerifyIssuerProof verifies a C2SP tlog-proof as keycommit serves it for
// one issuer: the extra data is the issuer's key commitment entry (exact
// leaf bytes), which must be a schema version 2 (or 1) key_commitment for issuer,
// included at the proof's index in a checkpoint that passes the log
// signature, cosignature, freshness and quorum checks, and not dated
// later than the cosignatures of that checkpoint allow (the time check,
// docs/time.md). It does not check
// that the issuer made no later commitment: only a bundle (a snapshot of
// every issuer's latest commitment) proves that.
func (v *Verifier) VerifyIssuerProof(raw []byte, issuer string) (*IssuerEntry, error) {
	p, err := ParseTLogProof(raw)
	if err != nil {
		return nil, err
	}
	cp, err := v.verifyCheckpoint(p.Checkpoint, true)
	if err != nil {
		return nil, err
	}
	if p.Extra == nil {
		return nil, fail(CheckEntry, "tlog-proof has no extra line carrying the entry")
	}
	var e logEntry
	if err := strictJSON(p.Extra, &e); err != nil {
		return nil, fail(CheckEntry, "malformed entry: %v", err)
	}
	switch {
	case !knownVersion(e.V):
		return nil, fail(CheckEntry, "entry has schema version %d, want %d (or %d)", e.V, schemaVersion, legacyVersion)
	case e.Kind != "key_commitment":
		return nil, fail(CheckEntry, "entry is a %q, not a key_commitment", e.Kind)
	case e.Issuer != issuer:
		return nil, fail(CheckEntry, "entry is for issuer %q, want %q", e.Issuer, issuer)
	}
	if err := verifyInclusion(p.Extra, p.Index, p.Inclusion, &cp.Checkpoint); err != nil {
		return nil, err
	}
	if err := CheckEntryTime(p.Index, time.UnixMilli(e.Time), cp.Size, cp.CosignatureTimes(), v.cfg.Policy); err != nil {
		return nil, err
	}
	return &IssuerEntry{Issuer: e.Issuer, Index: p.Index, Time: time.UnixMilli(e.Time), Entry: p.Extra,
		Commitment: e.Body, Checkpoint: cp}, nil
}
