// Package client talks to a keycommit log over HTTP: the C2SP tlog-tiles
// read path and the JSON endpoints. It verifies what it is handed: every
// checkpoint against the log key, every proof against a checkpoint, every
// submission result against the submission.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// Client is a log client. Its methods are safe for concurrent use.
type Client struct {
	base     string
	http     *http.Client
	verifier c2sp.Verifier
	lastCP   atomic.Pointer[verifiedCP]
}

// New returns a client for the log served under baseURL (the prefix of
// /checkpoint), whose checkpoints must verify under vkey (a C2SP vkey).
// httpClient may be nil (http.DefaultClient).
func New(baseURL, vkey string, httpClient *http.Client) (*Client, error) {
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("log URL %q is not an http(s) URL", baseURL)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: httpClient, verifier: v}, nil
}

// Verifier returns the log key's verifier.
func (c *Client) Verifier() c2sp.Verifier { return c.verifier }

// HTTPError is a non-2xx answer from the log.
type HTTPError struct {
	StatusCode int
	// Message is the log's error message (api.Error.Error) or body.
	Message string
	// Rule and Reason are set for a policy refusal of a submission.
	Rule, Reason string

	retryAfter string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("log answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Reject returns the policy refusal carried by err, if any.
func Reject(err error) (*policy.RejectError, bool) {
	var he *HTTPError
	if errors.As(err, &he) && he.Rule != "" {
		return &policy.RejectError{Rule: he.Rule, Reason: he.Reason}, true
	}
	return nil, false
}

// maxResponse bounds the bodies the client reads (an entry bundle of 256
// maximal entries is about 16 MiB).
const maxResponse = 17 << 20

// maxRetries is how many times a request answered 429 Too Many Requests
// (refused before the log read it, so nothing was done) is sent again,
// after the Retry-After the log asked for (at most maxRetryWait).
const (
	maxRetries   = 8
	maxRetryWait = 10 * time.Second
)

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, http.Header, error) {
	return c.doHeader(ctx, method, path, body, nil)
}

// doHeader is do with extra request headers.
func (c *Client) doHeader(ctx context.Context, method, path string, body []byte, hdr http.Header) ([]byte, http.Header, error) {
	for attempt := 0; ; attempt++ {
		b, h, err := c.doOnce(ctx, method, path, body, hdr)
		var he *HTTPError
		if attempt == maxRetries || !errors.As(err, &he) || he.StatusCode != http.StatusTooManyRequests {
			return b, h, err
		}
		wait := time.Second
		if n, perr := strconv.Atoi(he.retryAfter); perr == nil && n >= 0 {
			wait = min(time.Duration(n)*time.Second, maxRetryWait)
		}
		// Jitter, so that refused clients do not come back together.
		wait += time.Duration(rand.Int64N(int64(wait/2) + 1))
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(wait):
		}
	}
}

func (c *Client) doOnce(ctx context.Context, method, path string, body []byte, hdr http.Header) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read response to %s %s: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, nil, fmt.Errorf("response to %s %s is over %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		he := &HTTPError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(b)), retryAfter: resp.Header.Get("Retry-After")}
		var ae api.Error
		if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
			he.Message, he.Rule, he.Reason = ae.Error, ae.Rule, ae.Reason
		}
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, he)
	}
	return b, resp.Header, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	b, _, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("couldn't parse response to GET %s: %w", path, err)
	}
	return nil
}

// Checkpoint fetches and verifies the latest checkpoint. It returns the
// parsed checkpoint and the note as served (with any witness
// cosignatures, which the caller verifies against its witness policy).
func (c *Client) Checkpoint(ctx context.Context) (checkpoint.Checkpoint, []byte, error) {
	b, _, err := c.do(ctx, http.MethodGet, api.PathCheckpoint, nil)
	if err != nil {
		return checkpoint.Checkpoint{}, nil, err
	}
	cp, _, err := checkpoint.Open(b, c.verifier)
	if err != nil {
		return checkpoint.Checkpoint{}, nil, err
	}
	return cp, b, nil
}

// OpenCheckpoint verifies a checkpoint note (e.g. one returned with a
// submission) under the log key. The last note it verified is kept, so
// that the answers of one batch, which share a checkpoint, cost one
// signature verification.
func (c *Client) OpenCheckpoint(signed []byte) (checkpoint.Checkpoint, error) {
	if last := c.lastCP.Load(); last != nil && bytes.Equal(last.note, signed) {
		return last.cp, nil
	}
	cp, _, err := checkpoint.Open(signed, c.verifier)
	if err == nil {
		c.lastCP.Store(&verifiedCP{note: bytes.Clone(signed), cp: cp})
	}
	return cp, err
}

