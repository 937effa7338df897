package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// eventsLost is the type of the message that says the stream dropped
// events: the client lists the sessions again.
const eventsLost = "events_lost"

// eventMessage is one message of the events stream (docs/protocol.md,
// "Events").
type eventMessage struct {
	Type       string `json:"type"`
	SessionID  string `json:"session_id,omitempty"`
	Time       string `json:"time,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
	ExitSignal string `json:"exit_signal,omitempty"`
	Error      string `json:"error,omitempty"`
	// Node names the node of a cluster the event happened on; left out on
	// a single server.
	Node string `json:"node,omitempty"`
}

func eventMessageOf(e core.Event) eventMessage {
	if e.Type == core.EventsLost {
		// Another node's events may be missing (the relay reconnected):
		// the same message as for a full buffer, with nothing else.
		return eventMessage{Type: eventsLost}
	}
	m := eventMessage{Type: string(e.Type), SessionID: e.SessionID, Time: e.Time.UTC().Format(time.RFC3339Nano), Node: e.Node}
	if e.Exit != nil {
		code := e.Exit.Code
		m.ExitCode, m.ExitSignal = &code, e.Exit.Signal
	}
	if e.Err != nil {
		m.Error = e.Err.Error()
	}
	return m
}

// events serves GET /api/v1/events: a WebSocket that streams the
// sessions' lifecycle events as JSON text messages (docs/protocol.md,
// "Events"). It is a GET that changes nothing, so the read-only token may
// subscribe; Guard and the token checks have run already.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if !upgrading(w, r) {
		return
	}
	// Subscribe before the upgrade is answered: a client that lists the
	// sessions once the socket is open misses no event in between.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	evs := h.m.Subscribe(ctx)
	// Accept's origin check stays as a second line behind Guard's, as on
	// the attach endpoint.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{wsproto.EventsSubprotocol},
		OriginPatterns: h.opts.AllowedOrigins,
	})
	if err != nil {
		// Accept has answered the request already.
		return
	}
	defer conn.CloseNow()
	// Client messages are streamed into the discard whatever their size:
	// no limit protects any memory.
	conn.SetReadLimit(-1)

	// The reader discards what the client sends (see serveConn).
	h.serveConn(ctx, conn, func(ctx context.Context) { discardMessages(ctx, conn) },
		func(ctx context.Context) { h.streamEvents(ctx, conn, evs) }, nil)
}

// streamEvents writes evs to conn until either ends. When evs closes (the
// manager stopped) it closes conn with 1012 when the sessions go on for the
// next server (Detach), else 1001; a client reconnects after either.
func (h *handler) streamEvents(ctx context.Context, conn *websocket.Conn, evs <-chan core.Event) {
	for {
		var e core.Event
		var ok bool
		select {
		case e, ok = <-evs:
		case <-ctx.Done():
			return
		}
		if !ok {
			if h.m.Detached() {
				_ = conn.Close(core.CloseRestart, core.CloseReasonRestart)
			} else {
				_ = conn.Close(core.CloseGoingAway, core.CloseReasonShutdown)
			}
			return
		}
		msg := eventMessageOf(e)
		if mayHaveLost(evs) {
			// The bus drops an event for a subscriber whose buffer is
			// full, and says so to nobody but a metric. What is buffered
			// is older than what was dropped: discard it and tell the
			// client to list the sessions again; the events after that
			// are newer than its list.
			drain(evs)
			msg = eventMessage{Type: eventsLost}
		}
		if err := h.writeEvent(ctx, conn, msg); err != nil {
			return
		}
	}
}

// mayHaveLost reports, right after a receive from evs, whether the bus may
// have dropped an event for it. The bus drops only when the buffer is
// full, and only this subscriber's receives empty it: after a drop the
// next receive leaves at least cap-1 events behind. So this is true after
// every drop, and also (harmlessly: the client lists again) when the
// buffer merely filled up.
func mayHaveLost(evs <-chan core.Event) bool {
	return len(evs) >= cap(evs)-1
}

// drain discards the events buffered in evs.
func drain(evs <-chan core.Event) {
	for {
		select {
		case _, ok := <-evs:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// writeEvent writes one message, giving up after the write timeout: a
// client that takes longer to accept it is disconnected.
func (h *handler) writeEvent(ctx context.Context, conn *websocket.Conn, msg eventMessage) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.WriteTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}

// discardMessages reads and drops the client's messages until the
// connection ends.
func discardMessages(ctx context.Context, conn *websocket.Conn) {
	for {
		_, r, err := conn.Reader(ctx)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// authScopeAnswer is the body of GET /api/v1/auth.
type authScopeAnswer struct {
	TokenRequired bool   `json:"token_required"`
	Scope         string `json:"scope"`
}

// authScope serves GET /api/v1/auth: what the request's token allows,
// {"token_required": bool, "scope": "full"|"read"}. A request without the
// right token never gets here on a server with one (401), so a page learns
// both whether to ask for a token and whether the one it has is good.
func (h *handler) authScope(w http.ResponseWriter, r *http.Request) {
	scope := "full"
	if readScope(r) {
		scope = "read"
	}
	writeJSON(w, http.StatusOK, authScopeAnswer{TokenRequired: h.opts.Token != "", Scope: scope})
}
