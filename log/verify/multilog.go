package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Multi-log verification: VerifyLogs applies the rule stated in the
// package documentation (doc.go, "Several logs") and docs/multilog.md.

// Fetcher fetches a document: a bundle (a URL or a file path, as the trust
// file names it) or an issuer proof (a URL). It must bound the size it
// reads and the time it takes.
type Fetcher func(ctx context.Context, location string) ([]byte, error)

// DefaultFetchTimeout bounds each fetch of the default Fetcher.
const DefaultFetchTimeout = 30 * time.Second

// HTTPFetcher returns the default Fetcher: http(s) URLs are fetched with
// GET through c (nil means a client with DefaultFetchTimeout), anything
// else is read as a file; either way at most MaxBundleSize bytes, and an
// answer other than 200 is an error naming the status.
func HTTPFetcher(c *http.Client) Fetcher {
	if c == nil {
		c = &http.Client{Timeout: DefaultFetchTimeout}
	}
	return func(ctx context.Context, loc string) ([]byte, error) {
		if !strings.HasPrefix(loc, "https://") && !strings.HasPrefix(loc, "http://") {
			f, err := os.Open(loc)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readAtMost(f, MaxBundleSize)
		}
		ctx, cancel := context.WithTimeout(ctx, DefaultFetchTimeout)
		defer cancel()
		status, b, err := GetBounded(ctx, c, loc)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", loc, err)
		}
		if status != "" {
			if len(b) > 200 {
				b = b[:200]
			}
			return nil, fmt.Errorf("GET %s: %s: %s", loc, status, b)
		}
		return b, nil
	}
}

// GetBounded GETs loc through c, reading at most MaxBundleSize bytes of
// the answer. An answer other than 200 OK is returned as its status line
// and its body, trimmed, without an error (a caller may fall back on it);
// a 200 answer over the limit is an error.
func GetBounded(ctx context.Context, c *http.Client, loc string) (status string, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Status, bytes.TrimSpace(b), nil
	}
	if len(b) > MaxBundleSize {
		return "", nil, fmt.Errorf("the answer is over the limit of %d bytes", MaxBundleSize)
	}
	return "", b, nil
}

// MultiLog configures VerifyLogs.
type MultiLog struct {
	// Trust names the logs, k and the grace window.
	Trust *Trust
	// MinLogs, if not 0, replaces Trust.MinLogs.
	MinLogs int
	// Fetch fetches bundles and issuer proofs; nil means HTTPFetcher(nil).
	Fetch Fetcher
	// Now is the clock (freshness and the grace window); nil means
	// time.Now.
	Now func() time.Time
}

// LogStatus is what became of one trusted log.
type LogStatus string

// The log statuses.
const (
	LogOK          LogStatus = "ok"
	LogUnavailable LogStatus = "unavailable" // the bundle could not be fetched
	LogStale       LogStatus = "stale"       // the freshness check failed
	LogInvalid     LogStatus = "invalid"     // another check failed
)

// LogResult is one trusted log's outcome.
type LogResult struct {
	// Log is the trusted log (from the trust file).
	Log *TrustedLog
	// Status is ok, unavailable, stale or invalid; Err says why for the
	// last three, and Check names the failed check (stale, invalid).
	Status LogStatus
	Err    error
	Check  Check
	// Verified is the verified bundle (ok only). Logs whose key sets are
	// byte-identical share one parse: their Verified.KeySet return the same
	// (immutable) *KeySet.
	Verified *Verified
	// Issuers is the number of issuers its key set carries (ok only).
	Issuers int

	keySet *KeySet
	held   []heldEntry // what it holds for each issuer, sorted by issuer
}

// Decision is what VerifyLogs decided for one issuer.
type Decision string

// The decisions.
const (
	Accepted Decision = "accepted"
	Pending  Decision = "pending" // a rotation within the grace window
	Refused  Decision = "refused"
)

// Holding is one distinct commitment some logs hold for an issuer.
type Holding struct {
	// Logs are the logs holding it, in trust file order.
	Logs []string
	// KeyIDs are its keys: "pst:<protocol version>:<key id>" (the 4-byte
	// big-endian id that starts Y, in decimal) and
	// "privacy_pass:<token type>:<token_key_id>" (RFC 9578, SHA-256 of the
	// token key, the first 8 bytes in hex), sorted.
	KeyIDs []string
	// Logged is when the log logged it, earliest over Logs, from the
	// issuer proofs; zero if not known (no divergence, or no proof).
	Logged time.Time
}

