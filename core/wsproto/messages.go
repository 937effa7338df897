package wsproto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// Subprotocol is the WebSocket subprotocol of the attach endpoint.
const Subprotocol = "ptyhost.v1"

// EventsSubprotocol is the WebSocket subprotocol of the events stream,
// GET /api/v1/events (docs/protocol.md).
const EventsSubprotocol = "ptyhost.events.v1"

// TokenSubprotocolPrefix begins the WebSocket subprotocol that carries a
// browser's token: the prefix, then the token in unpadded base64url
// (TokenSubprotocol). A browser cannot set Authorization on a WebSocket,
// and a token in the URL's query ends up in proxies' access logs; the
// Sec-WebSocket-Protocol header does not. The server never chooses it.
const TokenSubprotocolPrefix = "ptyhost.token."

// TokenSubprotocol is the subprotocol that carries token.
func TokenSubprotocol(token string) string {
	return TokenSubprotocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))
}

// Control message types: the "type" field of a text frame.
const (
	TypeHello  = "hello"  // server → client, always first
	TypeResize = "resize" // both ways: the terminal's size changed / change it
	TypeReset  = "reset"  // server → client: output was lost, replay follows
	TypeModes  = "modes"  // server → client: terminal modes to restore before a replay
	TypeExit   = "exit"   // server → client: the process ended
	TypeError  = "error"  // server → client: the client's last message was rejected
)

// Close codes the server ends a connection with, with WebSocket semantics.
const (
	CloseNormal       = 1000 // session destroyed, or exited
	CloseGoingAway    = 1001 // server shutting down, ending the session
	CloseRestart      = 1012 // server stopping, the session goes on: reconnect
	ClosePluginFailed = 4010 // the session's plugin crashed
	// CloseTryAgainLater: the session took another client in the moment
	// between the upgrade's check and the attach (the check itself answers
	// HTTP 409), reason CloseReasonTooManyClients; or a viewer gave its
	// place to a writer, reason CloseReasonDisplaced.
	CloseTryAgainLater = 1013
	// CloseNodeLost: in a cluster, the node that runs the session is
	// lost (reason CloseReasonNodeLost); attach again, with backoff, and
	// resume once it is back.
	CloseNodeLost = 4503
)

// Close reasons the server sends with the close codes.
const (
	CloseReasonDestroyed     = "Session destroyed"
	CloseReasonExited        = "Session exited"
	CloseReasonShutdown      = "Server shutting down"
	CloseReasonRestart       = "Server restarting; the session goes on"
	CloseReasonPluginCrashed = "Plugin crashed"
	// CloseReasonTooManyClients comes with CloseTryAgainLater.
	CloseReasonTooManyClients = "Session has too many clients"
	// CloseReasonDisplaced comes with CloseTryAgainLater, to a viewer
	// whose place a writer took: the session had as many clients as it
	// allows.
	CloseReasonDisplaced = "A writing client took this viewer's place"
	// CloseReasonNodeLost comes with CloseNodeLost.
	CloseReasonNodeLost = "node_lost"
)

// MaxInputFrame is the largest client message the server accepts; a
// larger one is answered with an error message and dropped whole.
const MaxInputFrame = 1 << 20

// OffsetParam is the attach endpoint's query parameter that resumes at an
// absolute output offset (a decimal integer, 0 or more).
const OffsetParam = "offset"

// EpochParam is the attach endpoint's query parameter that a client
// resuming at an offset gives back the hello's epoch in: if the session
// under the id is another one by now (created again), the offset counts
// for nothing and the client gets a reset and the replay.
const EpochParam = "epoch"

// ModeParam is the attach endpoint's query parameter that says what the
// client may do: ModeWrite (the default) or ModeRead.
const ModeParam = "mode"

// Attach modes, the values of ModeParam.
const (
	// ModeWrite: the client may send input and resize the terminal.
	ModeWrite = "write"
	// ModeRead: the client receives output, resizes and the exit; its
	// input and resizes are refused, each with an error message.
	ModeRead = "read"
)

// Error messages the server answers a read-only client's input and
// resizes with.
const (
	MsgReadOnlyInput  = "input refused: this client attached read-only (mode=read)"
	MsgReadOnlyResize = "resize refused: this client attached read-only (mode=read)"
)

// AttachPath is the path of session id's attach endpoint, to append to the
// server's ws:// or wss:// base URL.
func AttachPath(id string) string {
	return "/api/v1/sessions/" + url.PathEscape(id) + "/attach"
}

// Hello is the server's first message: the session, its terminal size and
// the absolute output offset at which the replay starts.
type Hello struct {
	SessionID string
	// Epoch tells this session from another created under the same id:
	// a client resuming gives it back (EpochParam). Empty from a server
	// older than it.
	Epoch  string
	Cols   int
	Rows   int
	Offset int64
	// End is the session's output offset when the client attached: the
	// bytes from Offset to End are history (the replay, or what a resume
	// missed), those from End on new output. A terminal emulator should
	// not answer the queries (device attributes, cursor position, ...)
	// in history: the program asked them long ago, and the answers would
	// reach it as typed input. Equal to Offset from a server older than
	// it (the field absent).
	End int64
}

