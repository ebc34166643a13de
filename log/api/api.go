// Package api defines the JSON bodies of the log's convenience endpoints
// (everything under /v1/), shared by log/server and log/client. Byte
// strings (hashes, entries) are standard base64, as encoding/json writes
// []byte. The C2SP tlog-tiles read path (/checkpoint, /tile/...) is not
// JSON and is not described here.
package api

import "github.com/keycommit/keycommit/policy"

// Paths of the endpoints.
const (
	PathCheckpoint       = "/checkpoint"
	PathInclusionProof   = "/v1/proof/inclusion"
	PathConsistencyProof = "/v1/proof/consistency"
	PathEntries          = "/v1/entries"
	PathIssuers          = "/v1/issuers/" // followed by the path-escaped origin
	PathKeys             = "/v1/keys.json"
	PathPolicy           = "/v1/policy"      // Policy: the parameters in force and the requirements for inclusion
	PathPolicyPage       = "/v1/policy.html" // the same, as a page for people
	PathSubmit           = "/v1/submit"
	PathCheck            = "/v1/check"
	PathMetrics          = "/metrics"
)

// HeaderSnapshotIndex carries, on /v1/keys.json, the index of the
// snapshot entry whose digest is the SHA-256 of the body.
const HeaderSnapshotIndex = "Keycommit-Snapshot-Index"

// MaxEntriesPerRequest bounds GET /v1/entries.
const MaxEntriesPerRequest = 1000

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	// Rule and Reason are set when the policy refused a submission.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Policy answers GET /v1/policy: the policy parameters in force and the
// requirements for inclusion generated from them (see policy.Published).
type Policy = policy.Published

// InclusionProof answers GET /v1/proof/inclusion?index=I[&size=N] or
// ?hash=<base64 leaf hash>[&size=N]. When size is omitted it is the
// latest checkpoint's, and Checkpoint holds that checkpoint.
type InclusionProof struct {
	Index      uint64   `json:"index"`
	TreeSize   uint64   `json:"tree_size"`
	LeafHash   []byte   `json:"leaf_hash"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint,omitempty"`
}

// ConsistencyProof answers GET /v1/proof/consistency?old=M&new=N.
type ConsistencyProof struct {
	Old   uint64   `json:"old"`
	New   uint64   `json:"new"`
	Proof [][]byte `json:"proof"`
}

// Entry is one logged entry.
type Entry struct {
	Index    uint64 `json:"index"`
	LeafHash []byte `json:"leaf_hash"`
	// Data is the entry's exact canonical bytes (the leaf).
	Data []byte `json:"data"`
}

// Entries answers GET /v1/entries?start=S&end=E: entries S to E-1, at
// most MaxEntriesPerRequest (a larger range is 400, an end beyond the
// tree 404). The cursor is start: while E is below the tree size the
// answer has Link: </v1/entries?start=E&end=…>; rel="next", a page of the
// same size (or to the tree's end).
type Entries struct {
	Entries []Entry `json:"entries"`
}

// MaxIssuerEntriesPage bounds the page of GET /v1/issuers/<origin>: at
// most this many entry indexes per answer (DefaultIssuerEntriesPage
// without ?limit).
const (
	MaxIssuerEntriesPage     = 1000
	DefaultIssuerEntriesPage = 100
)

// Issuer answers GET /v1/issuers/<origin>?after=<index>&limit=<n>: the
// policy's view of the issuer and one page of the indexes of its entries,
// in increasing order, those after index after (from the first without
// it), at most limit (1 to MaxIssuerEntriesPage, default
// DefaultIssuerEntriesPage). When more follow, the answer has a header
// Link: </v1/issuers/<origin>?after=<last index of this page>&limit=<n>>;
// rel="next"; the last page has none.
type Issuer struct {
	Status  *policy.IssuerStatus `json:"status"`
	Entries []uint64             `json:"entries"`
}

// SubmitResult answers POST /v1/submit (whose body is a
// schema.Submission): the logged entry, its inclusion proof and the
// signed checkpoint the proof is for.
type SubmitResult struct {
	Index          uint64   `json:"index"`
	TreeSize       uint64   `json:"tree_size"`
	LeafHash       []byte   `json:"leaf_hash"`
	Entry          []byte   `json:"entry"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	Checkpoint     string   `json:"checkpoint"`
}

// CheckResult answers POST /v1/check: the policy's decision on the
// submission as if it were appended now. Nothing is logged.
type CheckResult struct {
	Accept bool   `json:"accept"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}