// IssuerResult is the decision for one issuer.
type IssuerResult struct {
	Issuer   string
	Decision Decision
	// Reason says why, in a sentence naming logs.
	Reason string
	// Logs are the logs holding the commitment used (accepted, pending),
	// or, refused, every ok log carrying the issuer.
	Logs []string
	// Lagging are, pending, the logs still holding an older commitment.
	Lagging []string
	// Holdings are the distinct commitments when the logs disagree (the
	// one used first when pending), nil when they agree.
	Holdings []Holding
}

// Merged is the outcome of VerifyLogs.
type Merged struct {
	// KeySet holds the accepted and pending issuers' commitments, in
	// Chrome's component shape (PST) and as Privacy Pass directories.
	KeySet *KeySet
	// Issuers are the decisions, sorted by issuer.
	Issuers []IssuerResult
	// Logs are the trusted logs' outcomes, in trust file order.
	Logs []LogResult
	// MinLogs and Grace are the rule applied; Now the time it ran.
	MinLogs int
	Grace   time.Duration
	Now     time.Time
}

// OK reports whether every log is ok and every issuer accepted or pending.
func (m *Merged) OK() bool {
	for _, l := range m.Logs {
		if l.Status != LogOK {
			return false
		}
	}
	for _, i := range m.Issuers {
		if i.Decision == Refused {
			return false
		}
	}
	return true
}

// Available returns the number of ok logs.
func (m *Merged) Available() int {
	n := 0
	for _, l := range m.Logs {
		if l.Status == LogOK {
			n++
		}
	}
	return n
}

// held is what one log holds for one issuer: the raw members (with their
// key, `"<origin>":`) of each part, nil if absent.
type held struct {
	pst, pp []byte
}

func (h *held) same(o *held) bool { return bytes.Equal(h.pst, o.pst) && bytes.Equal(h.pp, o.pp) }

// VerifyLogs fetches and verifies every trusted log's bundle concurrently
// and merges their key sets by the rule above. Its error is for a
// configuration it cannot run (no trust, k out of range); a log that fails
// is reported in Merged.Logs and its issuers decided without it.
func VerifyLogs(ctx context.Context, m MultiLog) (*Merged, error) {
	if m.Trust == nil || len(m.Trust.Logs) == 0 {
		return nil, errors.New("multi-log verification needs a trust file naming at least one log")
	}
	k := m.Trust.MinLogs
	if m.MinLogs != 0 {
		k = m.MinLogs
	}
	if k < 1 || k > len(m.Trust.Logs) {
		return nil, fmt.Errorf("min-logs %d is out of range: the trust file names %d logs", k, len(m.Trust.Logs))
	}
	fetch := m.Fetch
	if fetch == nil {
		fetch = HTTPFetcher(nil)
	}
	now := m.Now
	if now == nil {
		now = time.Now
	}
	out := &Merged{MinLogs: k, Grace: m.Trust.Grace, Now: now(), Logs: make([]LogResult, len(m.Trust.Logs))}
	verifiers := make([]*Verifier, len(m.Trust.Logs))
	var wg sync.WaitGroup
	for i := range m.Trust.Logs {
		tl := &m.Trust.Logs[i]
		out.Logs[i].Log = tl
		v, err := New(tl.Config(now))
		if err != nil {
			out.Logs[i].Status, out.Logs[i].Err = LogInvalid, err
			continue
		}
		verifiers[i] = v
		wg.Add(1)
		go func(r *LogResult) {
			defer wg.Done()
			verifyOne(ctx, fetch, v, r)
		}(&out.Logs[i])
	}
	wg.Wait()
	readKeySets(out.Logs)

	// Every issuer any ok log carries, in order: a merge of the logs'
	// sorted lists. Issuers whose logs disagree need issuer proofs (the
	// grace rule): those are decided afterwards by at most
	// maxLookupWorkers goroutines.
	lk := &lookups{vs: verifiers, fetch: fetch, down: map[int]error{}}
	var (
		issuers []string
		results []IssuerResult
		froms   []int
		later   []func()
		cur     []carry
	)
	pos := make([]int, len(out.Logs))
	for {
		iss, found := "", false
		for i := range out.Logs {
			if h := out.Logs[i].held; pos[i] < len(h) && (!found || h[pos[i]].origin < iss) {
				iss, found = h[pos[i]].origin, true
			}
		}
		if !found {
			break
		}
		cur = cur[:0]
		for i := range out.Logs {
			if h := out.Logs[i].held; pos[i] < len(h) && h[pos[i]].origin == iss {
				cur = append(cur, carry{i, &h[pos[i]].held})
				pos[i]++
			}
		}
		idx := len(issuers)
		issuers = append(issuers, iss)
		r, from, ok := out.agreed(iss, cur)
		results, froms = append(results, r), append(froms, from)
		if ok {
			continue
		}
		groups, carriers := out.groups(cur)
		if out.Grace <= 0 {
			results[idx], froms[idx] = out.decide(ctx, lk, iss, groups, carriers)
			continue
		}
		later = append(later, func() { results[idx], froms[idx] = out.decide(ctx, lk, iss, groups, carriers) })
	}
	sem := make(chan struct{}, maxLookupWorkers)
	for _, f := range later {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f()
		}()
	}
	wg.Wait()
	// issuers are sorted, so the merged parts are too; they share the
	// logs' (immutable) members.
	out.KeySet = &KeySet{pst: make([]pstRec, 0, len(issuers))}
	for i, iss := range issuers {
		if from := froms[i]; from >= 0 {
			ks := out.Logs[from].keySet
			if j, ok := ks.pstIndex(iss); ok {
				out.KeySet.pst = append(out.KeySet.pst, ks.pst[j])
			}
			if j, ok := ks.ppIndex(iss); ok {
				out.KeySet.pp = append(out.KeySet.pp, ks.pp[j])
			}
		}
	}
	out.Issuers = results
	return out, nil
}

