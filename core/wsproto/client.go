package wsproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// DefaultReadLimit is the largest message a Conn reads unless
// DialOptions.ReadLimit says otherwise. The server sends output in frames
// of at most 64 KiB.
const DefaultReadLimit = 16 << 20

// DialOptions configure Dial. The zero value dials without a token.
type DialOptions struct {
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Header holds more request headers (Origin, Host, ...).
	Header http.Header
	// HTTPClient makes the upgrade request; nil means http.DefaultClient.
	HTTPClient *http.Client
	// ReadLimit bounds one message read: zero means DefaultReadLimit, a
	// negative value no limit.
	ReadLimit int64
	// Offset, when set, resumes at that absolute output offset: it is sent
	// as the query parameter "offset" (see OffsetParam). A client that has
	// received the output up to N (Conn.Offset) passes N and receives
	// exactly the bytes from N on while the server still keeps them, else
	// a reset. Nil asks for today's replay from a safe point.
	Offset *int64
	// Epoch, with Offset, is the epoch of the hello of the connection
	// resumed (Conn.Hello): sent as the query parameter "epoch" (see
	// EpochParam), so that an offset into a session since created again
	// under the id gets a reset, not another session's bytes from there.
	Epoch string
	// ReadOnly attaches read-only: it is sent as the query parameter
	// mode=read (see ModeParam). The server refuses the connection's input
	// and resizes, each with an error message.
	ReadOnly bool
}

// Errors of Dial for a server that does not speak the protocol.
var (
	ErrSubprotocol = errors.New("the server does not speak " + Subprotocol)
	ErrNoHello     = errors.New("protocol error: the server did not start with hello")
	// ErrHelloLost wraps the error that ended the connection before the
	// hello arrived; CloseStatus reads its close code, if any.
	ErrHelloLost = errors.New("the connection ended before the server's hello")
	// ErrBadOffset is a hello or reset at an offset no server sends (below
	// 0): Dial and Next fail with it, since a client could not resume
	// there.
	ErrBadOffset = errors.New("protocol error: the server sent an impossible output offset")
)

// HandshakeError is a refused upgrade: the server answered with an HTTP
// status instead of a WebSocket.
type HandshakeError struct {
	StatusCode int
	// Message is the {"error": ...} of the body, empty when there is none.
	Message string
	// ExitCode is set by a 410: the session has ended with this code.
	ExitCode *int
	// Body is the start of the response body (at most 1 KiB).
	Body []byte
}

func (e *HandshakeError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("attach refused: HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("attach refused: HTTP %d", e.StatusCode)
}

// Conn is one attached WebSocket. See the package comment for which
// methods may run concurrently.
type Conn struct {
	ws    *websocket.Conn
	hello Hello
	buf   []byte // reused by Next
	off   int64  // the absolute offset of the next output byte
}

// Dial opens a WebSocket to url (ws:// or wss://, the attach endpoint:
// see AttachPath) with the ptyhost subprotocol and reads the server's
// hello. A refused upgrade is a *HandshakeError; a server that does not
// choose the subprotocol or does not start with hello is an error too.
func Dial(ctx context.Context, url string, opts DialOptions) (*Conn, error) {
	if opts.Offset != nil {
		u, err := withOffset(url, *opts.Offset)
		if err != nil {
			return nil, err
		}
		url = u
		if opts.Epoch != "" {
			if url, err = withQuery(url, EpochParam, opts.Epoch); err != nil {
				return nil, err
			}
		}
	}
	if opts.ReadOnly {
		u, err := withQuery(url, ModeParam, ModeRead)
		if err != nil {
			return nil, err
		}
		url = u
	}
	h := opts.Header.Clone()
	if opts.Token != "" {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:   opts.HTTPClient,
		HTTPHeader:   h,
		Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, handshakeError(resp)
		}
		return nil, err
	}
	if ws.Subprotocol() != Subprotocol {
		ws.CloseNow()
		return nil, fmt.Errorf("%w: it chose subprotocol %q", ErrSubprotocol, ws.Subprotocol())
	}
	switch {
	case opts.ReadLimit == 0:
		ws.SetReadLimit(DefaultReadLimit)
	case opts.ReadLimit < 0:
		ws.SetReadLimit(-1)
	default:
		ws.SetReadLimit(opts.ReadLimit)
	}
	c := &Conn{ws: ws, buf: make([]byte, 64<<10)}
	f, err := c.Next(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("%w: %w", ErrHelloLost, err)
	}
	if f.Kind != FrameControl || f.Msg.Type != TypeHello {
		ws.CloseNow()
		return nil, fmt.Errorf("%w (first message %q)", ErrNoHello, truncate(f.Data))
	}
	c.hello = f.Msg.Hello()
	if c.hello.Offset < 0 {
		ws.CloseNow()
		return nil, fmt.Errorf("%w: hello at offset %d", ErrBadOffset, c.hello.Offset)
	}
	c.off = c.hello.Offset
	return c, nil
}

