package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/schema"
)

// ForwardedHeader marks a submission that one frontend of a log forwards
// to another, the log's writer (log/trillianstore): a frontend that gets
// one while it is not the writer answers 503 (ErrUnavailable) instead of
// forwarding it again, so a submission never travels in circles while
// the writer changes. POST api.PathForward takes only requests that
// carry it.
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

// ForwardKeyer is implemented by a Log whose frontends share a key to
// authenticate the batches they forward to the writer
// (trillianstore.Frontend). When ForwardKey returns a key, POST
// api.PathForward takes only batches that carry its MAC
// (api.HeaderForwardMAC, httpguard.ForwardMAC), and decodes their
// submissions as encoded by the forwarder, without parsing them strictly
// again: the forwarder, the same code holding the same key, parsed each
// when its submitter sent it (POST /v1/submit), so the writer treats them
// as submitted to it directly.
type ForwardKeyer interface {
	ForwardKey() []byte
}

// ForwardTimeout bounds the work on one forwarded batch (POST
// api.PathForward): submissions not answered by then get the error their
// submitter's timeout would give (they may still be logged).
const ForwardTimeout = 30 * time.Second

// forwardInFlight bounds the forwarded batches worked on at once, and
// forwardBudget the bytes of their bodies.
const (
	forwardInFlight = 64
	forwardBudget   = 16 * api.MaxForwardBytes
)

// forward serves POST api.PathForward: every submission of the batch is
// submitted to the Log at once, as forwarded (so they join the writer's
// batches together), and answered with what POST /v1/submit would have
// answered it; one that is refused or malformed gets its own error and
// does not affect the others.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) error {
	if err := s.needLog(); err != nil {
		return err
	}
	if r.Header.Get(ForwardedHeader) == "" {
		return errorf(http.StatusForbidden, "%s takes only batches a frontend of this log forwards (with header %s); submit to %s", api.PathForward, ForwardedHeader, api.PathSubmit)
	}
	body, err := httpguard.ReadBody(w, r, api.MaxForwardBytes)
	if errors.Is(err, httpguard.ErrTooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "forwarded batch is over the limit of %d bytes", api.MaxForwardBytes)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "couldn't read request body: %v", err)
	}
	var key []byte
	if fk, ok := s.cfg.Log.(ForwardKeyer); ok {
		key = fk.ForwardKey()
	}
	if key != nil && !httpguard.ForwardMACValid(key, body, r.Header.Get(api.HeaderForwardMAC)) {
		return errorf(http.StatusForbidden, "forwarded batch does not carry the MAC of this log's frontends (header %s)", api.HeaderForwardMAC)
	}
	var batch api.ForwardBatch
	if err := json.Unmarshal(body, &batch); err != nil {
		return errorf(http.StatusBadRequest, "forwarded batch is not JSON of the form {\"submissions\": [...]}: %v", err)
	}
	if n := len(batch.Submissions); n == 0 || n > api.MaxForwardSubmissions {
		return errorf(http.StatusBadRequest, "forwarded batch has %d submissions; it must have 1 to %d", n, api.MaxForwardSubmissions)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), forwardedKey{}, true), ForwardTimeout)
	defer cancel()
	out := &api.ForwardResults{Results: make([]api.ForwardedResult, len(batch.Submissions))}
	cps := make([][]byte, len(batch.Submissions))
	var wg sync.WaitGroup
	for i, raw := range batch.Submissions {
		res := &out.Results[i]
		if int64(len(raw)) > s.cfg.MaxBodyBytes {
			s.forwardedError(res, r, errorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes (the largest submission whose entry fits in %d bytes)", s.cfg.MaxBodyBytes, schema.MaxEntrySize))
			continue
		}
		sub, err := decodeForwarded(raw, key != nil)
		if err != nil {
			s.forwardedError(res, r, errorf(http.StatusBadRequest, "%v", err))
			continue
		}
		wg.Go(func() {
			lr, err := s.cfg.Log.Submit(ctx, sub)
			if err != nil {
				retryAfter, err := s.submitError(err)
				s.forwardedError(res, r, err)
				res.RetryAfter = retryAfter
				return
			}
			*res = api.ForwardedResult{Status: http.StatusOK, Index: lr.Index, TreeSize: lr.Size, LeafHash: lr.LeafHash[:],
				Entry: lr.Entry, InclusionProof: hashesJSON(lr.Proof)}
			cps[i] = lr.Checkpoint
			s.metrics.requests.WithLabelValues("forwarded_submit", "200").Inc()
		})
	}
	wg.Wait()
	// Each distinct checkpoint once: the forwarder verifies its signature
	// once, not once per submission.
	seen := map[string]int{}
	for i, cp := range cps {
		if cp == nil {
			continue
		}
		j, ok := seen[string(cp)]
		if !ok {
			j = len(out.Checkpoints)
			seen[string(cp)] = j
			out.Checkpoints = append(out.Checkpoints, string(cp))
		}
		out.Results[i].Checkpoint = j
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// decodeForwarded decodes a forwarded submission: as encoded by a
// frontend that authenticated the batch (see ForwardKeyer), else strictly
// (schema.ParseSubmission), as POST /v1/submit does.
func decodeForwarded(raw []byte, authenticated bool) (*schema.Submission, error) {
	if !authenticated {
		return schema.ParseSubmission(raw)
	}
	var sub schema.Submission
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, fmt.Errorf("malformed forwarded submission: %w", err)
	}
	return &sub, nil
}

// forwardedError sets res to the answer POST /v1/submit gives for err.
// Forwarded submissions are counted in keycommit_http_requests_total
// under handler forwarded_submit, by the status each got.
func (s *Server) forwardedError(res *api.ForwardedResult, r *http.Request, err error) {
	code, body := s.errorAnswer("forward", r.URL.Path, err)
	*res = api.ForwardedResult{Status: code, Error: body}
	s.metrics.requests.WithLabelValues("forwarded_submit", strconv.Itoa(code)).Inc()
}
