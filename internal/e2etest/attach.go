package e2etest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// readTimeout bounds each wait of a Term: for output, a control message or
// the end of the connection.
const readTimeout = 30 * time.Second

// Term is a client attached to a session that keeps everything the server
// sent. Its methods are for the test's goroutine.
type Term struct {
	t    testing.TB
	Conn *wsproto.Conn
	// Out is every output byte received; Control every control message
	// after the hello.
	Out     []byte
	Control []wsproto.Message
}

// AttachURL is the ws:// URL of session id's attach endpoint.
func (s *Server) AttachURL(id string) string {
	return wsproto.WSURL(s.URL) + wsproto.AttachPath(id)
}

// Attach attaches to session id with the server's Token, if set, and
// fails the test unless the server answers with a hello within 15 s. The
// test's cleanup closes the connection.
func (s *Server) Attach(t testing.TB, id string) *Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, s.AttachURL(id), wsproto.DialOptions{Token: s.Token, ReadLimit: -1})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	return NewTerm(t, c)
}

// AttachAt attaches to session id resuming at output offset off, as a
// client that has received the output up to off does; otherwise as
// Attach. The hello's Offset is off when the server still keeps it.
func (s *Server) AttachAt(t testing.TB, id string, off int64) *Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, s.AttachURL(id), wsproto.DialOptions{Token: s.Token, ReadLimit: -1, Offset: &off})
	if err != nil {
		t.Fatalf("attach %s at offset %d: %v", id, off, err)
	}
	return NewTerm(t, c)
}

// NewTerm makes a Term of a connection the test dialled itself; the
// test's cleanup closes it.
func NewTerm(t testing.TB, c *wsproto.Conn) *Term {
	t.Cleanup(func() { c.Close() })
	return &Term{t: t, Conn: c}
}

// Hello returns the server's hello.
func (tm *Term) Hello() wsproto.Hello { return tm.Conn.Hello() }

// Until reads messages until cond holds. It returns an error if the
// connection ends first (wrapping the read error: see wsproto.CloseStatus),
// if 30 s pass, if a text frame is not a control message, or if the server
// resets the client (output was lost).
func (tm *Term) Until(cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	for !cond() {
		f, err := tm.Conn.Next(ctx)
		if err != nil {
			return fmt.Errorf("after %d output bytes (tail %q) and control messages %+v: %w", len(tm.Out), Tail(tm.Out, 300), tm.Control, err)
		}
		if f.Kind == wsproto.FrameOutput {
			tm.Out = append(tm.Out, f.Data...)
			continue
		}
		switch f.Msg.Type {
		case "":
			return fmt.Errorf("text frame %q is not a control message", f.Data)
		case wsproto.TypeReset:
			return fmt.Errorf("the client was reset: %s", f.Data)
		}
		tm.Control = append(tm.Control, f.Msg)
	}
	return nil
}

// WaitOutput waits until the output holds s, and fails the test if it
// does not within 30 s.
func (tm *Term) WaitOutput(s string) {
	tm.t.Helper()
	if err := tm.Until(func() bool { return bytes.Contains(tm.Out, []byte(s)) }); err != nil {
		tm.t.Fatalf("waiting for %q: %v", s, err)
	}
}

// WaitControl waits for a control message of type typ received after the
// call, and fails the test if none comes within 30 s.
func (tm *Term) WaitControl(typ string) wsproto.Message {
	tm.t.Helper()
	seen := len(tm.Control)
	var found wsproto.Message
	err := tm.Until(func() bool {
		for _, m := range tm.Control[seen:] {
			if m.Type == typ {
				found = m
				return true
			}
		}
		return false
	})
	if err != nil {
		tm.t.Fatalf("waiting for a %q message: %v", typ, err)
	}
	return found
}

// WaitEnd reads until the server ends the connection and returns the read
// error that ended it (wsproto.CloseStatus gives its close code), or an
// error if that does not happen within 30 s.
func (tm *Term) WaitEnd() error {
	return tm.Until(func() bool { return false })
}

// Send sends s as input.
func (tm *Term) Send(s string) {
	tm.t.Helper()
	if err := tm.Conn.Input(context.Background(), []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// SendText sends s as a text frame, as it is: a control message, or one
// the server should reject.
func (tm *Term) SendText(s string) {
	tm.t.Helper()
	if err := tm.Conn.SendText(context.Background(), []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// Resize asks the server to change the terminal's size.
func (tm *Term) Resize(cols, rows int) {
	tm.t.Helper()
	if err := tm.Conn.Resize(context.Background(), cols, rows); err != nil {
		tm.t.Fatal(err)
	}
}
