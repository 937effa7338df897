package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// The ancestor's client messages.
const (
	compatInput   = "input"
	compatResize  = "resize"
	compatRestart = "restart"
)

// readLoop reads the client's messages until the connection ends. A
// message that is not one of the protocol's is answered with an error
// message; the connection and the session go on.
func (c *compatClient) readLoop(ctx context.Context) {
	var m messageReader
	for {
		typ, tooLarge, err := m.read(c.conn)
		switch {
		case err != nil:
			return
		case tooLarge:
			c.reject(fmt.Sprintf("message too large: the limit is %d bytes; it was dropped", wsproto.MaxInputFrame))
		case typ != websocket.MessageText:
			c.reject(`binary messages are not part of this protocol: send input as {"type":"input","data":"..."}`)
		default:
			c.handle(ctx, m.b.Bytes())
		}
		m.release() // not held until the next message: see wsClient.readLoop
	}
}

// compatClientMessage is any message of the ancestor's client; data's
// shape depends on the type.
type compatClientMessage struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// compatSize is a resize message's data.
type compatSize struct {
	Cols *int `json:"cols"`
	Rows *int `json:"rows"`
}

// handle does what one text message asks.
func (c *compatClient) handle(ctx context.Context, p []byte) {
	var msg compatClientMessage
	if t := bytes.TrimLeft(p, jsonSpace); len(t) > 0 && t[0] != '{' && json.Valid(t) {
		c.reject(`invalid message: not a JSON object; want a JSON object with a "type"`)
		return
	}
	if err := json.Unmarshal(p, &msg); err != nil {
		c.reject(fmt.Sprintf("invalid message: %v; want a JSON object with a \"type\"", wsproto.JSONError(err, &msg)))
		return
	}
	switch msg.Type {
	case compatInput:
		var data *string
		if err := json.Unmarshal(msg.Data, &data); err != nil || data == nil {
			c.reject(`input needs "data", a string`)
			return
		}
		c.input([]byte(*data))
	case compatResize:
		var size *compatSize
		if err := json.Unmarshal(msg.Data, &size); err != nil || size == nil || size.Cols == nil || size.Rows == nil {
			c.reject(`resize needs "data": {"cols": N, "rows": N}, both integers`)
			return
		}
		c.resize(ctx, *size.Cols, *size.Rows)
	case compatRestart:
		// Not in the read loop: a restart may take as long as a spawn
		// does, and meanwhile the loop must read on, the pong of the
		// server's ping included, or the ping times out and the
		// connection ends. The restart itself does not end with the
		// connection (RestartSession). One at a time per connection: a
		// flood of restart messages starts no goroutine each.
		if !c.restarting.CompareAndSwap(false, true) {
			c.reject("restart failed: " + core.ErrRestartInProgress.Error())
			return
		}
		go func() {
			defer c.restarting.Store(false)
			c.restart(context.WithoutCancel(ctx))
		}()
	case "":
		c.reject(`message has no "type"; want input, resize or restart`)
	default:
		c.reject(fmt.Sprintf("unknown message type %q; want input, resize or restart", msg.Type))
	}
}

func (c *compatClient) input(p []byte) {
	if _, err := c.a.Write(p); errors.Is(err, core.ErrReadOnly) {
		c.reject(wsproto.MsgReadOnlyInput)
	} else if err != nil {
		c.reject("input not written: " + err.Error())
	}
}

func (c *compatClient) resize(ctx context.Context, cols, rows int) {
	if err := core.ValidSize(cols, rows); err != nil {
		c.reject("resize rejected: " + err.Error())
		return
	}
	if err := c.a.Resize(ctx, cols, rows); errors.Is(err, core.ErrReadOnly) {
		c.reject(wsproto.MsgReadOnlyResize)
	} else if err != nil {
		c.reject("resize rejected: " + err.Error())
	}
}

// restart restarts the session's program in place, as POST
// /api/v1/sessions/{id}/restart does: the client stays attached and the
// new program's output follows as data.
func (c *compatClient) restart(ctx context.Context) {
	if c.readOnly {
		c.reject("restart refused: this client attached read-only (mode=read)")
		return
	}
	if _, err := c.m.RestartSession(ctx, c.id, core.RestartOptions{}); err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			c.log.Error("compatibility restart failed", "session_id", c.id, "err", err)
		}
		c.reject("restart failed: " + err.Error())
	}
}