// maxLookupWorkers bounds the issuers whose issuer proofs are fetched at
// once.
const maxLookupWorkers = 8

// lookups fetches issuer proofs. A log whose issuer proof could not be
// fetched is not asked again in the same run (down), so an unreachable log
// costs one fetch timeout, not one per issuer.
type lookups struct {
	vs    []*Verifier
	fetch Fetcher
	mu    sync.Mutex
	down  map[int]error
}

// verifyOne fetches and verifies one log's bundle into r (the key set is
// read by readKeySets).
func verifyOne(ctx context.Context, fetch Fetcher, v *Verifier, r *LogResult) {
	raw, err := fetch(ctx, r.Log.Bundle)
	if err != nil {
		r.Status, r.Err = LogUnavailable, fmt.Errorf("couldn't fetch the bundle: %w", err)
		return
	}
	got, err := v.Verify(raw, nil)
	if err != nil {
		r.failed(err)
		return
	}
	r.Status, r.Verified = LogOK, got
}

func (r *LogResult) failed(err error) {
	r.Check = CheckOf(err)
	r.Status, r.Err, r.Verified = LogInvalid, err, nil
	if r.Check == CheckFreshness {
		r.Status = LogStale
	}
}

// readKeySets runs the keyset check on every ok log's verified key set
// and records what it holds for each issuer. Logs whose key sets are
// byte-identical (the usual case for logs that carry the same issuers)
// share one parse, each still checked against its own snapshot's count.
func readKeySets(logs []LogResult) {
	var reps []int
	same := map[int][]int{}
	for i := range logs {
		if logs[i].Status != LogOK {
			continue
		}
		found := false
		for _, r := range reps {
			if bytes.Equal(logs[r].Verified.enc.bytes(), logs[i].Verified.enc.bytes()) {
				same[r] = append(same[r], i)
				found = true
				break
			}
		}
		if !found {
			reps = append(reps, i)
		}
	}
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rv := logs[r].Verified
			ks, m, err := keySetMembersOf(rv)
			if err != nil {
				logs[r].failed(err)
				for _, i := range same[r] {
					logs[i].failed(err)
				}
				return
			}
			h := heldIn(m)
			logs[r].keySet, logs[r].held, logs[r].Issuers = ks, h, len(h)
			for _, i := range same[r] {
				v := logs[i].Verified
				v.keySetOnce.Do(func() { v.useKeySet(ks, m) })
				if v.keySetErr != nil {
					logs[i].failed(v.keySetErr)
					continue
				}
				logs[i].keySet, logs[i].held, logs[i].Issuers = ks, h, len(h)
			}
		}(r)
	}
	wg.Wait()
}

