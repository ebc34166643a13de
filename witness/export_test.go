package witness

import "github.com/keycommit/keycommit/log/httpguard"

// ReadLimit is the limiter of the witness's GET /<id>/checkpoint and GET
// /, for TestReadInFlightLimit.
func (w *Witness) ReadLimit() *httpguard.Limiter { return w.readLimit }