// verifiedCP is a checkpoint note that verified, and what it says.
type verifiedCP struct {
	note []byte
	cp   checkpoint.Checkpoint
}

// Tile fetches the raw data of tile t (hash tile, or entry bundle when
// t.L == tiles.EntriesLevel). It checks only its length for hash tiles;
// use TileReader with tlog.TileHashReader to authenticate tiles.
func (c *Client) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	b, _, err := c.do(ctx, http.MethodGet, "/"+tiles.Path(t), nil)
	if err != nil {
		return nil, err
	}
	if t.L != tiles.EntriesLevel && len(b) != t.W*tlog.HashSize {
		return nil, fmt.Errorf("tile %s has %d bytes, want %d", tiles.Path(t), len(b), t.W*tlog.HashSize)
	}
	return b, nil
}

// EntryBundle fetches entry bundle t and splits it into entries. It
// checks the bundle's framing and count, not the entries (check their
// leaf hashes against the tree).
func (c *Client) EntryBundle(ctx context.Context, t tlog.Tile) ([][]byte, error) {
	t.L = tiles.EntriesLevel
	b, err := c.Tile(ctx, t)
	if err != nil {
		return nil, err
	}
	return c2sp.ParseEntryBundle(b, t.W)
}

// TileReader returns a tlog.TileReader over the log's tiles, for
// tlog.TileHashReader (which authenticates every tile against a tree).
func (c *Client) TileReader(ctx context.Context) tlog.TileReader { return tileReader{ctx, c} }

type tileReader struct {
	ctx context.Context
	c   *Client
}

func (r tileReader) Height() int { return tiles.Height }