// keySetMembersOf runs the keyset check on v (as Verified.KeySet does,
// once) and returns the key set and its members.
func keySetMembersOf(v *Verified) (*KeySet, *keySetMembers, error) {
	v.keySetOnce.Do(func() { v.readKeySet(&keySetMembers{}) })
	if v.keySetErr != nil {
		return nil, nil, v.keySetErr
	}
	m := v.members
	if m == nil {
		m = &keySetMembers{}
		if _, err := parseKeySetFast(v.enc.bytes(), m); err != nil {
			return nil, nil, failErr(CheckKeySet, err)
		}
	}
	return v.keySet, m, nil
}

// heldEntry is what a log holds for one issuer.
type heldEntry struct {
	origin string
	held
}

// heldIn returns what a key set holds for each issuer, sorted by issuer
// (its members are: the canonical encoding sorts them).
func heldIn(m *keySetMembers) []heldEntry {
	out := make([]heldEntry, 0, len(m.pst)+len(m.pp))
	a, b := m.pst, m.pp
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0].origin < b[0].origin:
			out, a = append(out, heldEntry{origin: a[0].origin, held: held{pst: a[0].raw}}), a[1:]
		case len(a) == 0 || b[0].origin < a[0].origin:
			out, b = append(out, heldEntry{origin: b[0].origin, held: held{pp: b[0].raw}}), b[1:]
		default:
			out, a, b = append(out, heldEntry{origin: a[0].origin, held: held{pst: a[0].raw, pp: b[0].raw}}), a[1:], b[1:]
		}
	}
	return out
}

// carry is what one ok log (an index into Merged.Logs) holds for the
// issuer being decided.
type carry struct {
	li int
	h  *held
}

// group is the logs (indexes into Merged.Logs) holding one commitment.
type group struct {
	h    *held
	logs []int
}

// agreed decides an issuer on which every ok log carrying it (cur)
// agrees (ok is false if they do not): the common case, without the
// allocations of groups.
func (m *Merged) agreed(iss string, cur []carry) (r IssuerResult, from int, ok bool) {
	for _, c := range cur[1:] {
		if !cur[0].h.same(c.h) {
			return r, -1, false
		}
	}
	carriers := make([]string, len(cur))
	for i, c := range cur {
		carriers[i] = m.Logs[c.li].Log.Name
	}
	r, from = m.agree(iss, carriers, cur[0].li)
	return r, from, true
}

// agree decides an issuer the ok logs carrying it (carriers) agree on;
// from is one of them.
func (m *Merged) agree(iss string, carriers []string, from int) (IssuerResult, int) {
	r := IssuerResult{Issuer: iss, Decision: Refused, Logs: carriers}
	k := m.MinLogs
	if n := len(carriers); n >= k {
		r.Decision = Accepted
		r.Reason = fmt.Sprintf("%d of %d logs hold the identical commitment (%s); min-logs %d", n, len(m.Logs), strings.Join(carriers, ", "), k)
		return r, from
	}
	r.Reason = fmt.Sprintf("held by only %d log(s) (%s), min-logs is %d", len(carriers), strings.Join(carriers, ", "), k)
	if down := m.notOK(); len(down) > 0 {
		r.Reason += "; not ok: " + strings.Join(down, ", ")
	}
	return r, -1
}

// groups returns the distinct commitments in cur and the logs carrying
// the issuer.
func (m *Merged) groups(cur []carry) (groups []*group, carriers []string) {
	for _, c := range cur {
		carriers = append(carriers, m.Logs[c.li].Log.Name)
		found := false
		for _, g := range groups {
			if g.h.same(c.h) {
				g.logs = append(g.logs, c.li)
				found = true
				break
			}
		}
		if !found {
			groups = append(groups, &group{h: c.h, logs: []int{c.li}})
		}
	}
	return groups, carriers
}

// notOK returns the logs that are not ok.
func (m *Merged) notOK() []string {
	var out []string
	for _, l := range m.Logs {
		if l.Status != LogOK {
			out = append(out, l.Log.Name)
		}
	}
	return out
}

