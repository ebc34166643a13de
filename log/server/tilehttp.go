package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// writeTile writes hash tile or entry bundle t with the headers a CDN
// needs: every tile path names its width, so full and partial tiles alike
// never change (C2SP tlog-tiles) and are immutable; an ETag (so a
// conditional request gets 304); entry bundles gzipped on
// Accept-Encoding: gzip (compressed once, deterministically, so every
// client gets the same bytes), with Vary: Accept-Encoding.
func (s *Server) writeTile(w http.ResponseWriter, r *http.Request, t tlog.Tile, d []byte) {
	sum := sha256.Sum256(d)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag)
	entries := t.L == tiles.EntriesLevel
	if entries {
		h.Set("Vary", "Accept-Encoding")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if entries && bundle.AcceptsGzip(r) {
		gz, ok := s.gz.Get(t)
		if !ok {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			_, _ = zw.Write(d)
			_ = zw.Close()
			gz = buf.Bytes()
			s.gz.Add(t, gz)
		}
		h.Set("Content-Encoding", "gzip")
		d = gz
	}
	h.Set("Content-Length", strconv.Itoa(len(d)))
	_, _ = w.Write(d)
}
