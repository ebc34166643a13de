package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/witness/quorum"
)

// EvidenceInfo describes a stored evidence bundle.
type EvidenceInfo struct {
	ID     string    `json:"id"`
	Origin string    `json:"origin"`
	Found  time.Time `json:"found"`
}

// ReadLimit is the in-flight limit of every GET of Handler; a command
// mounting more GETs beside Handler (the explorer, /metrics) wraps them
// in it too.
func (m *Monitor) ReadLimit() *httpguard.Limiter { return m.readLimit }

// Handler serves gossip:
//
//	GET  /<hex sha256(origin)>/checkpoint  latest verified checkpoint of a log (as a C2SP witness serves it)
//	GET  /v1/checkpoints                   JSON status of every log followed
//	POST /v1/checkpoint                    a signed checkpoint to check (from a peer or a user agent)
//	GET  /v1/evidence                      JSON list of split-view, time and cross-log evidence (paginated)
//	GET  /v1/evidence/<id>                 one evidence bundle (check it with VerifyEvidence, VerifyTimeEvidence or CheckCrossLog)
//	GET  /v1/gossip                        JSON status of the latest pull from each peer and witness
//	POST /watch                            {"origin": "https://issuer.example"}: alert on its key changes (operator's token)
//	GET  /watch                            JSON list of watched origins (paginated)
//
// The lists are paginated as httpguard says: ?after=<cursor>&limit=<n>
// (at most maxPage, default 100), and a Link rel="next" header while
// more follow; the cursor is the last evidence id or watched origin of
// the page. POST /v1/checkpoint takes only checkpoints signed by a
// followed log's key, at most Config.MaxInFlight at once (429 beyond),
// and keeps at most maxPendingPerLog per log for a later check. POST
// /watch changes what the monitor alerts on, so it needs the operator's
// token (Config.AdminToken, Authorization: Bearer).
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	// Every read shares one in-flight limit (429 beyond it).
	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, m.readLimit.Wrap(h)) }
	read("GET /{id}/checkpoint", m.serveCheckpoint)
	read("GET /v1/checkpoints", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, m.Status()) })
	mux.Handle("POST /v1/checkpoint", m.postLimit.Wrap(http.HandlerFunc(m.servePostCheckpoint)))
	read("GET /v1/evidence", m.serveEvidenceList)
	read("GET /v1/gossip", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, m.Gossip()) })
	read("GET /v1/evidence/{id}", m.serveEvidence)
	mux.Handle("POST /watch", m.postLimit.Wrap(m.cfg.AdminToken.Require(http.HandlerFunc(m.servePostWatch))))
	read("GET /watch", func(w http.ResponseWriter, r *http.Request) {
		after, limit, err := httpguard.ParsePage(r, maxPage)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws, err := m.store.watches(r.Context(), after, limit+1)
		if err != nil {
			m.internalError(w, "couldn't list watches", err)
			return
		}
		if len(ws) > limit {
			ws = ws[:limit]
			httpguard.SetNext(w, r, ws[limit-1])
		}
		if ws == nil {
			ws = []string{}
		}
		writeJSON(w, http.StatusOK, map[string][]string{"watches": ws})
	})
	return mux
}

// maxPage is the largest page of the monitor's lists.
const maxPage = 1000

