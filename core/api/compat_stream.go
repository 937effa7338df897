package api

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
)

// resetTerminal is what a client that fell behind is sent before the
// replay that follows: RIS, "ESC c", which resets the ancestor's xterm.js
// as the main protocol's reset message asks its clients to.
const resetTerminal = "\x1bc"

// compatClient is one connection of the ancestor's protocol attached to a
// session. As with wsClient, writeLoop is the only writer of the
// connection and readLoop the only reader; the read loop's answers (error
// messages) go through the attachment (Reject), to the write loop.
type compatClient struct {
	wsClient
	m        *core.Manager
	log      *slog.Logger
	id       string
	readOnly bool
	// restarting: a restart this client asked for is under way.
	restarting atomic.Bool

	// The following belong to writeLoop.
	text utf8Stream
	// off is the offset of the next output byte; end is the hello's End:
	// the bytes before it are the replay, sent as one scrollback message.
	off, end  int64
	replaying bool
	replay    []byte // the replay so far: modes, then output
}

// writeLoop translates the attachment's frames to the ancestor's messages
// until the attachment or the connection ends.
func (c *compatClient) writeLoop(ctx context.Context) {
	hello := c.a.Hello()
	c.off, c.end = hello.Offset, hello.End
	c.replaying = c.end > c.off
	buf := make([]byte, outputFrameSize)
	for {
		f, err := c.a.Next(ctx, buf)
		if err != nil {
			return
		}
		switch f.Kind {
		case core.FrameOutput:
			err = c.output(ctx, f.Data)
		case core.FrameModes:
			// Not output: escape sequences a fresh terminal needs before
			// the replay. Ahead of the scrollback, they are its start;
			// after a reset, they are written as data.
			if c.replaying {
				c.replay = append(c.replay, f.Data...)
			} else {
				err = c.data(ctx, f.Data)
			}
		case core.FrameReset:
			err = c.reset(ctx, f.Offset)
		case core.FrameError:
			err = c.writeJSON(ctx, compatError{Type: "error", Message: f.Message})
		case core.FrameExit:
			err = c.exit(ctx, f.Exit)
		case core.FrameClose:
			code, reason := f.CloseCode, f.CloseReason
			if code == core.ClosePluginFailed {
				// The ancestor's clients know the standard codes only.
				code = closeInternalError
			}
			_ = c.conn.Close(websocket.StatusCode(code), closeReason(reason))
			return
		case core.FrameResize, core.FrameRestarted:
			// The ancestor's protocol has no message for them: the
			// restarted program's output follows as data.
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// The client accepted nothing for writeTimeout.
				c.a.ClientDropped()
			}
			return
		}
	}
}

// output sends output bytes: the replay's part of them into the
// scrollback, sent once the replay is complete, the rest as data.
func (c *compatClient) output(ctx context.Context, p []byte) error {
	if c.replaying {
		n := int(min(int64(len(p)), c.end-c.off))
		c.replay = append(c.replay, p[:n]...)
		c.off += int64(n)
		p = p[n:]
		if c.off >= c.end {
			if err := c.scrollback(ctx); err != nil {
				return err
			}
		}
	}
	c.off += int64(len(p))
	return c.data(ctx, p)
}

// scrollback ends the replay: it sends what the replay holds as the one
// scrollback message, up to its last whole character (the rest of that
// one begins the first data message).
func (c *compatClient) scrollback(ctx context.Context) error {
	c.replaying = false
	content := c.text.decode(c.replay)
	c.replay = nil
	if content == "" {
		return nil
	}
	return c.writeJSON(ctx, compatOutput{Type: "scrollback", Content: content})
}

// data sends p as a data message, up to its last whole character.
func (c *compatClient) data(ctx context.Context, p []byte) error {
	content := c.text.decode(p)
	if content == "" {
		return nil
	}
	return c.writeJSON(ctx, compatOutput{Type: "data", Content: content})
}

// reset handles a client that fell behind: output was dropped and the
// replay from off follows (modes, then output).
func (c *compatClient) reset(ctx context.Context, off int64) error {
	// A character cut by the loss is not finished by what follows.
	c.text = utf8Stream{}
	c.off = off
	if c.replaying {
		// Nothing was sent yet: the scrollback starts over from off.
		c.replay = c.replay[:0]
		if c.off >= c.end {
			c.replaying = false
		}
		return nil
	}
	return c.writeJSON(ctx, compatOutput{Type: "data", Content: resetTerminal})
}

// exit sends the process's end; every output byte came before it.
func (c *compatClient) exit(ctx context.Context, st core.ExitStatus) error {
	if c.replaying {
		if err := c.scrollback(ctx); err != nil {
			return err
		}
	}
	if tail := c.text.flush(); tail != "" {
		if err := c.writeJSON(ctx, compatOutput{Type: "data", Content: tail}); err != nil {
			return err
		}
	}
	return c.writeJSON(ctx, compatExit(st.Code, st.Signal))
}
