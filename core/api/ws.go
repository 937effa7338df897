package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/rawio"
)

const (
	// hardReadLimit closes the connection: nobody pastes 64 MiB.
	hardReadLimit = 64 << 20
	// outputFrameSize is the most output bytes sent in one binary message.
	outputFrameSize = 64 << 10
	// DefaultWriteTimeout bounds one message write: a client that takes
	// longer to accept one message is disconnected.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultPingInterval is how often a WebSocket client is pinged.
	DefaultPingInterval = 30 * time.Second
	// directWriteTimeout bounds a write made by the session's reader
	// itself (core.Attachment.Direct), when it is shorter than the write
	// timeout. Made only when the socket has room, such a write takes
	// microseconds, and the session's other clients wait for it: one that
	// takes longer ends the connection, as any failed write does.
	directWriteTimeout = time.Second
)

// upgrading reports whether r asks for a WebSocket, as a request to a
// WebSocket endpoint must by the time it is to be upgraded (after the
// checks that answer with a status of their own, such as 404 or 410); if
// not, it answers 426 with a JSON error, as every error of the API has.
func upgrading(w http.ResponseWriter, r *http.Request) bool {
	if isWebSocket(r) && connectionUpgrade(r) {
		return true
	}
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Connection", "Upgrade")
	writeError(w, http.StatusUpgradeRequired, "this endpoint takes a WebSocket: send Upgrade: websocket and Connection: Upgrade")
	return false
}

// connectionUpgrade reports whether r's Connection header lists upgrade.
func connectionUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

func (h *handler) attach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	off, epoch, err := resumeFrom(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	mode, ok := h.attachModeOf(w, r)
	if !ok {
		return
	}
	// Answer a missing session with an HTTP status before upgrading, and
	// attach only once the upgrade (and its origin check) succeeded, so a
	// refused upgrade never counts as a client.
	if err := h.m.AttachableWith(id, mode); err != nil {
		h.attachFailed(w, r, id, err)
		return
	}
	// Guard has checked Host, Origin and Sec-Fetch-Site already. Accept's
	// own check, which stays as a second line, compares Origin with Host
	// only, and a DNS-rebinding page controls both.
	if !upgrading(w, r) {
		return
	}
	tap := &hijackTap{ResponseWriter: w}
	conn, err := websocket.Accept(tap, r, &websocket.AcceptOptions{
		Subprotocols:   []string{wsproto.Subprotocol},
		OriginPatterns: h.opts.AllowedOrigins,
	})
	if err != nil {
		// Accept has answered the request already.
		return
	}
	defer conn.CloseNow()
	a, err := h.m.AttachWith(r.Context(), id, core.AttachOptions{Mode: mode, Resume: off >= 0, Offset: off, Epoch: epoch})
	if errors.Is(err, core.ErrTooManyClients) {
		// Another client took the last place since Attachable.
		_ = conn.Close(wsproto.CloseTryAgainLater, wsproto.CloseReasonTooManyClients)
		return
	}
	if errors.Is(err, core.ErrClosed) {
		// The server began to stop in between: the client tries again,
		// as after any stop (the session may outlive it).
		_ = conn.Close(core.CloseGoingAway, core.CloseReasonShutdown)
		return
	}
	if err != nil {
		// It ended in between.
		_ = conn.Close(core.CloseNormal, core.CloseReasonDestroyed)
		return
	}
	defer a.Close()
	conn.SetReadLimit(hardReadLimit)

	c := &wsClient{conn: conn, a: a, writeTimeout: h.opts.WriteTimeout, sock: tap.sock}
	h.serveConn(r.Context(), conn, c.readLoop, c.writeLoop, a.Close)
}

// serveConn runs read in a goroutine of its own, write in this one and
// the pings (see Options.PingInterval) in a third, until one of them
// returns; then it closes conn, calls ended if not nil, and waits for the
// others. The reader must run for pings and the close handshake to be
// answered, and it notices a client that went away (a hijacked
// connection's request context does not). ended comes before that wait:
// a reader stuck in a write to the terminal (the program does not read)
// returns only once the write does, and a client that went away must not
// count as attached meanwhile.
//
// The connection is closed as soon as ctx ends, or one of the three
// returns (which ends a read or write under way), so that they may read
// and write it with contexts that cannot end: given one that can, the
// connection registers with it at every read and every write, allocating
// each time, a few times per keystroke. (A close handshake already under
// way, write's, keeps its own bound of a few seconds.)
func (h *handler) serveConn(ctx context.Context, conn *websocket.Conn, read, write func(context.Context), ended func()) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ctx, func() { conn.CloseNow() })()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		read(ctx)
	})
	if h.opts.PingInterval > 0 {
		wg.Go(func() {
			defer cancel()
			keepAlive(ctx, conn, h.opts.PingInterval)
		})
	}
	write(ctx)
	cancel()
	conn.CloseNow()
	if ended != nil {
		ended()
	}
	wg.Wait()
}

