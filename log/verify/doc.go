// Package verify is the user agent's verifier for keycommit: it checks a
// keys bundle (the complete key set, the snapshot entry that commits to it,
// the entry's inclusion proof and a checkpoint cosigned by witnesses) and
// C2SP tlog-proof files for a single issuer's entry.
//
// It is meant to be embedded in user agents, so it imports only the Go
// standard library, github.com/transparency-dev/merkle (RFC 6962 proofs),
// github.com/keycommit/keycommit/log/c2sp (the C2SP note, checkpoint,
// cosignature and tlog-proof formats) and
// github.com/keycommit/keycommit/witness/quorum (the witness policy parser).
// Signatures are verified by log/c2sp with crypto/ed25519, and ML-DSA-44
// witness cosignatures by log/c2sp/mldsa (through witness/quorum) with
// github.com/cloudflare/circl's pure-Go ML-DSA-44: user agents must be able
// to count post-quantum witnesses, so that is the one module verification
// adds besides merkle (docs/DEVELOPING.md).
//
// A bundle is accepted only when every check passes:
//
//   - format: the bundle parses, in its one encoding (docs/bundle.md);
//   - checkpoint: the checkpoint is a C2SP signed note with a C2SP
//     tlog-checkpoint body for the expected origin;
//   - log-signature: the log's Ed25519 signature on it verifies;
//   - cosignature: every cosignature from a witness of the policy verifies
//     (C2SP tlog-cosignature: Ed25519 type 0x04 or ML-DSA-44 type 0x06);
//   - freshness and quorum: the witnesses whose cosignatures are no older
//     than the maximum age (and not from the future beyond the allowed
//     skew) satisfy the policy's quorum;
//   - time: the snapshot entry is not dated later than the cosignatures
//     of the checkpoint plus TimeSkew, for a set of witnesses that meets
//     the quorum (CheckEntryTime; docs/time.md);
//   - snapshot: the entry is a schema version 2 (or legacy 1) snapshot written by the log;
//   - inclusion: the entry is in the checkpoint's tree at the bundle's index;
//   - digest: the key set hashes (SHA-256) to the snapshot's digest;
//   - keyset: the key set is in its canonical encoding and has as many
//     issuer commitments as the snapshot says (run by Verified.KeySet, the
//     only way to the typed keys, and by Verify when given a previous
//     bundle);
//   - rollback and consistency: given the previous verified bundle, the new
//     checkpoint is not smaller, is consistent with the old one (same root
//     at the same size, a valid consistency proof otherwise), and its
//     snapshot is not older.
//
// Every failure is an *Error whose Check names the check that failed.
package verify