// withOffset returns rawURL with the query parameter offset=off.
func withOffset(rawURL string, off int64) (string, error) {
	if off < 0 {
		return "", fmt.Errorf("resume offset %d is negative", off)
	}
	return withQuery(rawURL, OffsetParam, strconv.FormatInt(off, 10))
}

// withQuery returns rawURL with the query parameter name=value.
func withQuery(rawURL, name, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("attach URL: %w", err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func handshakeError(resp *http.Response) *HandshakeError {
	e := &HandshakeError{StatusCode: resp.StatusCode}
	if resp.Body != nil {
		e.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	}
	var body struct {
		Error    string `json:"error"`
		ExitCode *int   `json:"exit_code"`
	}
	if json.Unmarshal(e.Body, &body) == nil {
		e.Message, e.ExitCode = body.Error, body.ExitCode
	}
	return e
}

func truncate(p []byte) string {
	if len(p) > 200 {
		return string(p[:200]) + "..."
	}
	return string(p)
}

// Hello returns the server's hello.
func (c *Conn) Hello() Hello { return c.hello }

// Offset returns the absolute output offset of the next output byte: the
// hello's offset, plus every output byte Next has returned since, or the
// offset of the last reset plus the output after it. A "modes" message is
// not output and does not count. A client that loses the connection
// resumes with DialOptions.Offset set to it.
//
// Offset must not be called concurrently with Next.
func (c *Conn) Offset() int64 { return c.off }

// FrameKind says what a Frame holds.
type FrameKind uint8

const (
	// FrameOutput is a binary frame: terminal output bytes.
	FrameOutput FrameKind = iota + 1
	// FrameControl is a text frame: a control message. A terminal writes
	// the Data of a "modes" message (Msg.Data) as it writes output, but
	// does not count it as output.
	FrameControl
)

// Frame is one message from the server.
type Frame struct {
	Kind FrameKind
	// Data is the frame's payload: output bytes, or a control message's
	// JSON. It is valid until the next call of Next.
	Data []byte
	// Msg is the decoded control message of a FrameControl. A text frame
	// that does not decode has a Msg with an empty Type.
	Msg Message
}

// Next reads the next message. An error ends the connection; CloseStatus
// tells a close by the server from a lost connection.
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return Frame{}, err
	}
	n := 0
	for {
		if n == len(c.buf) {
			c.buf = append(c.buf, 0)[:n]
			c.buf = c.buf[:cap(c.buf)]
		}
		m, err := r.Read(c.buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Frame{}, err
		}
	}
	f := Frame{Data: c.buf[:n], Kind: FrameOutput}
	if typ == websocket.MessageText {
		f.Kind = FrameControl
		f.Msg, _ = ParseMessage(f.Data)
		if f.Msg.Type == TypeReset {
			if f.Msg.Offset < 0 {
				c.ws.CloseNow()
				return Frame{}, fmt.Errorf("%w: reset to offset %d", ErrBadOffset, f.Msg.Offset)
			}
			c.off = f.Msg.Offset
		}
	} else {
		c.off += int64(n)
	}
	return f, nil
}

// Input sends p, keystrokes or a paste, as one binary frame. The server
// rejects a frame larger than MaxInputFrame (with an error message).
func (c *Conn) Input(ctx context.Context, p []byte) error {
	return c.ws.Write(ctx, websocket.MessageBinary, p)
}

// Resize asks the server to change the terminal's size.
func (c *Conn) Resize(ctx context.Context, cols, rows int) error {
	b, err := json.Marshal(Resize{Cols: cols, Rows: rows})
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// SendText sends p as one text frame, as it is: a control message the
// client builds itself (or, testing a server, one it should reject).
func (c *Conn) SendText(ctx context.Context, p []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, p)
}

// Ping sends a WebSocket ping and waits for the server's pong, or for ctx
// to end. The pong is read by Next: call Ping while another goroutine
// waits in Next.
func (c *Conn) Ping(ctx context.Context) error { return c.ws.Ping(ctx) }

// CloseWith ends the connection with the closing handshake, telling the
// server code and reason (such as 1000 "detached"). It waits a few seconds
// at most for the server's answer.
func (c *Conn) CloseWith(code int, reason string) error {
	return c.ws.Close(websocket.StatusCode(code), reason)
}

// Close ends the connection at once, without the closing handshake. It is
// safe to call more than once and after CloseWith: a connection closed
// already closes without error (the websocket library's CloseNow returns
// net.ErrClosed then).
func (c *Conn) Close() error {
	if err := c.ws.CloseNow(); !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// CloseStatus returns the close code and reason of an error from Next when
// the connection was closed with a close frame; ok is false otherwise (a
// lost connection, a cancelled context).
func CloseStatus(err error) (code int, reason string, ok bool) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason, true
	}
	return 0, "", false
}

// WSURL turns an http:// or https:// server base URL into ws:// or wss://.
// Other URLs are returned as they are.
func WSURL(base string) string {
	switch {
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://")
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://")
	}
	return base
}
