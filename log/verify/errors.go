package verify

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
)

// Check names one of the checks a bundle or proof must pass.
type Check string

// The checks, in the order Verify runs them.
const (
	CheckFormat       Check = "format"
	CheckCheckpoint   Check = "checkpoint"
	CheckLogSignature Check = "log-signature"
	CheckCosignature  Check = "cosignature"
	CheckFreshness    Check = "freshness"
	CheckQuorum       Check = "quorum"
	CheckTime         Check = "time" // the entry's time against the cosignatures (docs/time.md)
	CheckSnapshot     Check = "snapshot"
	CheckEntry        Check = "entry" // tlog-proof files: the entry is the issuer's key commitment
	CheckInclusion    Check = "inclusion"
	CheckDigest       Check = "digest"
	CheckKeySet       Check = "keyset"
	CheckRollback     Check = "rollback"
	CheckConsistency  Check = "consistency"
)

// Error is a failed check.
type Error struct {
	Check Check
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s check failed: %v", e.Check, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// CheckOf returns the check named by err (an *Error anywhere in its chain),
// or "" if err is not a verification failure.
func CheckOf(err error) Check {
	var e *Error
	if errors.As(err, &e) {
		return e.Check
	}
	return ""
}

func fail(c Check, format string, args ...any) error {
	return &Error{Check: c, Err: fmt.Errorf(format, args...)}
}

func failErr(c Check, err error) error {
	return &Error{Check: c, Err: err}
}

// b64 is how hashes appear in error messages: standard base64, as in
// checkpoints.
func b64(h []byte) string { return base64.StdEncoding.EncodeToString(h) }

// ProofError rewrites the merkle library's root mismatch (whose message
// prints Go byte slices) with the roots in base64, as checkpoints write
// them; other errors are returned as they are.
func ProofError(err error) error {
	var m proof.RootMismatchError
	if errors.As(err, &m) {
		return fmt.Errorf("the proof leads to root %s, the checkpoint's root is %s", b64(m.CalculatedRoot), b64(m.ExpectedRoot))
	}
	return err
}
