// Package verify is the user agent's verifier for keycommit: it checks a
// keys bundle (the complete key set, the snapshot entry that commits to it,
// the entry's inclusion proof and a checkpoint cosigned by witnesses) and
// C2SP tlog-proof files for a single issuer's entry.
//
// It is meant to be embedded in user agents, so it imports only the Go
// standard library, github.com/transparency-dev/merkle (RFC 6962 proofs),
// github.com/keycommit/keycommit/log/c2sp (the C2SP note, checkpoint,
// cosignature and tlog-proof formats),
// github.com/keycommit/keycommit/log/keysetroot (the key set root) and
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
//   - digest: the key set is the one the snapshot commits to: its key set
//     root (package log/keysetroot) is the snapshot's root, or, for a
//     snapshot of a log made before the root, its SHA-256 is the
//     snapshot's digest;
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
//
// # Several logs
//
// A user agent that trusts several logs (a Trust, read from a trust file)
// calls VerifyLogs, which uses an issuer's keys only as this rule allows
// (docs/multilog.md states it too, with the command and its output):
//
// Logs. Every log's bundle is fetched and verified (Verifier.Verify with
// the log's Config: its vkey, origin, witness policy and max-age). A log
// whose bundle could not be fetched is "unavailable", one that failed the
// freshness check "stale", one that failed any other check "invalid"; such
// a log carries nothing and counts for nothing. The others are "ok". A log
// carries an issuer when its verified key set has the issuer (a PST
// commitment, a Privacy Pass directory, or both); what it holds for the
// issuer is that pair, byte for byte as logged (the key set's canonical
// encoding), absent parts included.
//
// Issuers. For each issuer some ok log carries, with k the trust's
// min-logs (or the override):
//
//   - accepted: every ok log carrying the issuer holds the identical
//     commitment, and at least k logs do.
//   - refused (too few logs): they agree but fewer than k hold it. The
//     logs that hold it are named.
//   - divergence: two ok logs carrying the issuer hold different
//     commitments. The issuer is refused, naming each distinct commitment
//     with the logs holding it and its key ids, unless it is pending:
//   - pending (a rotation not yet everywhere): with a grace window G > 0,
//     each carrying log is asked for the issuer's latest commitment entry
//     (GET <log URL>/v1/issuer-proof?issuer=ORIGIN, verified with
//     Verifier.VerifyIssuerProof, whose commitment must be exactly what that
//     log's key set holds). Let N be the commitment of the latest such
//     entry and tN the earliest time any log logged N. The issuer is
//     pending, and N is used, when all of these hold:
//     (1) now - tN <= G;
//     (2) every carrying log that does not hold N (a lagging log) logged
//     its commitment strictly before tN;
//     (3) the logs holding N plus the lagging logs are at least k;
//     (4) in every log holding N, the issuer's key commitment before N
//     (found by following the entries' prev leaf hashes, at most
//     4 entries back, each entry proven included in the verified
//     checkpoint of the issuer proof) is byte for byte the commitment every
//     lagging log holds: the lagging logs hold the issuer's previous
//     commitment, the rotation just has not reached them.
//     Otherwise (a proof missing or not matching, two commitments logged at
//     the same latest time, G passed, or any condition failing) the
//     divergence is refused. G = 0 turns pending off.
//
// An issuer's decision never depends on another issuer's: divergence or
// too few logs for one issuer refuses that issuer only. The price of the
// grace window is stated in docs/multilog.md: for at most G after a
// rotation is first logged, its keys are used although fewer than k logs
// hold them (at least one does, and the others hold the commitment it
// replaced there).
package verify
