package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/ptyhost/ptyhost/core"
)

// recordingContentType is the media type of an asciicast recording.
const recordingContentType = "application/x-asciicast"

// getRecording answers GET /api/v1/sessions/{id}/recording: the session's
// asciicast v2 recording (core.Manager.OpenRecording), as far as it is
// written, whether the session still runs or ended long ago; 404 when it
// has none, or its record is deleted. All it may change is to remove a
// deleted session's recording sooner than the sweep would, so the
// read-only token may download it.
func (h *handler) getRecording(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rc, n, err := h.m.OpenRecording(r.Context(), id)
	if errors.Is(err, core.ErrNoRecording) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", recordingContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.cast"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Debug("sending a recording ended early", "session_id", id, "err", err)
	}
}

// recordSetting reads an environment update's "record": true, false, or
// null (nil: the server's setting).
func recordSetting(raw json.RawMessage) (*bool, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%w: record: want true, false or null, got %s", core.ErrInvalidArgument, raw)
	}
	return &b, nil
}