func (r tileReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		d, err := r.c.Tile(r.ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// VerifyInclusion checks that leafHash is at index in the tree of cp.
func VerifyInclusion(cp checkpoint.Checkpoint, index uint64, leafHash []byte, p [][]byte) error {
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash, p, cp.Hash[:]); err != nil {
		err = verify.ProofError(err)
		return fmt.Errorf("inclusion proof of entry %d in tree of size %d doesn't verify: %w", index, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of newer extends the tree of
// older.
func VerifyConsistency(older, newer checkpoint.Checkpoint, p [][]byte) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("checkpoints of different logs (%q, %q)", older.Origin, newer.Origin)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Hash[:], newer.Hash[:]); err != nil {
		err = verify.ProofError(err)
		return fmt.Errorf("consistency proof from %d to %d doesn't verify: %w", older.Size, newer.Size, err)
	}
	return nil
}

// InclusionProof fetches the proof that entry index is in the tree of cp
// and verifies it; it returns the entry's leaf hash.
func (c *Client) InclusionProof(ctx context.Context, cp checkpoint.Checkpoint, index uint64) ([]byte, error) {
	var res api.InclusionProof
	if err := c.getJSON(ctx, api.PathInclusionProof+"?index="+strconv.FormatUint(index, 10)+"&size="+strconv.FormatUint(cp.Size, 10), &res); err != nil {
		return nil, err
	}
	if res.Index != index || res.TreeSize != cp.Size {
		return nil, fmt.Errorf("asked for a proof of %d in %d, got %d in %d", index, cp.Size, res.Index, res.TreeSize)
	}
	if err := VerifyInclusion(cp, index, res.LeafHash, res.Proof); err != nil {
		return nil, err
	}
	return res.LeafHash, nil
}

// InclusionProofByHash fetches the proof that the entry with leafHash is
// in the tree of cp, verifies it and returns the entry's index.
func (c *Client) InclusionProofByHash(ctx context.Context, cp checkpoint.Checkpoint, leafHash []byte) (uint64, error) {
	var res api.InclusionProof
	q := url.Values{"hash": {encodeB64(leafHash)}, "size": {strconv.FormatUint(cp.Size, 10)}}
	if err := c.getJSON(ctx, api.PathInclusionProof+"?"+q.Encode(), &res); err != nil {
		return 0, err
	}
	if !bytes.Equal(res.LeafHash, leafHash) || res.TreeSize != cp.Size {
		return 0, fmt.Errorf("asked for a proof of a leaf hash in %d, got another leaf or size", cp.Size)
	}
	if err := VerifyInclusion(cp, res.Index, leafHash, res.Proof); err != nil {
		return 0, err
	}
	return res.Index, nil
}

// ConsistencyProof fetches and verifies the proof that newer extends
// older.
func (c *Client) ConsistencyProof(ctx context.Context, older, newer checkpoint.Checkpoint) error {
	var res api.ConsistencyProof
	if err := c.getJSON(ctx, api.PathConsistencyProof+"?old="+strconv.FormatUint(older.Size, 10)+"&new="+strconv.FormatUint(newer.Size, 10), &res); err != nil {
		return err
	}
	if res.Old != older.Size || res.New != newer.Size {
		return fmt.Errorf("asked for consistency %d->%d, got %d->%d", older.Size, newer.Size, res.Old, res.New)
	}
	return VerifyConsistency(older, newer, res.Proof)
}

// Entries fetches entries [start, end) (at most api.MaxEntriesPerRequest)
// and checks that each leaf hash is its data's. It does not prove them in
// a tree.
func (c *Client) Entries(ctx context.Context, start, end uint64) ([]api.Entry, error) {
	var res api.Entries
	if err := c.getJSON(ctx, api.PathEntries+"?start="+strconv.FormatUint(start, 10)+"&end="+strconv.FormatUint(end, 10), &res); err != nil {
		return nil, err
	}
	if uint64(len(res.Entries)) != end-start {
		return nil, fmt.Errorf("asked for %d entries, got %d", end-start, len(res.Entries))
	}
	for i, e := range res.Entries {
		h := tiles.LeafHash(e.Data)
		if e.Index != start+uint64(i) || !bytes.Equal(h[:], e.LeafHash) {
			return nil, fmt.Errorf("entry %d: wrong index or leaf hash", start+uint64(i))
		}
	}
	return res.Entries, nil
}

// maxIssuerEntries bounds the history Issuer collects from a log.
const maxIssuerEntries = 1 << 20

// Issuer fetches the log's view of the issuer origin: the status of the
// first page and every entry index, page after page (api.Issuer). Each
// page must follow the one before in increasing order.
func (c *Client) Issuer(ctx context.Context, origin string) (*api.Issuer, error) {
	path := api.PathIssuers + url.PathEscape(origin) + "?limit=" + strconv.Itoa(api.MaxIssuerEntriesPage)
	var out *api.Issuer
	for {
		b, h, err := c.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		var res api.Issuer
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("couldn't parse response to GET %s: %w", path, err)
		}
		if res.Status == nil {
			return nil, errors.New("issuer response has no status")
		}
		if out == nil {
			out = &api.Issuer{Status: res.Status, Entries: []uint64{}}
		}
		for _, i := range res.Entries {
			if n := len(out.Entries); n > 0 && i <= out.Entries[n-1] {
				return nil, fmt.Errorf("issuer history of %s: entry %d after %d", origin, i, out.Entries[n-1])
			}
			out.Entries = append(out.Entries, i)
		}
		if len(out.Entries) > maxIssuerEntries {
			return nil, fmt.Errorf("issuer history of %s has over %d entries", origin, maxIssuerEntries)
		}
		next := httpguard.NextPage(h)
		if next == "" {
			return out, nil
		}
		if n := len(out.Entries); n == 0 || next != strconv.FormatUint(out.Entries[n-1], 10) {
			return nil, fmt.Errorf("issuer history of %s: the next page does not start after this page's last entry", origin)
		}
		path = api.PathIssuers + url.PathEscape(origin) + "?after=" + next + "&limit=" + strconv.Itoa(api.MaxIssuerEntriesPage)
	}
}

// KeySet fetches the key set of the latest snapshot: its canonical bytes
// and the snapshot's index. Prove the snapshot entry's inclusion and
// compare its digest with SHA-256 of the bytes before trusting them
// (log/verify does).
func (c *Client) KeySet(ctx context.Context) ([]byte, uint64, error) {
	b, h, err := c.do(ctx, http.MethodGet, api.PathKeys, nil)
	if err != nil {
		return nil, 0, err
	}
	idx, err := strconv.ParseUint(h.Get(api.HeaderSnapshotIndex), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("key set response has no valid %s header", api.HeaderSnapshotIndex)
	}
	if _, err := schema.ParseKeySet(b); err != nil {
		return nil, 0, err
	}
	return b, idx, nil
}

// Policy fetches the policy parameters in force (see PolicyDocument).
func (c *Client) Policy(ctx context.Context) (*schema.PolicyParams, error) {
	d, err := c.PolicyDocument(ctx)
	if err != nil {
		return nil, err
	}
	return &d.PolicyParams, nil
}

// PolicyDocument fetches GET /v1/policy: the policy parameters in force
// and the log's requirements for inclusion (none from a log older than
// them). Every parameter must be present (a missing one is an error, not
// a zero); members this client does not know are ignored, so a log may
// add members without breaking it.
func (c *Client) PolicyDocument(ctx context.Context) (*api.Policy, error) {
	b, _, err := c.do(ctx, http.MethodGet, api.PathPolicy, nil)
	if err != nil {
		return nil, err
	}
	var d api.Policy
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("couldn't parse response to GET %s: %w", api.PathPolicy, err)
	}
	if err := json.Unmarshal(b, &members); err != nil {
		return nil, fmt.Errorf("couldn't parse response to GET %s: %w", api.PathPolicy, err)
	}
	for _, name := range policyParamNames {
		if v, ok := members[name]; !ok || string(v) == "null" {
			return nil, fmt.Errorf("response to GET %s has no %s", api.PathPolicy, name)
		}
	}
	return &d, nil
}

