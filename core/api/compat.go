package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// This file and the other compat_*.go files serve the ancestor's JSON
// WebSocket protocol over a session, so that its web client works
// unchanged (docs/protocol.md, "Compatibility endpoint"). They translate
// an Attachment's frames to its messages and its messages to an
// Attachment's calls; the session knows nothing of them.

// Close codes of the compatibility endpoint besides the main protocol's.
const (
	// closePolicyViolation: the session does not exist.
	closePolicyViolation = 1008
	// closeInternalError: the plugin crashed, or the server failed.
	closeInternalError = 1011
)

// maxCloseReason is the longest close reason WebSocket allows, in bytes.
const maxCloseReason = 123

// compatAttach serves /ws/claude/{id} and /ws/terminal/{id}: the
// ancestor's JSON WebSocket protocol over a session (docs/protocol.md,
// "Compatibility endpoint").
//
// Unlike the main endpoint, which answers a missing or ended session with
// an HTTP status, it accepts the upgrade and says so with a close code, as
// the ancestor did: a browser's WebSocket sees no HTTP status.
func (h *handler) compatAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	mode, ok := h.attachModeOf(w, r)
	if !ok {
		return
	}
	// Guard has checked Host, Origin and Sec-Fetch-Site already; Accept's
	// own origin check stays as a second line (see attach). The ancestor's
	// client offers no subprotocol, and none is chosen.
	if !upgrading(w, r) {
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.opts.AllowedOrigins})
	if err != nil {
		// Accept has answered the request already.
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	a, err := h.m.AttachWith(ctx, id, core.AttachOptions{Mode: mode})
	if err != nil {
		h.compatRefuse(ctx, conn, r, id, err)
		return
	}
	defer a.Close()
	conn.SetReadLimit(hardReadLimit)

	c := &compatClient{
		wsClient: wsClient{conn: conn, a: a, writeTimeout: h.opts.WriteTimeout},
		m:        h.m,
		log:      h.log,
		id:       id,
		readOnly: mode == core.AttachRead,
	}
	h.serveConn(ctx, conn, c.readLoop, c.writeLoop, a.Close)
}

// compatRefuse closes a connection whose attach failed with err, with the
// close code the ancestor's client expects.
func (h *handler) compatRefuse(ctx context.Context, conn *websocket.Conn, r *http.Request, id string, err error) {
	switch {
	case errors.Is(err, core.ErrTooManyClients):
		_ = conn.Close(wsproto.CloseTryAgainLater, wsproto.CloseReasonTooManyClients)
	case errors.Is(err, core.ErrClosed):
		// The server is stopping: the client tries again, as after any
		// stop; the code says whether the session outlives it.
		if h.m.Detached() {
			_ = conn.Close(core.CloseRestart, core.CloseReasonRestart)
		} else {
			_ = conn.Close(core.CloseGoingAway, core.CloseReasonShutdown)
		}
	case errors.Is(err, core.ErrSessionNotFound):
		h.compatNotRunning(ctx, conn, r, id)
	default:
		h.log.Error("compatibility attach failed", "path", r.URL.Path, "err", err)
		_ = conn.Close(closeInternalError, closeReason("attach failed: "+err.Error()))
	}
}

// compatNotRunning closes a connection to a session that is not running:
// an ended one with its exit and 1000, as if the client had been there
// when it ended; one the store does not know with 1008; one recorded
// node_lost while its node is away (lostOwner) with CloseNodeLost and no
// exit, since that node may come back with it.
func (h *handler) compatNotRunning(ctx context.Context, conn *websocket.Conn, r *http.Request, id string) {
	rec, err := h.m.GetSession(ctx, id)
	switch {
	case errors.Is(err, core.ErrSessionNotFound):
		_ = conn.Close(closePolicyViolation, closeReason("session not found: "+id))
		return
	case err != nil:
		h.log.Error("compatibility attach: reading the session's record failed", "path", r.URL.Path, "err", err)
		_ = conn.Close(closeInternalError, closeReason("cannot read the session's record: "+err.Error()))
		return
	case rec.Status != core.StatusTerminated && rec.Status != core.StatusError:
		// Still starting, or a record no server has taken up: there is
		// nothing to attach to (yet).
		_ = conn.Close(closePolicyViolation, closeReason(fmt.Sprintf("session not found: %s (status %s; try again later)", id, rec.Status)))
		return
	}
	if _, lost := h.lostOwner(ctx, rec); lost {
		_ = conn.Close(CloseNodeLost, CloseReasonNodeLost)
		return
	}
	// -1, the code core gives an end it does not know the code of.
	code := -1
	if rec.ExitCode != nil {
		code = *rec.ExitCode
	}
	c := &wsClient{conn: conn, writeTimeout: h.opts.WriteTimeout}
	if err := c.writeJSON(ctx, compatExit(code, rec.ExitSignal)); err != nil {
		return
	}
	_ = conn.Close(core.CloseNormal, core.CloseReasonExited)
}

// closeReason cuts reason to what a close frame holds, at a character
// boundary.
func closeReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// compatOutput is the ancestor's "data" or "scrollback" message: output
// as text.
type compatOutput struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// compatError is the ancestor's "error" message.
type compatError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// compatExitMessage is the ancestor's exit message: the code and the
// number of the signal that killed the process, or null.
type compatExitMessage struct {
	Type     string `json:"type"`
	ExitCode int    `json:"exitCode"`
	Signal   *int   `json:"signal"`
}

func compatExit(code int, signal string) compatExitMessage {
	msg := compatExitMessage{Type: "exit", ExitCode: code}
	if n := signalNumber(signal); n > 0 {
		msg.Signal = &n
	}
	return msg
}
