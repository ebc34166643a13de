package server

import (
	"context"
	"errors"
)

// ForwardedHeader marks a submission that one frontend of a log forwards
// to another, the log's writer (log/trillianstore): a frontend that gets
// one while it is not the writer answers 503 (ErrUnavailable) instead of
// forwarding it again, so a submission never travels in circles while
// the writer changes.
const ForwardedHeader = "Keycommit-Forwarded"

type forwardedKey struct{}

// Forwarded reports whether the submission being handled under ctx came
// with ForwardedHeader.
func Forwarded(ctx context.Context) bool {
	v, _ := ctx.Value(forwardedKey{}).(bool)
	return v
}

// ErrUnavailable, wrapped in a Log's Submit error, answers 503 with
// Retry-After: 1 and the error's text (which must say why and carry no
// secrets): nothing was logged, and the submitter should retry.
var ErrUnavailable = errors.New("the log can't take this submission here now; retry")
