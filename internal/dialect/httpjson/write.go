package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
)

// Write sends v as JSON with the given status and content type. Responses
// of the dialects may carry a plaintext token, so no cache may keep them.
func Write(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only a programming error gets here: the dialects' response
		// types always marshal.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Sent flushes what w holds to the client and tells whether that worked
// as far as the server can tell (a writer that cannot flush counts as
// sent: its answer goes when the handler returns). A create calls the
// store's Issued.Delivered only then: a client that is gone leaves the
// create retryable.
func Sent(w http.ResponseWriter) bool {
	err := http.NewResponseController(w).Flush()
	return err == nil || errors.Is(err, http.ErrNotSupported)
}

// NoContent answers 204.
func NoContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