// decide applies the rule to one issuer; from is the log whose key set has
// the commitment to use (-1 when refused).
func (m *Merged) decide(ctx context.Context, lk *lookups, iss string, groups []*group, carriers []string) (IssuerResult, int) {
	if len(groups) == 1 {
		return m.agree(iss, carriers, groups[0].logs[0])
	}
	r := IssuerResult{Issuer: iss, Decision: Refused, Logs: carriers}
	k := m.MinLogs

	// Divergence.
	r.Holdings = make([]Holding, len(groups))
	for gi, g := range groups {
		r.Holdings[gi] = Holding{Logs: m.names(g.logs), KeyIDs: keyIDs(m.Logs[g.logs[0]].keySet, iss)}
	}
	diverge := fmt.Sprintf("logs disagree on its commitment: %s", describeHoldings(r.Holdings))
	if m.Grace <= 0 {
		r.Reason = diverge + " (no grace window)"
		return r, -1
	}
	times, err := lk.times(ctx, m, iss, groups)
	for gi, g := range groups {
		for _, li := range g.logs {
			if t, ok := times[li]; ok && (r.Holdings[gi].Logged.IsZero() || t.t.Before(r.Holdings[gi].Logged)) {
				r.Holdings[gi].Logged = t.t
			}
		}
	}
	if err != nil {
		r.Reason = diverge + fmt.Sprintf("; not a rotation within the grace window: %v", err)
		return r, -1
	}
	// The newest commitment: the group of the latest entry.
	newest, tie := -1, false
	var latest time.Time
	for gi, g := range groups {
		for _, li := range g.logs {
			switch t := times[li].t; {
			case newest < 0 || t.After(latest):
				newest, latest, tie = gi, t, false
			case t.Equal(latest) && gi != newest:
				tie = true
			}
		}
	}
	if tie {
		r.Reason = diverge + fmt.Sprintf("; not a rotation: different commitments logged at the same time %s", latest.UTC().Format(time.RFC3339Nano))
		return r, -1
	}
	tN := r.Holdings[newest].Logged
	holders := r.Holdings[newest].Logs
	var lagging []int
	for gi, g := range groups {
		if gi == newest {
			continue
		}
		for _, li := range g.logs {
			if !times[li].t.Before(tN) {
				r.Reason = diverge + fmt.Sprintf("; not a rotation: log %s logged its commitment at %s, not before the newest one was first logged (%s)",
					m.Logs[li].Log.Name, times[li].t.UTC().Format(time.RFC3339Nano), tN.UTC().Format(time.RFC3339Nano))
				return r, -1
			}
			lagging = append(lagging, li)
		}
	}
	sort.Ints(lagging)
	laggingNames := m.names(lagging)
	if age := m.Now.Sub(tN); age > m.Grace {
		r.Reason = diverge + fmt.Sprintf("; the newest commitment (held by %s) was first logged %s ago, over the grace window of %s, and %s still hold an older one",
			strings.Join(holders, ", "), age.Round(time.Second), m.Grace, strings.Join(laggingNames, ", "))
		return r, -1
	}
	if n := len(holders) + len(lagging); n < k {
		r.Reason = diverge + fmt.Sprintf("; a rotation within the grace window, but the logs holding the newest commitment (%s) and the lagging ones (%s) are %d, min-logs is %d",
			strings.Join(holders, ", "), strings.Join(laggingNames, ", "), n, k)
		return r, -1
	}
	// Each lagging log must hold the commitment the issuer made before the
	// newest one in every log holding the newest one.
	for _, hi := range groups[newest].logs {
		t := times[hi]
		prev, err := lk.previous(ctx, t.base, iss, t.entry)
		if err != nil {
			r.Reason = diverge + fmt.Sprintf("; not a recognised rotation: log %s: %v", m.Logs[hi].Log.Name, err)
			return r, -1
		}
		for _, li := range lagging {
			if err := sameCommitment(prev, m.Logs[li].keySet, iss); err != nil {
				r.Reason = diverge + fmt.Sprintf("; not a rotation: log %s holds a commitment that is not the one log %s holds before the newest", m.Logs[li].Log.Name, m.Logs[hi].Log.Name)
				return r, -1
			}
		}
	}
	// The commitment used comes first.
	r.Holdings[0], r.Holdings[newest] = r.Holdings[newest], r.Holdings[0]
	r.Decision, r.Logs, r.Lagging = Pending, holders, laggingNames
	r.Reason = fmt.Sprintf("a rotation within the grace window: the newest commitment, first logged at %s (%s ago, grace %s), is held by %s; %s still hold the issuer's previous one",
		tN.UTC().Format(time.RFC3339), m.Now.Sub(tN).Round(time.Second), m.Grace, strings.Join(holders, ", "), strings.Join(laggingNames, ", "))
	return r, groups[newest].logs[0]
}

