package api

import "net/http"

// events serves GET /api/v1/events: a WebSocket that streams the
// sessions' lifecycle events as JSON text messages (docs/protocol.md,
// "Events").
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not implemented yet")
}

// authScope serves GET /api/v1/auth: what the request's token allows,
// {"token_required": bool, "scope": "full"|"read"}.
func (h *handler) authScope(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not implemented yet")
}
