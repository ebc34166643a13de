package api

import (
	"encoding/json"
	"net/http"
)

// WriteError writes e as the JSON body of an error response with status
// code: the one way every keycommit HTTP endpoint answers an error (log
// routes, keys bundle and issuer proofs, method and path errors).
func WriteError(w http.ResponseWriter, code int, e *Error) {
	b, err := json.Marshal(e)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"couldn't encode the error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