// policyParamNames are the JSON members of schema.PolicyParams.
var policyParamNames = func() []string {
	b, err := json.Marshal(schema.PolicyParams{})
	if err != nil {
		panic(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

// Submitted is a verified submission result.
type Submitted struct {
	api.SubmitResult
	// Parsed is the checkpoint the entry is proven in.
	Parsed checkpoint.Checkpoint
	// Logged is the parsed entry.
	Logged *schema.Entry
}

// Submit submits sub. A policy refusal is an *HTTPError with Rule set
// (see Reject). On success it verifies that the logged entry records sub,
// that its leaf hash is the entry's, that the checkpoint is signed by the
// log and that the inclusion proof verifies against it.
func (c *Client) Submit(ctx context.Context, sub *schema.Submission) (*Submitted, error) {
	body, err := marshal(sub)
	if err != nil {
		return nil, err
	}
	b, _, err := c.do(ctx, http.MethodPost, api.PathSubmit, body)
	if err != nil {
		return nil, err
	}
	var res api.SubmitResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("couldn't parse submit response: %w", err)
	}
	return c.verifySubmitted(sub, &res, nil)
}

// verifySubmitted checks res, the log's answer to sub, as Submit does.
// cp, when not nil, is the already verified checkpoint res.Checkpoint.
func (c *Client) verifySubmitted(sub *schema.Submission, res *api.SubmitResult, cp *checkpoint.Checkpoint) (*Submitted, error) {
	e, err := schema.ParseEntry(res.Entry)
	if err != nil {
		return nil, fmt.Errorf("log returned a bad entry: %w", err)
	}
	if e.Kind != sub.Kind || e.Issuer != sub.Issuer || !bytes.Equal(e.Prev, sub.Prev) || !bytes.Equal(e.Body, sub.Body) || !bytes.Equal(e.Sig, sub.Sig) {
		return nil, errors.New("log returned an entry that does not record the submission")
	}
	h := tiles.LeafHash(res.Entry)
	if !bytes.Equal(h[:], res.LeafHash) {
		return nil, errors.New("log returned a leaf hash that is not the entry's")
	}
	if cp == nil {
		c, err := c.OpenCheckpoint([]byte(res.Checkpoint))
		if err != nil {
			return nil, err
		}
		cp = &c
	}
	if cp.Size != res.TreeSize {
		return nil, fmt.Errorf("checkpoint size %d, result says %d", cp.Size, res.TreeSize)
	}
	if err := VerifyInclusion(*cp, res.Index, h[:], res.InclusionProof); err != nil {
		return nil, err
	}
	return &Submitted{SubmitResult: *res, Parsed: *cp, Logged: e}, nil
}

// Forwarding is a submission ready to be forwarded (SubmitForwarded):
// the submission and its encoding.
type Forwarding struct {
	Sub  *schema.Submission
	body []byte
}

// NewForwarding encodes sub for SubmitForwarded.
func NewForwarding(sub *schema.Submission) (*Forwarding, error) {
	body, err := marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the submission: %w", err)
	}
	return &Forwarding{Sub: sub, body: body}, nil
}

// Size is the size of the encoded submission.
func (f *Forwarding) Size() int { return len(f.body) }

// ForwardAnswer is the log's verified answer to one forwarded
// submission: Submitted, or Err, the error Submit would have returned
// for it (an *HTTPError, with Rule set for a policy refusal; see
// Reject), or the reason the answer does not verify.
type ForwardAnswer struct {
	Submitted *Submitted
	Err       error
}

// SubmitForwarded forwards subs (at most api.MaxForwardSubmissions, in at
// most api.MaxForwardBytes) to the log's writer in one request to its
// internal endpoint api.PathForward, which takes only requests that carry
// the forwarding header (log/server.ForwardedHeader): the http.Client the
// Client was made with must set it. key, when not nil, is the key the
// frontends share: the batch carries its MAC (api.HeaderForwardMAC),
// which a writer that has a key requires. It returns an answer per submission,
// in order, each verified as Submit verifies its answer, each distinct
// checkpoint's signature once. An error means no submission got an
// answer (they may still be logged).
func (c *Client) SubmitForwarded(ctx context.Context, key []byte, subs []*Forwarding) ([]ForwardAnswer, error) {
	batch := api.ForwardBatch{Submissions: make([]json.RawMessage, len(subs))}
	for i, f := range subs {
		batch.Submissions[i] = f.body
	}
	body, err := marshal(&batch)
	if err != nil {
		return nil, err
	}
	var hdr http.Header
	if key != nil {
		hdr = http.Header{api.HeaderForwardMAC: {httpguard.ForwardMAC(key, body)}}
	}
	b, _, err := c.doHeader(ctx, http.MethodPost, api.PathForward, body, hdr)
	if err != nil {
		return nil, err
	}
	var res api.ForwardResults
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("couldn't parse the answer to a forwarded batch: %w", err)
	}
	if len(res.Results) != len(subs) {
		return nil, fmt.Errorf("the answer to a forwarded batch of %d submissions has %d results", len(subs), len(res.Results))
	}
	cps := make([]*checkpoint.Checkpoint, len(res.Checkpoints))
	cpErrs := make([]error, len(res.Checkpoints))
	out := make([]ForwardAnswer, len(subs))
	for i, r := range res.Results {
		if r.Status != http.StatusOK {
			he := &HTTPError{StatusCode: r.Status, retryAfter: r.RetryAfter}
			if r.Error != nil {
				he.Message, he.Rule, he.Reason = r.Error.Error, r.Error.Rule, r.Error.Reason
			}
			if r.Status/100 == 2 || r.Status < 100 || r.Status > 599 {
				out[i].Err = fmt.Errorf("forwarded submission %d: the log answered status %d", i, r.Status)
				continue
			}
			out[i].Err = fmt.Errorf("POST %s (forwarded): %w", api.PathSubmit, he)
			continue
		}
		if r.Checkpoint < 0 || r.Checkpoint >= len(cps) {
			out[i].Err = fmt.Errorf("forwarded submission %d: the answer names checkpoint %d of %d", i, r.Checkpoint, len(cps))
			continue
		}
		if cps[r.Checkpoint] == nil && cpErrs[r.Checkpoint] == nil {
			cp, err := c.OpenCheckpoint([]byte(res.Checkpoints[r.Checkpoint]))
			if err != nil {
				cpErrs[r.Checkpoint] = err
			} else {
				cps[r.Checkpoint] = &cp
			}
		}
		if err := cpErrs[r.Checkpoint]; err != nil {
			out[i].Err = err
			continue
		}
		sr := &api.SubmitResult{Index: r.Index, TreeSize: r.TreeSize, LeafHash: r.LeafHash, Entry: r.Entry,
			InclusionProof: r.InclusionProof, Checkpoint: res.Checkpoints[r.Checkpoint]}
		out[i].Submitted, out[i].Err = c.verifySubmitted(subs[i].Sub, sr, cps[r.Checkpoint])
	}
	return out, nil
}

// Check asks the log's policy about sub without logging it.
func (c *Client) Check(ctx context.Context, sub *schema.Submission) (*api.CheckResult, error) {
	body, err := marshal(sub)
	if err != nil {
		return nil, err
	}
	b, _, err := c.do(ctx, http.MethodPost, api.PathCheck, body)
	if err != nil {
		return nil, err
	}
	var res api.CheckResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("couldn't parse check response: %w", err)
	}
	return &res, nil
}
