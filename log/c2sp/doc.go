// Package c2sp reads and writes the C2SP transparency-log formats that
// keycommit speaks, in one place, with the Go standard library only:
//
//   - signed notes (c2sp.org/signed-note): SplitNote, Open, Sign, Note;
//     vkeys and key hashes (ParseVKey, FormatVKey, KeyHash); signers and
//     verifiers keyed by signature type, Ed25519 (0x01) and
//     cosignature/v1 (0x04) built in, others added with RegisterVerifier
//     (as an ML-DSA-44 cosignature verifier, type 0x06, would be);
//   - checkpoint bodies (c2sp.org/tlog-checkpoint): Checkpoint,
//     ParseCheckpoint, OpenCheckpoint;
//   - cosignatures (c2sp.org/tlog-cosignature): CosignedMessage,
//     CosignatureTimestamp and the rule that a timestamp never exceeds
//     2^63-1;
//   - add-checkpoint requests (c2sp.org/tlog-witness): AddCheckpointRequest;
//   - offline proofs (c2sp.org/tlog-proof): Proof;
//   - entry bundles (c2sp.org/tlog-tiles): ParseEntryBundle,
//     AppendEntryBundle.
//
// Every parser is strict and bounded: one accepted encoding per value
// (canonical base64, decimals without leading zeros), sizes and line counts
// limited, and an error that names what was wrong. Parsers never panic on
// any input (each has a fuzz test) and what Marshal writes, Parse reads
// back unchanged.
//
// The package must import nothing outside the standard library (a test
// checks), so that log/verify can embed it in user agents.
package c2sp