// keepAlive pings conn every interval until ctx ends or a ping is not
// answered within interval.
func keepAlive(ctx context.Context, conn *websocket.Conn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			return
		}
	}
}

// attachFailed answers an attach that found no live session: 410 with the
// exit code when the session has ended, 503 node_lost when its end is its
// node's loss and that node is still away (lostOwner), 503 when the
// database cannot say whether it has ended (as a GET of it answers), 409
// when it has as many clients as it takes, else the error's status.
func (h *handler) attachFailed(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, core.ErrTooManyClients) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if errors.Is(err, core.ErrSessionNotFound) {
		rec, ok, serr := h.m.EndedSession(r.Context(), id)
		if serr != nil {
			h.fail(w, r, serr)
			return
		}
		if ok {
			if node, lost := h.lostOwner(r.Context(), rec); lost {
				// Not ended for good: its node may come back with it.
				// 503, which clients retry, before any upgrade; 4503
				// closes the clients that were attached when it was lost.
				writeNodeLost(w, node.Name, recordedLost(node.Name))
				return
			}
			writeJSON(w, http.StatusGone, map[string]any{
				"error":     fmt.Sprintf("session %q has ended", id),
				"status":    rec.Status,
				"exit_code": rec.ExitCode,
			})
			return
		}
	}
	h.fail(w, r, err)
}

// wsClient is one WebSocket attached to a session. writeLoop writes its
// messages, but for the output the session's pump writes itself
// (core.Attachment.Direct: a lone client's, or the typist's), one at a
// time with writeLoop's; pings (keepAlive), and the pongs and close
// replies coder/websocket sends from readLoop, write frames of their own
// between those messages. readLoop is the only reader.
type wsClient struct {
	conn         *websocket.Conn
	a            *core.Attachment
	writeTimeout time.Duration
	// sock is the connection's socket, read and written with raw system
	// calls: it says whether a direct write would wait, and bounds how
	// long a write waits for the client. Nil: no direct writes, and a
	// write's bound is a timer.
	sock *rawio.Conn
	// writeMu keeps the bound SetWriteWait set with the message it is for
	// (a message may take several writes of the socket).
	writeMu sync.Mutex
}

func (c *wsClient) write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	return c.writeWithin(ctx, c.writeTimeout, typ, p)
}

// writeWithin writes one message, giving up once it has waited d for the
// client to take it.
//
// On a raw socket (sock) the socket itself bounds the wait, arming a
// deadline only when a write must wait: a write that need not, a
// keystroke's echo say, arms no timer, whose arming wakes one of the
// runtime's threads. Otherwise the write's context does. ctx's end ends
// the write either way, serveConn closing the connection.
func (c *wsClient) writeWithin(ctx context.Context, d time.Duration, typ websocket.MessageType, p []byte) error {
	if c.sock == nil {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return c.conn.Write(ctx, typ, p)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.sock.SetWriteWait(d)
	// Pings and close frames (keepAlive, Close) write without writeMu,
	// with deadlines of their own; one that goes out while a message's
	// bound is set shares what is left of it.
	defer c.sock.SetWriteWait(0)
	return c.conn.Write(context.Background(), typ, p) // see serveConn
}

// timedOut reports whether a write's error is its bound's: its context's
// deadline, or its socket's.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
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
	hello := wsproto.Hello{SessionID: h.SessionID, Epoch: h.Epoch, Cols: int(h.Size.Cols), Rows: int(h.Size.Rows), Offset: h.Offset, End: h.End}
	if err := c.writeJSON(ctx, hello); err != nil {
		return
	}
	// Small output for this client, caught up and alone on the session
	// or its typist, is written by the session's reader itself
	// (core.Attachment.Direct): no hand-off, and the session's other
	// clients are woken after. It never waits for the client: with the
	// socket's buffer full, the bytes go through Next and this goroutine.
	if c.sock != nil {
		c.a.Direct(func(p []byte) error {
			if !c.sock.CanWrite() {
				return core.ErrWouldBlock
			}
			err := c.writeWithin(ctx, min(c.writeTimeout, directWriteTimeout), websocket.MessageBinary, p)
			if err != nil {
				if timedOut(err) {
					c.a.ClientDropped()
				}
				_ = c.conn.CloseNow() // the client missed bytes: it must not go on
			}
			return err
		})
	}
	buf := make([]byte, outputFrameSize)
	for {
		f, err := c.a.Next(ctx, buf)
		if err != nil {
			return
		}

		switch f.Kind {
		case core.FrameOutput:
			err = c.write(ctx, websocket.MessageBinary, f.Data)
		case core.FrameResize:
			err = c.writeJSON(ctx, wsproto.Resize{Cols: int(f.Size.Cols), Rows: int(f.Size.Rows)})
		case core.FrameReset:
			err = c.writeJSON(ctx, wsproto.Reset{Offset: f.Offset, End: f.End})
		case core.FrameModes:
			err = c.writeJSON(ctx, wsproto.Modes{Data: string(f.Data)})
		case core.FrameRestarted:
			err = c.writeJSON(ctx, wsproto.Restarted{Offset: f.Offset})
		case core.FrameError:
			err = c.writeJSON(ctx, wsproto.Error{Message: f.Message})
		case core.FrameExit:
			err = c.writeJSON(ctx, wsproto.Exit{Code: f.Exit.Code, Signal: f.Exit.Signal, Reason: f.Exit.Reason})
		case core.FrameClose:
			_ = c.conn.Close(websocket.StatusCode(f.CloseCode), f.CloseReason)
			return
		}
		if err != nil {
			if timedOut(err) {
				// The client accepted nothing for writeTimeout.
				c.a.ClientDropped()
			}
			return
		}
	}
}

