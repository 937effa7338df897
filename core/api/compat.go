package api

import "net/http"

// compatAttach serves /ws/claude/{id} and /ws/terminal/{id}: the
// ancestor's JSON WebSocket protocol over a session (docs/protocol.md,
// "Compatibility endpoint").
func (h *handler) compatAttach(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not implemented yet")
}
