package api

import "net/http"

// stopRequest is the body of POST /api/v1/server/stop; an empty body is
// {"hang_up": false}.
type stopRequest struct {
	// HangUp asks for every session to be hung up, instead of left
	// running for the next server.
	HangUp bool `json:"hang_up"`
}

// stopServer asks the server to stop (Options.Stop) and answers 202 with
// whether the stop hangs the sessions up. The server stops after the
// answer is sent: the request is answered like any other while it
// shuts down.
func (h *handler) stopServer(w http.ResponseWriter, r *http.Request) {
	var req stopRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	hangsUp := h.opts.Stop(req.HangUp)
	h.log.Info("stop requested over the API", "hang_up", hangsUp, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, stopRequest{HangUp: hangsUp})
}