// internalError logs err with a request id and answers 500 with only
// what failed and the id.
func (m *Monitor) internalError(w http.ResponseWriter, what string, err error) {
	id := httpguard.RequestID()
	m.log.Error(what, "request_id", id, "err", err)
	http.Error(w, what+" (request id "+id+")", http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (m *Monitor) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	f := m.byID[r.PathValue("id")]
	if f == nil {
		http.Error(w, "unknown log: the id must be the hex SHA-256 of a followed log's origin", http.StatusNotFound)
		return
	}
	f.mu.Lock()
	v := f.verified
	f.mu.Unlock()
	if v == nil {
		http.Error(w, "no checkpoint of this log is verified yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(v.Note)
}

// servePostCheckpoint checks a checkpoint someone sends: 200 consistent,
// 202 kept for a later check, 409 split view (with the evidence id), 403
// bad signature, 404 unknown log, 400 malformed.
func (m *Monitor) servePostCheckpoint(w http.ResponseWriter, r *http.Request) {
	b, err := httpguard.ReadBody(w, r, maxNoteSize)
	if errors.Is(err, httpguard.ErrTooLarge) {
		http.Error(w, fmt.Sprintf("checkpoint body over %d bytes", maxNoteSize), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "couldn't read the checkpoint body", http.StatusBadRequest)
		return
	}
	res, evID, err := m.submitCheckpoint(r.Context(), b, "post "+r.RemoteAddr)
	switch {
	case errors.Is(err, errUnknownLog):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, errBadCheckpoint):
		http.Error(w, err.Error(), http.StatusForbidden)
	case errors.Is(err, errTooManyPending):
		httpguard.TooMany(w)
		http.Error(w, err.Error(), http.StatusTooManyRequests)
	case err != nil:
		m.internalError(w, "couldn't check the checkpoint", err)
	case res == resultSplit:
		writeJSON(w, http.StatusConflict, map[string]string{"result": res.String(), "evidence": evID})
	case res == resultPending:
		writeJSON(w, http.StatusAccepted, map[string]string{"result": res.String()})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"result": res.String()})
	}
}

var (
	errUnknownLog    = errors.New("checkpoint of a log this monitor does not follow")
	errBadCheckpoint = errors.New("checkpoint does not verify")
)

func (m *Monitor) submitCheckpoint(ctx context.Context, note []byte, source string) (result observeResult, evidenceID string, err error) {
	f := m.byOrigin[originOf(note)]
	if f == nil {
		return 0, "", fmt.Errorf("%w: origin %q", errUnknownLog, originOf(note))
	}
	cp, err := openCheckpoint(note, f.verifier, f.origin)
	if err != nil {
		m.metrics.gossip.WithLabelValues(sourceKind(source), "bad").Inc()
		return 0, "", fmt.Errorf("%w: %v", errBadCheckpoint, err)
	}
	res, evidenceID, err := f.observe(ctx, cp, source)
	if err != nil {
		return 0, "", err
	}
	if res == resultConsistent {
		if err := f.checkLatest(ctx, cp); err != nil {
			return 0, "", err
		}
	}
	m.metrics.gossip.WithLabelValues(sourceKind(source), res.String()).Inc()
	return res, evidenceID, nil
}

func sourceKind(s string) string {
	k, _, _ := strings.Cut(s, " ")
	return k
}

func (m *Monitor) serveEvidenceList(w http.ResponseWriter, r *http.Request) {
	after, limit, err := httpguard.ParsePage(r, maxPage)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l, err := m.store.evidencePage(r.Context(), after, limit+1)
	if err != nil {
		m.internalError(w, "couldn't list evidence", err)
		return
	}
	if len(l) > limit {
		l = l[:limit]
		httpguard.SetNext(w, r, l[limit-1].ID)
	}
	if l == nil {
		l = []EvidenceInfo{}
	}
	writeJSON(w, http.StatusOK, l)
}