// MarshalJSON encodes h as a "hello" message.
func (h Hello) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type      string `json:"type"`
		SessionID string `json:"session_id"`
		Epoch     string `json:"epoch,omitempty"`
		Cols      int    `json:"cols"`
		Rows      int    `json:"rows"`
		Offset    int64  `json:"offset"`
		End       int64  `json:"end"`
	}{TypeHello, h.SessionID, h.Epoch, h.Cols, h.Rows, h.Offset, max(h.End, h.Offset)})
}

// Resize is the terminal's size: from the server, it changed; from a
// client, change it (cols and rows in 1..1000).
type Resize struct {
	Cols int
	Rows int
}

// MarshalJSON encodes r as a "resize" message.
func (r Resize) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type string `json:"type"`
		Cols int    `json:"cols"`
		Rows int    `json:"rows"`
	}{TypeResize, r.Cols, r.Rows})
}

// Reset tells a client that fell behind that output it had not received
// was dropped: reset the terminal; the replay from Offset follows. End,
// as the hello's, is where the replay's history ends.
type Reset struct {
	Offset int64
	End    int64
}

// MarshalJSON encodes r as a "reset" message.
func (r Reset) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type   string `json:"type"`
		Offset int64  `json:"offset"`
		End    int64  `json:"end"`
	}{TypeReset, r.Offset, max(r.End, r.Offset)})
}

// Modes carries the escape sequences that take a fresh terminal into the
// modes in force where a replay begins (alternate screen, cursor
// visibility, bracketed paste, mouse reporting, application cursor keys).
// It comes right after the hello or a reset, before the replay's output,
// when those modes are not a fresh terminal's. A terminal writes Data as
// it writes output; it is not output and takes up no offsets.
type Modes struct {
	Data string
}

// MarshalJSON encodes m as a "modes" message.
func (m Modes) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}{TypeModes, m.Data})
}

// Exit says the process ended; every output byte came before it. Signal
// names the signal that killed it, if any; Reason explains an end the
// process did not choose (such as "plugin_crashed").
type Exit struct {
	Code   int
	Signal string
	Reason string
}

// MarshalJSON encodes e as an "exit" message.
func (e Exit) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type   string `json:"type"`
		Code   int    `json:"code"`
		Signal string `json:"signal"`
		Reason string `json:"reason"`
	}{TypeExit, e.Code, e.Signal, e.Reason})
}

// Error says the client's last message was rejected, and why; nothing
// else changed.
type Error struct {
	Message string
}

// MarshalJSON encodes e as an "error" message.
func (e Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type    string `json:"type"`
		Message string `json:"message,omitempty"`
	}{TypeError, e.Message})
}

// Message is a decoded control message of any type; Type says which fields
// it carries. Fields a message does not carry are zero. A client should
// ignore types it does not know: a newer server may send more.
type Message struct {
	Type      string `json:"type"`
	SessionID string `json:"session_id"` // hello
	Epoch     string `json:"epoch"`      // hello
	Cols      int    `json:"cols"`       // hello, resize
	Rows      int    `json:"rows"`       // hello, resize
	Offset    int64  `json:"offset"`     // hello, reset, restarted
	End       int64  `json:"end"`        // hello, reset
	Data      string `json:"data"`       // modes
	Code      int    `json:"code"`       // exit
	Signal    string `json:"signal"`     // exit
	Reason    string `json:"reason"`     // exit
	Message   string `json:"message"`    // error
}

// ParseMessage decodes one control message (a text frame's payload).
func ParseMessage(p []byte) (Message, error) {
	var m Message
	if err := decodeControl(p, &m); err != nil {
		return Message{}, err
	}
	if m.Type == "" {
		return Message{}, errors.New(`control message has no "type"`)
	}
	return m, nil
}

// Hello returns m's hello fields.
func (m Message) Hello() Hello {
	return Hello{SessionID: m.SessionID, Epoch: m.Epoch, Cols: m.Cols, Rows: m.Rows, Offset: m.Offset, End: max(m.End, m.Offset)}
}

// Exit returns m's exit fields.
func (m Message) Exit() Exit { return Exit{Code: m.Code, Signal: m.Signal, Reason: m.Reason} }

// ParseClientMessage decodes a control message a client sent and checks
// that it is of a type a client may send (today only resize) with the
// fields that type needs: a resize has integer cols and rows. It does not
// check their range. The error is what a server tells the client.
func ParseClientMessage(p []byte) (Resize, error) {
	var msg struct {
		Type string `json:"type"`
		Cols *int   `json:"cols"`
		Rows *int   `json:"rows"`
		// Ignored, but type-checked as before: a client may echo the
		// server's fields, and "code":"x" is still refused.
		Offset  *int64 `json:"offset"`
		Code    *int   `json:"code"`
		Signal  string `json:"signal"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if err := decodeControl(p, &msg); err != nil {
		return Resize{}, err
	}
	switch msg.Type {
	case TypeResize:
		if msg.Cols == nil || msg.Rows == nil {
			return Resize{}, errors.New("resize needs integer cols and rows")
		}
		return Resize{Cols: *msg.Cols, Rows: *msg.Rows}, nil
	case "":
		return Resize{}, errors.New(`control message has no "type"`)
	default:
		return Resize{}, fmt.Errorf("unknown control message type %q", msg.Type)
	}
}
