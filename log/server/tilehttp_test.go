package server_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sqlitestore"
)

func getWith(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestTileCaching: partial tiles and entry bundles, whose paths name their
// width, are immutable like full ones, carry an ETag honoured by
// If-None-Match, and entry bundles are gzipped on request, the same bytes
// for every client, with Vary: Accept-Encoding.
func TestTileCaching(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := logtest.Start(t, store, nil)
	_, cp := get(t, l.URL+api.PathCheckpoint)
	n, err := strconv.Atoi(strings.Split(cp, "\n")[1])
	if err != nil || n == 0 || n >= 256 {
		t.Fatalf("checkpoint %q", cp)
	}
	for _, p := range []string{fmt.Sprintf("/tile/0/000.p/%d", n), fmt.Sprintf("/tile/entries/000.p/%d", n)} {
		resp, body := getWith(t, l.URL+p, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("ETag") == "" {
			t.Fatalf("%s: status %d headers %v", p, resp.StatusCode, resp.Header)
		}
		if r, _ := getWith(t, l.URL+p, map[string]string{"If-None-Match": resp.Header.Get("ETag")}); r.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match: status %d", p, r.StatusCode)
		}
		if !strings.Contains(p, "entries") {
			continue
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", p, resp.Header.Get("Vary"))
		}
		r1, gz1 := getWith(t, l.URL+p, map[string]string{"Accept-Encoding": "gzip"})
		_, gz2 := getWith(t, l.URL+p, map[string]string{"Accept-Encoding": "br, gzip"})
		if r1.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(gz1, gz2) {
			t.Fatalf("%s: gzip: encoding %q, same bytes %v", p, r1.Header.Get("Content-Encoding"), bytes.Equal(gz1, gz2))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz1))
		if err != nil {
			t.Fatal(err)
		}
		if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, body) {
			t.Errorf("%s: gzipped entry bundle differs", p)
		}
	}
}
