package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/keycommit/keycommit/schema"
)

// chunk is how many entries the directory reads at a time.
const chunk = 1000

// issuerSummary is what the issuer list shows of one issuer.
type issuerSummary struct {
	Origin      string
	Contact     string
	Registered  uint64 // index of the latest registration
	FirstTime   int64  // time of the first registration (ms)
	Entries     int
	Commitments int
	Emergencies int
	LastIndex   uint64
	LastTime    int64
	lower       string // origin and contact, lower-cased, for search
}

// directory is the explorer's own index of the log: every issuer and a
// few counts, built by reading the log's entries in order. It needs only
// the read path, so it works over every backend and on read-only
// frontends.
type directory struct {
	log Log

	refresh sync.Mutex // held by the one goroutine reading new entries

	mu          sync.RWMutex
	size        uint64
	issuers     map[string]*issuerSummary
	origins     []string // sorted
	kinds       map[schema.Kind]int
	emergencies []int64 // times (ms), in log order
	params      *schema.PolicyParams
	err         error // the last refresh error
}

func newDirectory(l Log) *directory {
	return &directory{log: l, issuers: map[string]*issuerSummary{}, kinds: map[schema.Kind]int{}}
}

// lightEntry is the part of an entry the directory needs; it is decoded
// without validating keys, so that following a large log is cheap.
type lightEntry struct {
	Kind   schema.Kind     `json:"kind"`
	Time   int64           `json:"time"`
	Issuer string          `json:"issuer"`
	Body   json.RawMessage `json:"body"`
}

// update reads the entries beyond the indexed size up to size. A caller
// that finds another refresh under way returns at once (serving the
// slightly older index) unless the directory is still empty.
func (d *directory) update(ctx context.Context, size uint64) error {
	d.mu.RLock()
	have := d.size
	d.mu.RUnlock()
	if have >= size {
		return nil
	}
	if !d.refresh.TryLock() {
		if have > 0 {
			return nil
		}
		d.refresh.Lock()
	}
	defer d.refresh.Unlock()
	d.mu.RLock()
	have = d.size
	d.mu.RUnlock()
	for have < size {
		end := min(size, have+chunk)
		es, err := d.log.Entries(ctx, have, end)
		if err != nil {
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
			return fmt.Errorf("couldn't read entries %d to %d: %w", have, end, err)
		}
		d.mu.Lock()
		added := false
		for i, b := range es {
			if d.apply(have+uint64(i), b) {
				added = true
			}
		}
		if added {
			sort.Strings(d.origins)
		}
		d.size = end
		d.err = nil
		d.mu.Unlock()
		have = end
	}
	return nil
}

// apply indexes entry idx; it reports whether a new origin appeared.
// Entries that do not decode are counted under their kind "" and
// otherwise skipped: the monitor, not the explorer, judges the log.
func (d *directory) apply(idx uint64, b []byte) bool {
	var e lightEntry
	if err := json.Unmarshal(b, &e); err != nil {
		d.kinds[""]++
		return false
	}
	d.kinds[e.Kind]++
	if e.Kind == schema.KindPolicyParams {
		var p schema.PolicyParams
		if json.Unmarshal(e.Body, &p) == nil {
			d.params = &p
		}
		return false
	}
	if !e.Kind.IssuerSigned() || e.Issuer == "" {
		return false
	}
	is := d.issuers[e.Issuer]
	isNew := false
	if is == nil {
		if e.Kind != schema.KindRegistration {
			return false
		}
		is = &issuerSummary{Origin: e.Issuer, FirstTime: e.Time}
		d.issuers[e.Issuer] = is
		d.origins = append(d.origins, e.Issuer)
		isNew = true
	}
	is.Entries++
	is.LastIndex, is.LastTime = idx, e.Time
	switch e.Kind {
	case schema.KindRegistration:
		var r struct {
			Contact string `json:"contact"`
		}
		if json.Unmarshal(e.Body, &r) == nil {
			is.Contact = r.Contact
		}
		is.lower = strings.ToLower(is.Origin + " " + is.Contact)
		is.Registered = idx
	case schema.KindKeyCommitment:
		is.Commitments++
		var c struct {
			Emergency json.RawMessage `json:"emergency"`
		}
		if json.Unmarshal(e.Body, &c) == nil && len(c.Emergency) > 0 && string(c.Emergency) != "null" {
			is.Emergencies++
			d.emergencies = append(d.emergencies, e.Time)
		}
	}
	return isNew
}

// stats are the counts on the home page.
type stats struct {
	Size        uint64
	Issuers     int
	Kinds       map[schema.Kind]int
	Emergencies int // since the given time
	Params      *schema.PolicyParams
}

func (d *directory) stats(since int64) stats {
	d.mu.RLock()
	defer d.mu.RUnlock()
	s := stats{Size: d.size, Issuers: len(d.issuers), Kinds: map[schema.Kind]int{}, Params: d.params}
	for k, n := range d.kinds {
		s.Kinds[k] = n
	}
	i := sort.Search(len(d.emergencies), func(i int) bool { return d.emergencies[i] >= since })
	s.Emergencies = len(d.emergencies) - i
	return s
}

// search returns up to limit issuers whose origin or contact contains q
// (case-insensitively), skipping the first skip matches, and whether
// there are more.
func (d *directory) search(q string, skip, limit int) ([]issuerSummary, bool) {
	q = strings.ToLower(q)
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []issuerSummary
	for _, o := range d.origins {
		is := d.issuers[o]
		if q != "" && !strings.Contains(is.lower, q) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, *is)
	}
	return out, false
}

func (d *directory) issuer(origin string) (issuerSummary, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	is, ok := d.issuers[origin]
	if !ok {
		return issuerSummary{}, false
	}
	return *is, true
}