// commitmentTimes asks every log in groups for the issuer's latest
// commitment entry and returns when each logged it (by index into
// m.Logs). Every proof must verify and carry exactly what the log's key
// set holds for the issuer.
func (lk *lookups) times(ctx context.Context, m *Merged, iss string, groups []*group) (map[int]logged, error) {
	type answer struct {
		li  int
		t   logged
		err error
	}
	var idx []int
	for _, g := range groups {
		idx = append(idx, g.logs...)
	}
	ch := make(chan answer, len(idx))
	for _, li := range idx {
		go func(li int) {
			t, err := lk.time(ctx, li, &m.Logs[li], iss)
			ch <- answer{li, t, err}
		}(li)
	}
	times := map[int]logged{}
	var errs []string
	for range idx {
		a := <-ch
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("log %s: %v", m.Logs[a.li].Log.Name, a.err))
			continue
		}
		times[a.li] = a.t
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return times, errors.New(strings.Join(errs, "; "))
	}
	return times, nil
}

func (lk *lookups) time(ctx context.Context, li int, l *LogResult, iss string) (logged, error) {
	base, err := l.Log.LogURL()
	if err != nil {
		return logged{}, err
	}
	lk.mu.Lock()
	err = lk.down[li]
	lk.mu.Unlock()
	if err != nil {
		return logged{}, fmt.Errorf("not asked again in this run: %w", err)
	}
	raw, err := lk.fetch(ctx, base+IssuerProofPath+"?issuer="+url.QueryEscape(iss))
	if err != nil {
		var ue *url.Error
		err = fmt.Errorf("couldn't fetch the issuer proof: %w", err)
		if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
			// The log is unreachable, not just without this issuer's proof.
			lk.mu.Lock()
			lk.down[li] = err
			lk.mu.Unlock()
		}
		return logged{}, err
	}
	e, err := lk.vs[li].VerifyIssuerProof(raw, iss)
	if err != nil {
		return logged{}, fmt.Errorf("issuer proof: %w", err)
	}
	if err := sameCommitment(e.Commitment, l.keySet, iss); err != nil {
		return logged{}, fmt.Errorf("issuer proof (entry %d): %w", e.Index, err)
	}
	return logged{t: e.Time, entry: e, base: base}, nil
}

// logged is when a log logged an issuer's latest commitment: the verified
// issuer proof and the log's URL.
type logged struct {
	t     time.Time
	entry *IssuerEntry
	base  string
}

// maxPrevHops bounds how far back previous finds the issuer's previous key
// commitment (past registrations and incident reports).
const maxPrevHops = 4

