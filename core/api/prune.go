package api

import "net/http"

// pruneRequest is the body of POST /api/v1/sessions/prune: an empty body
// or {}. It has no fields yet; an unknown one is 400, so that a client
// asking for a selection this server does not know deletes nothing.
type pruneRequest struct{}

// pruneResponse answers POST /api/v1/sessions/prune.
type pruneResponse struct {
	// Deleted is how many ended sessions' records were deleted.
	Deleted int `json:"deleted"`
}

// pruneSessions deletes the records of every ended session (TERMINATED or
// ERROR), as retention does past its period (Manager.PruneEnded), and
// answers 200 with how many. It is a POST, not a GET: it changes state,
// and Guard lets no page of another origin send it.
func (h *handler) pruneSessions(w http.ResponseWriter, r *http.Request) {
	var req pruneRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	n, err := h.m.PruneEnded(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pruneResponse{Deleted: n})
}