func (m *Monitor) serveEvidence(w http.ResponseWriter, r *http.Request) {
	b, err := m.store.evidence(r.Context(), r.PathValue("id"))
	if errors.Is(err, errNotFound) {
		http.Error(w, "no such evidence", http.StatusNotFound)
		return
	}
	if err != nil {
		m.internalError(w, "couldn't read evidence", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (m *Monitor) servePostWatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Origin string `json:"origin"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "want a JSON object {\"origin\": \"https://issuer.example\"}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := m.Watch(r.Context(), req.Origin); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"watching": req.Origin})
}

// pullAll pulls checkpoints from every peer and witness, and evidence
// from every peer.
func (m *Monitor) pullAll(ctx context.Context) []error {
	var errs []error
	for _, p := range m.cfg.Peers {
		n := len(errs)
		for _, f := range m.followers {
			if err := m.pullCheckpoint(ctx, strings.TrimSuffix(p, "/"), f, "peer "+p); err != nil {
				errs = append(errs, err)
			}
		}
		if err := m.pullEvidence(ctx, strings.TrimSuffix(p, "/")); err != nil {
			errs = append(errs, err)
		}
		m.noteGossip("peer", p, errs[n:])
	}
	for _, wu := range m.cfg.Witnesses {
		n := len(errs)
		for _, f := range m.followers {
			if err := m.pullCheckpoint(ctx, strings.TrimSuffix(wu, "/"), f, "witness "+wu); err != nil {
				errs = append(errs, err)
			}
		}
		m.noteGossip("witness", wu, errs[n:])
	}
	return errs
}

// GossipStatus is the latest gossip pull from one peer or witness.
type GossipStatus struct {
	Kind string `json:"kind"` // "peer" or "witness"
	URL  string `json:"url"`
	// LastPull is when it was last pulled from (zero: not yet), LastOK
	// when a pull last succeeded, and Error what the last pull's failure
	// was, if it failed.
	LastPull time.Time `json:"last_pull"`
	LastOK   time.Time `json:"last_ok"`
	Error    string    `json:"error,omitempty"`
}

func (m *Monitor) noteGossip(kind, u string, errs []error) {
	m.gossipMu.Lock()
	defer m.gossipMu.Unlock()
	if m.gossip == nil {
		m.gossip = map[string]*GossipStatus{}
	}
	g := m.gossip[kind+" "+u]
	if g == nil {
		g = &GossipStatus{Kind: kind, URL: u}
		m.gossip[kind+" "+u] = g
	}
	g.LastPull = m.now()
	g.Error = ""
	if len(errs) == 0 {
		g.LastOK = g.LastPull
	} else {
		g.Error = errors.Join(errs...).Error()
	}
}

// Gossip returns the gossip status of every configured peer, then every
// witness, in configuration order (served at GET /v1/gossip).
func (m *Monitor) Gossip() []GossipStatus {
	m.gossipMu.Lock()
	defer m.gossipMu.Unlock()
	var out []GossipStatus
	add := func(kind string, us []string) {
		for _, u := range us {
			if g := m.gossip[kind+" "+u]; g != nil {
				out = append(out, *g)
			} else {
				out = append(out, GossipStatus{Kind: kind, URL: u})
			}
		}
	}
	add("peer", m.cfg.Peers)
	add("witness", m.cfg.Witnesses)
	return out
}

func (m *Monitor) pullCheckpoint(ctx context.Context, base string, f *follower, source string) error {
	b, err := httpGet(ctx, m.hc, base+"/"+originID(f.origin)+"/checkpoint", maxNoteSize)
	if errors.Is(err, errNotFound) {
		return nil // the peer does not (yet) know this log
	}
	if err != nil {
		return fmt.Errorf("couldn't pull the checkpoint of %s from %s: %w", f.origin, source, err)
	}
	if _, _, err := m.submitCheckpoint(ctx, b, source); err != nil {
		return fmt.Errorf("checkpoint of %s from %s: %w", f.origin, source, err)
	}
	return nil
}

// maxPeerEvidence bounds the evidence list read from one peer per pull.
const maxPeerEvidence = 100 * maxPage

// pullEvidence fetches a peer's evidence bundles it does not have, checks
// each one against the key of the log it names (cross-log evidence
// against both logs', acceptPeerCrossLog), and keeps those that verify.
func (m *Monitor) pullEvidence(ctx context.Context, base string) error {
	var list []EvidenceInfo
	// Page through the list by the last id of each page (the peer sends
	// ids in order); a page that does not advance ends the list.
	for after := ""; len(list) < maxPeerEvidence; {
		b, err := httpGet(ctx, m.hc, base+"/v1/evidence?limit="+strconv.Itoa(maxPage)+"&after="+url.QueryEscape(after), 1<<20)
		if err != nil {
			return fmt.Errorf("couldn't list evidence at %s: %w", base, err)
		}
		var page []EvidenceInfo
		if err := json.Unmarshal(b, &page); err != nil {
			return fmt.Errorf("malformed evidence list from %s: %w", base, err)
		}
		list = append(list, page...)
		if len(page) < maxPage || page[len(page)-1].ID <= after {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, info := range list {
		if _, err := m.store.evidence(ctx, info.ID); err == nil {
			continue
		}
		if m.cross.peerSkipped(base, info.ID) {
			continue
		}
		f := m.byOrigin[info.Origin]
		body, err := httpGet(ctx, m.hc, base+"/v1/evidence/"+info.ID, 1<<20)
		if err != nil {
			return fmt.Errorf("couldn't fetch evidence %s from %s: %w", info.ID, base, err)
		}
		switch typ := EvidenceTypeOf(body); {
		case typ == CrossLogEvidenceType:
			// Listed under its first log, which this monitor may not
			// follow while it follows the second: checked on its own.
			if err := m.acceptPeerCrossLog(ctx, base, info.ID, body); err != nil {
				return err
			}
			continue
		case f == nil:
			// Split-view or time evidence of a log not followed: nothing
			// to check it against. Not fetched again from this peer.
			m.cross.skipPeer(base, info.ID)
			continue
		case typ == TimeEvidenceType:
			tev, err := VerifyTimeEvidence(body, f.vkey, m.cfg.WitnessPolicy, m.now())
			if err != nil {
				m.log.Warn("peer served time evidence that does not verify", "peer", base, "id", info.ID, "err", err)
				continue
			}
			if err := m.recordTimeEvidence(ctx, tev); err != nil {
				return err
			}
			continue
		}
		ev, err := VerifyEvidence(body, f.vkey)
		if err != nil {
			m.log.Warn("peer served evidence that does not verify", "peer", base, "id", info.ID, "err", err)
			continue
		}
		ev.Sources = [2]string{"peer " + base + ": " + ev.Sources[0], "peer " + base + ": " + ev.Sources[1]}
		if err := m.recordEvidence(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// acceptPeerCrossLog checks cross-log evidence a peer served (under the
// id listed) and, if it verifies, stores it and raises its alert naming
// the peer. Evidence that does not verify is logged with the reason, not
// stored, and not fetched again from that peer by this process.
func (m *Monitor) acceptPeerCrossLog(ctx context.Context, peer, listed string, body []byte) error {
	ev, err := m.checkPeerCrossLog(body)
	if err == nil && ev.ID() != listed {
		err = fmt.Errorf("the peer lists it as %s, but its id is %s", listed, ev.ID())
	}
	if err != nil {
		var ul *unknownLogError
		if errors.As(err, &ul) {
			m.log.Warn("refused cross-log evidence from a peer: it names a log this monitor does not follow", "peer", peer, "id", listed, "log", ul.origin, "err", err)
		} else {
			m.log.Warn("refused cross-log evidence from a peer: it does not verify", "peer", peer, "id", listed, "err", err)
		}
		m.cross.skipPeer(peer, listed)
		return nil
	}
	return m.recordCrossLog(ctx, ev, "peer "+peer)
}

// unknownLogError: evidence names a log the monitor does not follow.
type unknownLogError struct{ origin string }

func (e *unknownLogError) Error() string {
	return fmt.Sprintf("log %s is not followed by this monitor, so it has no key to check that log's signature with", e.origin)
}

// checkPeerCrossLog checks cross-log evidence with what the monitor
// trusts: both logs must be followed, with the keys it follows them
// with, under its witness policy, and the overlap must be longer than its
// own grace (CheckCrossLog).
func (m *Monitor) checkPeerCrossLog(body []byte) (*CrossLogEvidence, error) {
	var e CrossLogEvidence
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("malformed evidence: %w", err)
	}
	var vkeys []string
	for _, s := range e.Logs {
		f := m.byOrigin[s.Origin]
		if f == nil {
			return nil, &unknownLogError{s.Origin}
		}
		if s.VKey != f.vkey {
			return nil, fmt.Errorf("it gives log %s the key %q, not the key this monitor follows it with (%q)", s.Origin, s.VKey, f.vkey)
		}
		vkeys = append(vkeys, f.vkey)
	}
	if m.cfg.WitnessPolicy == nil {
		return nil, errors.New("cross-log evidence rests on the logs' witnesses, and this monitor has no witness policy to check their cosignatures with")
	}
	return CheckCrossLog(body, CrossLogCheck{VKeys: vkeys, Policies: []*quorum.Policy{m.cfg.WitnessPolicy}, MinGrace: m.cross.grace})
}
