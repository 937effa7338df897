package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// The attach endpoints' query parameters: mode, offset and epoch
// (docs/protocol.md, "Attaching"). Each is taken once: a parameter given
// twice is refused (400), as a JSON key given twice is, rather than one
// of its values taken, when a proxy or a log in front may read the other
// (?mode=read&mode=write).

// queryParam returns the value of the query parameter name, and whether
// q has it. A parameter given more than once is ErrInvalidArgument.
func queryParam(q url.Values, name string) (string, bool, error) {
	vals, ok := q[name]
	if len(vals) > 1 {
		return "", true, fmt.Errorf("%w: the query parameter %s is given %d times: give it once", core.ErrInvalidArgument, name, len(vals))
	}
	if !ok {
		return "", false, nil
	}
	return vals[0], true, nil
}

// resumeFrom returns the attach request's offset query parameter, or -1
// when it has none, and its epoch ("" when it has none). An offset that is
// not a decimal integer of 0 or more, or either given twice, is
// ErrInvalidArgument (400).
func resumeFrom(r *http.Request) (int64, string, error) {
	q := r.URL.Query()
	epoch, _, err := queryParam(q, wsproto.EpochParam)
	if err != nil {
		return 0, "", err
	}
	v, ok, err := queryParam(q, wsproto.OffsetParam)
	if err != nil || !ok {
		return -1, epoch, err
	}
	off, err := strconv.ParseInt(v, 10, 64)
	if err != nil || off < 0 {
		return 0, "", fmt.Errorf("%w: %s=%q: want a byte offset, a whole number 0 or more", core.ErrInvalidArgument, wsproto.OffsetParam, v)
	}
	return off, epoch, nil
}

// attachMode returns the attach request's mode query parameter:
// AttachWrite when it has none or "write", AttachRead for "read". Anything
// else, or a mode given twice, is ErrInvalidArgument (400).
func attachMode(r *http.Request) (core.AttachMode, error) {
	v, ok, err := queryParam(r.URL.Query(), wsproto.ModeParam)
	if err != nil {
		return 0, err
	}
	if !ok {
		return core.AttachWrite, nil
	}
	switch v {
	case wsproto.ModeWrite:
		return core.AttachWrite, nil
	case wsproto.ModeRead:
		return core.AttachRead, nil
	default:
		return 0, fmt.Errorf("%w: %s=%q: want %s or %s", core.ErrInvalidArgument, wsproto.ModeParam, v, wsproto.ModeRead, wsproto.ModeWrite)
	}
}

// attachModeOf returns the mode an attach request asks for (attachMode),
// or answers it with an error: 400 for a bad mode, 403 for a write attach
// with the read-only token.
func (h *handler) attachModeOf(w http.ResponseWriter, r *http.Request) (core.AttachMode, bool) {
	mode, err := attachMode(r)
	if err != nil {
		h.fail(w, r, err)
		return 0, false
	}
	if readScope(r) && mode != core.AttachRead {
		writeError(w, http.StatusForbidden, fmt.Sprintf("forbidden: the read-only token attaches with %s=%s only", wsproto.ModeParam, wsproto.ModeRead))
		return 0, false
	}
	return mode, true
}
