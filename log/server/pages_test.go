package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
)

// historyReader is a backend whose issuer has a long history: the even
// indexes 0, 2, …, 2(n-1).
type historyReader struct {
	*storage.Memory
	n int
}

func (r historyReader) IssuerEntries(context.Context, string) ([]uint64, error) {
	out := make([]uint64, r.n)
	for i := range out {
		out[i] = 2 * uint64(i)
	}
	return out, nil
}

// statusLog knows one issuer.
type statusLog struct{ blockingLog }

func (statusLog) Status(origin string) (*policy.IssuerStatus, bool) {
	return &policy.IssuerStatus{Origin: origin}, origin == "https://issuer.example"
}

// TestIssuerHistoryPages: GET /v1/issuers/<origin> answers one bounded
// page of the issuer's entry indexes: DefaultIssuerEntriesPage without
// ?limit, at most MaxIssuerEntriesPage (a larger limit, 0 or a bad
// cursor is 400), those after ?after=<index>, with Link rel="next" to the
// next page while more follow and none on the last. Following the links
// from the first page gives the whole history once, in order, and so
// does log/client's Issuer. (Drop the truncation in server.issuer and the
// first page has all 2,500 entries.)
func TestIssuerHistoryPages(t *testing.T) {
	const n = 2500
	all, _ := historyReader{n: n}.IssuerEntries(t.Context(), "")
	srv, err := server.New(server.Config{Reader: historyReader{storage.NewMemory(), n}, Log: &statusLog{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	base := api.PathIssuers + url.PathEscape("https://issuer.example")
	get := func(path string) (int, http.Header, *api.Issuer) {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var res api.Issuer
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, b)
			}
		}
		return resp.StatusCode, resp.Header, &res
	}

	for _, c := range []struct {
		query string
		code  int
		first []uint64 // the page's first indexes
		len   int
		next  string
	}{
		{"", 200, all[:1], api.DefaultIssuerEntriesPage, "198"},
		{"?limit=1000", 200, all[:1], api.MaxIssuerEntriesPage, "1998"},
		{"?limit=1001", 400, nil, 0, ""},
		{"?limit=0", 400, nil, 0, ""},
		{"?limit=x", 400, nil, 0, ""},
		{"?after=-1", 400, nil, 0, ""},
		{"?after=7&limit=2", 200, []uint64{8, 10}, 2, "10"},
		{"?after=8&limit=2", 200, []uint64{10, 12}, 2, "12"},
		{"?after=4994&limit=5", 200, []uint64{4996, 4998}, 2, ""},
		{"?after=4998", 200, nil, 0, ""},
	} {
		code, h, res := get(base + c.query)
		if code != c.code {
			t.Errorf("GET %s: %d, want %d", c.query, code, c.code)
			continue
		}
		if code != 200 {
			continue
		}
		if len(res.Entries) != c.len || !slices.Equal(res.Entries[:min(len(c.first), len(res.Entries))], c.first) || res.Entries == nil {
			t.Errorf("GET %s: %d entries from %v, want %d from %v", c.query, len(res.Entries), res.Entries[:min(3, len(res.Entries))], c.len, c.first)
		}
		if got := httpguard.NextPage(h); got != c.next {
			t.Errorf("GET %s: next page after %q, want %q (Link %q)", c.query, got, c.next, h.Get("Link"))
		}
	}

	// Following Link rel="next" from the first page, as written (the
	// origin stays path-escaped), walks the history once.
	var walked []uint64
	path := api.PathIssuers + "https://issuer.example?limit=300"
	for pages := 0; path != ""; pages++ {
		if pages > n/300+1 {
			t.Fatal("the pages do not end")
		}
		code, h, res := get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		walked = append(walked, res.Entries...)
		path = ""
		if l := h.Get("Link"); l != "" {
			u, err := url.Parse(l[1 : len(l)-len(`>; rel="next"`)])
			if err != nil {
				t.Fatal(err)
			}
			path = u.String()
		}
	}
	if !slices.Equal(walked, all) {
		t.Errorf("walked %d entries, want the %d of the history in order", len(walked), len(all))
	}

	_, vkey, err := checkpoint.GenerateKey("keycommit.example/log/test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(hs.URL, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Issuer(t.Context(), "https://issuer.example")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Entries, all) || res.Status.Origin != "https://issuer.example" {
		t.Errorf("client.Issuer: %d entries, want %d", len(res.Entries), len(all))
	}
}

// longReader is a backend with a checkpoint of size n whose entry i is
// "entry i".
type longReader struct {
	*storage.Memory
	n uint64
}

func (r longReader) Checkpoint(context.Context) (uint64, []byte, error) {
	return r.n, []byte("checkpoint"), nil
}

func (r longReader) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	var out [][]byte
	for i := start; i < end; i++ {
		out = append(out, []byte("entry "+strconv.FormatUint(i, 10)))
	}
	return out, nil
}

// TestEntriesPages: GET /v1/entries?start=&end= answers at most
// MaxEntriesPerRequest entries (one more is 400; start not below end is
// 400; an end beyond the tree 404); the cursor is start, and while the
// page ends before the tree does, Link rel="next" names the next page of
// the same size (the last one cut at the tree's size). Following it from
// start=0 reads every entry once. (Drop the MaxEntriesPerRequest check
// and the 1,001-entry page is answered.)
func TestEntriesPages(t *testing.T) {
	const n = 2500
	srv, err := server.New(server.Config{Reader: longReader{storage.NewMemory(), n}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	get := func(path string) (int, string, *api.Entries) {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res api.Entries
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
				t.Fatal(err)
			}
		}
		next := ""
		if l := resp.Header.Get("Link"); l != "" {
			next = l[1 : len(l)-len(`>; rel="next"`)]
		}
		return resp.StatusCode, next, &res
	}
	for _, c := range []struct {
		query string
		code  int
		len   int
		next  string
	}{
		{"start=0&end=1000", 200, 1000, "/v1/entries?end=2000&start=1000"},
		{"start=0&end=1001", 400, 0, ""},
		{"start=5&end=5", 400, 0, ""},
		{"start=2000&end=2500", 200, 500, ""},
		{"start=2000&end=2501", 404, 0, ""},
		{"start=1500&end=2400", 200, 900, "/v1/entries?end=2500&start=2400"},
	} {
		code, next, res := get(api.PathEntries + "?" + c.query)
		if code != c.code || len(res.Entries) != c.len || next != c.next {
			t.Errorf("GET ?%s: %d, %d entries, next %q; want %d, %d, %q", c.query, code, len(res.Entries), next, c.code, c.len, c.next)
		}
	}
	var got uint64
	for path := api.PathEntries + "?start=0&end=700"; path != ""; {
		code, next, res := get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		for _, e := range res.Entries {
			if e.Index != got || string(e.Data) != "entry "+strconv.FormatUint(got, 10) {
				t.Fatalf("entry %d: index %d %q", got, e.Index, e.Data)
			}
			got++
		}
		path = next
	}
	if got != n {
		t.Errorf("read %d entries, want %d", got, n)
	}
}
