package monitortest

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/keycommit/keycommit/schema"
)

// CommitBody appends a key commitment for origin with exactly body, signed
// for g's log: for tests of several logs, where an issuer commits the same
// keys (body taken from another log's entry) or different ones to each.
// It does not change the keys Commit would add next.
func (g *Gen) CommitBody(origin string, body *schema.KeyCommitment) (uint64, error) {
	if g.issuers[origin] == nil {
		return 0, fmt.Errorf("issuer %s is not registered with the generator", origin)
	}
	e, err := g.signed(origin, schema.KindKeyCommitment, body)
	if err != nil {
		return 0, err
	}
	return g.Append(e)
}

// CosignedHandler serves l (see Log.ServeHTTP) with cosign(text), for
// example witness cosignature lines, appended to the signed checkpoint
// that GET /checkpoint answers with (text is the checkpoint body, as
// cosignatures sign it): a log that serves its cosigned checkpoint, as a
// keycommit log does.
func CosignedHandler(l *Log, cosign func(text []byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/checkpoint" {
			l.ServeHTTP(w, r)
			return
		}
		signed, err := l.Checkpoint()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		text := signed[:bytes.Index(signed, []byte("\n\n"))+1]
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(append(signed, cosign(text)...))
	})
}