// previous returns the body of the issuer's key commitment before e in the
// log at base: following the entries' prev (leaf hashes) through the log's
// inclusion proofs by hash (GET /v1/proof/inclusion?hash=H&size=N) and
// entries (GET /v1/entries?start=I&end=I+1), each proven included in e's
// verified checkpoint.
func (lk *lookups) previous(ctx context.Context, base, iss string, e *IssuerEntry) (json.RawMessage, error) {
	cur := e.Entry
	for hop := 0; hop < maxPrevHops; hop++ {
		var le logEntry
		if err := strictJSON(cur, &le); err != nil {
			return nil, fmt.Errorf("malformed entry: %w", err)
		}
		if len(le.Prev) == 0 {
			return nil, errors.New("the issuer has no earlier key commitment in this log")
		}
		size := e.Checkpoint.Size
		raw, err := lk.fetch(ctx, fmt.Sprintf("%s/v1/proof/inclusion?hash=%s&size=%d", base, url.QueryEscape(b64(le.Prev)), size))
		if err != nil {
			return nil, fmt.Errorf("couldn't fetch the previous entry's inclusion proof: %w", err)
		}
		var ip struct {
			Index uint64   `json:"index"`
			Proof [][]byte `json:"proof"`
		}
		if err := json.Unmarshal(raw, &ip); err != nil {
			return nil, fmt.Errorf("malformed inclusion proof: %w", err)
		}
		raw, err = lk.fetch(ctx, fmt.Sprintf("%s/v1/entries?start=%d&end=%d", base, ip.Index, ip.Index+1))
		if err != nil {
			return nil, fmt.Errorf("couldn't fetch entry %d: %w", ip.Index, err)
		}
		var es struct {
			Entries []struct {
				Data []byte `json:"data"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(raw, &es); err != nil || len(es.Entries) != 1 {
			return nil, fmt.Errorf("malformed answer for entry %d (%v)", ip.Index, err)
		}
		data := es.Entries[0].Data
		if h := rfc6962.DefaultHasher.HashLeaf(data); !bytes.Equal(h, le.Prev) {
			return nil, fmt.Errorf("entry %d does not have the leaf hash the next entry names as prev", ip.Index)
		}
		if err := verifyInclusion(data, ip.Index, ip.Proof, &e.Checkpoint.Checkpoint); err != nil {
			return nil, err
		}
		var pe logEntry
		if err := strictJSON(data, &pe); err != nil {
			return nil, fmt.Errorf("malformed entry %d: %w", ip.Index, err)
		}
		if pe.Issuer != iss {
			return nil, fmt.Errorf("entry %d, the previous entry, is for issuer %q", ip.Index, pe.Issuer)
		}
		if pe.Kind == "key_commitment" {
			return pe.Body, nil
		}
		cur = data
	}
	return nil, fmt.Errorf("no key commitment within %d entries before the latest one", maxPrevHops)
}

// IssuerProofPath is where a log serves an issuer's latest commitment
// entry as a tlog-proof (docs/bundle.md), below its URL.
const IssuerProofPath = "/v1/issuer-proof"

// sameCommitment checks that a logged key commitment body is what ks holds
// for iss: both parts, in the key set's canonical encoding.
func sameCommitment(body json.RawMessage, ks *KeySet, iss string) error {
	var c struct {
		PST         *jsonPSTCommitment   `json:"pst"`
		PrivacyPass *jsonIssuerDirectory `json:"privacy_pass"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("malformed key commitment: %w", err)
	}
	// Each part's encoding, "" if absent.
	var got, want [2]string
	if c.PST != nil {
		b, err := canonicalJSON(*c.PST)
		if err != nil {
			return err
		}
		got[0] = string(b)
	}
	if c.PrivacyPass != nil {
		b, err := canonicalJSON(c.PrivacyPass)
		if err != nil {
			return err
		}
		got[1] = string(b)
	}
	if p, ok := ks.PST(iss); ok {
		want[0] = p.raw()
	}
	if d, ok := ks.PrivacyPass(iss); ok {
		want[1] = d.raw()
	}
	if got != want {
		return errors.New("the entry's commitment is not what the log's key set holds for the issuer")
	}
	return nil
}

func (m *Merged) names(idx []int) []string {
	out := make([]string, len(idx))
	for i, li := range idx {
		out[i] = m.Logs[li].Log.Name
	}
	return out
}

func describeHoldings(hs []Holding) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s hold keys [%s]", strings.Join(h.Logs, ", "), strings.Join(h.KeyIDs, " "))
	}
	return strings.Join(parts, "; ")
}

// keyIDs lists the key ids of the issuer's commitment in ks (see
// Holding.KeyIDs).
func keyIDs(ks *KeySet, iss string) []string {
	var out []string
	c, _ := ks.PST(iss)
	for v := range c.Versions() {
		for k := range v.Keys() {
			y, err := base64.StdEncoding.Strict().DecodeString(k.Y)
			if err != nil || len(y) < 4 {
				out = append(out, "pst:"+v.Version+":label-"+k.Label)
				continue
			}
			out = append(out, "pst:"+v.Version+":"+strconv.FormatUint(uint64(binary.BigEndian.Uint32(y)), 10))
		}
	}
	if d, ok := ks.PrivacyPass(iss); ok {
		for tk := range d.TokenKeys() {
			b, err := decodeBase64URL(tk.TokenKey)
			if err != nil {
				out = append(out, fmt.Sprintf("privacy_pass:%d:undecodable", tk.TokenType))
				continue
			}
			sum := sha256.Sum256(b)
			out = append(out, fmt.Sprintf("privacy_pass:%d:%s", tk.TokenType, hex.EncodeToString(sum[:8])))
		}
	}
	sort.Strings(out)
	return out
}
