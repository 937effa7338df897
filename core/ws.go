package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Subprotocol is the WebSocket subprotocol of the attach endpoint.
const Subprotocol = "ptyhost.v1"

const (
	// maxInputFrame is the largest client message accepted; a larger one
	// is answered with an error message and dropped whole.
	maxInputFrame = 1 << 20
	// hardReadLimit closes the connection: nobody pastes 64 MiB.
	hardReadLimit = 64 << 20
	// outputFrameSize is the most output bytes sent in one binary message.
	outputFrameSize = 64 << 10
	// DefaultWriteTimeout bounds one message write: a client that accepts
	// nothing for this long is disconnected.
	DefaultWriteTimeout = 30 * time.Second
)

type controlMessage struct {
	Type    string `json:"type"`
	Cols    *int   `json:"cols,omitempty"`
	Rows    *int   `json:"rows,omitempty"`
	Offset  *int64 `json:"offset,omitempty"`
	Code    *int   `json:"code,omitempty"`
	Signal  string `json:"signal,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type helloMessage struct {
	Type      string `json:"type"`
	SessionID string `json:"session_id"`
	Cols      int    `json:"cols"`
	Rows      int    `json:"rows"`
	Offset    int64  `json:"offset"`
}

type exitMessage struct {
	Type   string `json:"type"`
	Code   int    `json:"code"`
	Signal string `json:"signal"`
	Reason string `json:"reason"`
}

func (h *handler) attach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// Answer a missing session with an HTTP status before upgrading, and
	// attach only once the upgrade (and its origin check) succeeded, so a
	// refused upgrade never counts as a client.
	if err := h.m.attachable(id); err != nil {
		h.attachFailed(w, r, id, err)
		return
	}
	// Guard has checked Host, Origin and Sec-Fetch-Site already. Accept's
	// own check, which stays as a second line, compares Origin with Host
	// only, and a DNS-rebinding page controls both.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: h.opts.AllowedOrigins,
	})
	if err != nil {
		// Accept has answered the request already.
		return
	}
	defer conn.CloseNow()
	a, err := h.m.Attach(r.Context(), id)
	if err != nil {
		// It ended in between.
		_ = conn.Close(CloseNormal, CloseReasonDestroyed)
		return
	}
	defer a.Close()
	conn.SetReadLimit(hardReadLimit)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &wsClient{conn: conn, a: a, writeTimeout: h.opts.WriteTimeout}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		c.readLoop(ctx)
	}()
	c.writeLoop(ctx)
	cancel()
	conn.CloseNow()
	<-readDone
}

// attachFailed answers an attach that found no live session: 410 with the
// exit code when the session has ended, else the error's status.
func (h *handler) attachFailed(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, ErrSessionNotFound) {
		rec, gerr := h.m.store.GetSession(r.Context(), id)
		if gerr == nil {
			h.m.writer.overlay(&rec)
			if rec.Status == StatusTerminated || rec.Status == StatusError {
				writeJSON(w, http.StatusGone, map[string]any{
					"error":     fmt.Sprintf("session %q has ended", id),
					"status":    rec.Status,
					"exit_code": rec.ExitCode,
				})
				return
			}
		}
	}
	h.fail(w, r, err)
}

// wsClient is one WebSocket attached to a session. writeLoop is the only
// writer of the connection; readLoop the only reader.
type wsClient struct {
	conn         *websocket.Conn
	a            *Attachment
	writeTimeout time.Duration
}

func (c *wsClient) write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, typ, p)
}

func (c *wsClient) writeJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.MessageText, b)
}

// writeLoop sends hello, then the attachment's frames, until the
// attachment or the connection ends.
func (c *wsClient) writeLoop(ctx context.Context) {
	h := c.a.Hello()
	if err := c.writeJSON(ctx, helloMessage{
		Type: "hello", SessionID: h.SessionID,
		Cols: int(h.Size.Cols), Rows: int(h.Size.Rows), Offset: h.Offset,
	}); err != nil {
		return
	}
	buf := make([]byte, outputFrameSize)
	for {
		f, err := c.a.Next(ctx, buf)
		if err != nil {
			return
		}

		switch f.Kind {
		case FrameOutput:
			err = c.write(ctx, websocket.MessageBinary, f.Data)
		case FrameResize:
			cols, rows := int(f.Size.Cols), int(f.Size.Rows)
			err = c.writeJSON(ctx, controlMessage{Type: "resize", Cols: &cols, Rows: &rows})
		case FrameReset:
			off := f.Offset
			err = c.writeJSON(ctx, controlMessage{Type: "reset", Offset: &off})
		case FrameError:
			err = c.writeJSON(ctx, controlMessage{Type: "error", Message: f.Message})
		case FrameExit:
			err = c.writeJSON(ctx, exitMessage{Type: "exit", Code: f.Exit.Code, Signal: f.Exit.Signal, Reason: f.Exit.Reason})
		case FrameClose:
			_ = c.conn.Close(websocket.StatusCode(f.CloseCode), f.CloseReason)
			return
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// The client accepted nothing for writeTimeout.
				c.a.s.m.metrics.clientDrops.Inc()
			}
			return
		}
	}
}

// readLoop reads the client's messages until the connection ends.
func (c *wsClient) readLoop(ctx context.Context) {
	var b bytes.Buffer // reused: input is written before the next read
	for {
		typ, r, err := c.conn.Reader(ctx)
		if err != nil {
			return
		}
		b.Reset()
		n, err := io.Copy(&b, io.LimitReader(r, maxInputFrame+1))
		if err != nil {
			return
		}
		if n > maxInputFrame {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			c.reject(fmt.Sprintf("message too large: the limit is %d bytes; it was dropped", maxInputFrame))
			continue
		}
		switch typ {
		case websocket.MessageBinary:
			if _, err := c.a.Write(b.Bytes()); err != nil {
				c.reject("input not written: " + err.Error())
			}
		case websocket.MessageText:
			c.control(ctx, b.Bytes())
		}
	}
}

// control handles one JSON control message from the client.
func (c *wsClient) control(ctx context.Context, p []byte) {
	msg, err := parseControl(p)
	if err != nil {
		c.reject(err.Error())
		return
	}
	switch msg.Type {
	case "resize":
		if err := c.a.Resize(ctx, *msg.Cols, *msg.Rows); err != nil {
			c.reject("resize rejected: " + err.Error())
		}
	}
}

// parseControl decodes one JSON control message from a client and checks
// that it is of a type a client may send, with the fields that type needs
// in range: a resize has cols and rows, both in 1..MaxTermSize. The error
// is what the client is told.
func parseControl(p []byte) (controlMessage, error) {
	var msg controlMessage
	if err := json.Unmarshal(p, &msg); err != nil {
		return controlMessage{}, fmt.Errorf("invalid control message: %v", err)
	}
	switch msg.Type {
	case "resize":
		if msg.Cols == nil || msg.Rows == nil {
			return controlMessage{}, errors.New("resize needs integer cols and rows")
		}
		if err := validSize(*msg.Cols, *msg.Rows); err != nil {
			return controlMessage{}, fmt.Errorf("resize rejected: %w", err)
		}
		return msg, nil
	case "":
		return controlMessage{}, errors.New(`control message has no "type"`)
	default:
		return controlMessage{}, fmt.Errorf("unknown control message type %q", msg.Type)
	}
}

func (c *wsClient) reject(msg string) { c.a.Reject(msg) }
