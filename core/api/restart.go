package api

import (
	"errors"
	"net/http"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// restartRequest is the body of POST /api/v1/sessions/{id}/restart; an
// empty body restarts the session as it was created.
type restartRequest struct {
	// Command, when present, replaces the session's argv; [] means the
	// environment's shell.
	Command []string `json:"command"`
	// Env, when present, replaces the session's extra variables whole.
	Env map[string]string `json:"env"`
}

// restartSession restarts a running session in place (Manager.
// RestartSession) and answers 200 with its record. A session that has
// ended (exited, destroyed, or ended under an earlier server), or is being
// restarted, is 409. A session taken up from a
// previous server is restarted from its record (its stored command and
// working directory; no env or input unless the request sends env).
func (h *handler) restartSession(w http.ResponseWriter, r *http.Request) {
	var req restartRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	rec, err := h.m.RestartSession(r.Context(), r.PathValue("id"), core.RestartOptions{Command: req.Command, Env: req.Env})
	switch {
	case errors.Is(err, shared.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}
