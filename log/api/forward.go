package api

import "encoding/json"

// PathForward is the internal endpoint at which a frontend of a log that
// is not its writer (log/trillianstore) forwards several submissions to
// the writer in one request: POST, body ForwardBatch, answer
// ForwardResults. The writer takes only requests that carry the
// forwarding header (log/server.ForwardedHeader); it is not for
// submitters, who use PathSubmit.
const PathForward = "/v1/internal/forward"

// Bounds of one forwarded batch: at most MaxForwardSubmissions
// submissions in a body of at most MaxForwardBytes (which holds at least
// 16 submissions of the largest size).
const (
	MaxForwardSubmissions = 256
	MaxForwardBytes       = 1 << 20
)

// HeaderForwardMAC authenticates a forwarded batch: the MAC of its body
// under the key the frontends of the log share (httpguard.ForwardMAC).
// A writer that has such a key takes only batches that carry it.
const HeaderForwardMAC = "Keycommit-Forward-MAC"

// ForwardBatch is the body of POST PathForward: submissions, each the
// body a submitter would POST to PathSubmit.
type ForwardBatch struct {
	Submissions []json.RawMessage `json:"submissions"`
}

// ForwardResults answers POST PathForward: one result per submission, in
// the order of the batch, and the signed checkpoints they are proven in
// (each distinct checkpoint once).
type ForwardResults struct {
	Checkpoints []string          `json:"checkpoints"`
	Results     []ForwardedResult `json:"results"`
}

// ForwardedResult is what POST PathSubmit would have answered for one
// submission of a forwarded batch: on success Status is 200 and the
// SubmitResult members are set, Checkpoint being an index into
// ForwardResults.Checkpoints; otherwise Status is the HTTP status, Error
// the error body and RetryAfter the Retry-After header, if any.
type ForwardedResult struct {
	Status         int      `json:"status"`
	Index          uint64   `json:"index,omitempty"`
	TreeSize       uint64   `json:"tree_size,omitempty"`
	LeafHash       []byte   `json:"leaf_hash,omitempty"`
	Entry          []byte   `json:"entry,omitempty"`
	InclusionProof [][]byte `json:"inclusion_proof,omitempty"`
	Checkpoint     int      `json:"checkpoint,omitempty"`
	Error          *Error   `json:"error,omitempty"`
	RetryAfter     string   `json:"retry_after,omitempty"`
}