// messageReader reads a connection's messages into a buffer it reuses:
// each message is handled before the next read.
type messageReader struct {
	b   bytes.Buffer
	lim io.LimitedReader // reused too: one made per message would be allocated per keystroke
}

// keptReadBuffer is the largest buffer a messageReader keeps once its
// message is handled: a paste's, up to twice MaxInputFrame, is let go
// rather than held by the connection for its life.
const keptReadBuffer = 64 << 10

// release lets go of the buffer once its message is handled, if a large
// one grew it.
func (m *messageReader) release() {
	if m.b.Cap() > keptReadBuffer {
		m.b = bytes.Buffer{}
	}
}

// read reads the connection's next message, whole, unless it is larger
// than MaxInputFrame: then it is read to its end and dropped, and tooLarge
// is set. The message is in m.b until the next read. An error ends the
// connection. It waits until a message comes or the connection is closed,
// as serveConn does when its context ends.
func (m *messageReader) read(conn *websocket.Conn) (typ websocket.MessageType, tooLarge bool, err error) {
	typ, r, err := conn.Reader(context.Background()) // see serveConn
	if err != nil {
		return 0, false, err
	}
	m.release() // the last message was handled
	m.b.Reset()
	m.lim = io.LimitedReader{R: r, N: wsproto.MaxInputFrame + 1}
	n, err := io.Copy(&m.b, &m.lim)
	m.lim.R = nil
	if err != nil {
		return 0, false, err
	}
	if n > wsproto.MaxInputFrame {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, false, err
		}
		m.release() // the part read is dropped too: nothing to hold
		return typ, true, nil
	}
	return typ, false, nil
}

// readLoop reads the client's messages until the connection ends.
func (c *wsClient) readLoop(ctx context.Context) {
	var m messageReader
	for {
		typ, tooLarge, err := m.read(c.conn)
		if err != nil {
			return
		}
		if tooLarge {
			c.reject(fmt.Sprintf("message too large: the limit is %d bytes; it was dropped", wsproto.MaxInputFrame))
			continue
		}
		switch typ {
		case websocket.MessageBinary:
			if _, err := c.a.Write(m.b.Bytes()); errors.Is(err, core.ErrReadOnly) {
				c.reject(wsproto.MsgReadOnlyInput)
			} else if err != nil {
				c.reject("input not written: " + err.Error())
			}
		case websocket.MessageText:
			c.control(ctx, m.b.Bytes())
		}
		m.release()
	}
}

// control handles one JSON control message from the client.
func (c *wsClient) control(ctx context.Context, p []byte) {
	msg, err := parseControl(p)
	if err != nil {
		c.reject(err.Error())
		return
	}
	if err := c.a.Resize(ctx, msg.Cols, msg.Rows); errors.Is(err, core.ErrReadOnly) {
		c.reject(wsproto.MsgReadOnlyResize)
	} else if err != nil {
		c.reject("resize rejected: " + err.Error())
	}
}

// parseControl decodes one JSON control message from a client and checks
// that it is of a type a client may send, with the fields that type needs
// in range: a resize has cols and rows, both in 1..MaxTermSize. The error
// is what the client is told.
func parseControl(p []byte) (wsproto.Resize, error) {
	msg, err := wsproto.ParseClientMessage(p)
	if err != nil {
		return wsproto.Resize{}, err
	}
	if err := core.ValidSize(msg.Cols, msg.Rows); err != nil {
		return wsproto.Resize{}, fmt.Errorf("resize rejected: %w", err)
	}
	return msg, nil
}

func (c *wsClient) reject(msg string) { c.a.Reject(msg) }
