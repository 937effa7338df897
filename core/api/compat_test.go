package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// The compatibility endpoint's tests use a client that sends exactly the
// ancestor's messages: text frames of JSON, no subprotocol.

// dialCompat opens path (such as /ws/claude/ID) as the ancestor's client
// does.
func dialCompat(t *testing.T, api *apiHarness, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(api.srv.URL, "http")+path, &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil {
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// compatAttached dials path and waits until the session counts the client,
// so that output written after it is new output, not history.
func compatAttached(t *testing.T, api *apiHarness, path, id string, clients int) *websocket.Conn {
	t.Helper()
	c, _, err := dialCompat(t, api, path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	eventually(t, "the client to attach", func() bool {
		rec, err := api.m.GetSession(t.Context(), id)
		return err == nil && rec.ActiveConnections == clients
	})
	return c
}

// compatRead reads one message, which must be a JSON text frame.
func compatRead(t *testing.T, c *websocket.Conn) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
		t.Fatalf("server sent %v %q: want a JSON text message", typ, b)
	}
	return m, nil
}

// compatNext reads one message and fails the test on an error.
func compatNext(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	m, err := compatRead(t, c)
	if err != nil {
		t.Fatalf("reading the next message: %v", err)
	}
	return m
}

// compatUntil reads messages until one of type typ, returning the content
// of the data messages before it.
func compatUntil(t *testing.T, c *websocket.Conn, typ string) (string, map[string]any) {
	t.Helper()
	var data strings.Builder
	for {
		m := compatNext(t, c)
		if m["type"] == typ {
			return data.String(), m
		}
		if m["type"] == "data" {
			data.WriteString(m["content"].(string))
		}
	}
}

// wantData reads the next message and checks that it is data with content.
func wantData(t *testing.T, c *websocket.Conn, content string) {
	t.Helper()
	if m := compatNext(t, c); m["type"] != "data" || m["content"] != content {
		t.Fatalf("message %v, want data %q", m, content)
	}
}

func compatSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// wantClose reads until the connection closes and checks code and reason.
func wantClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	for {
		m, err := compatRead(t, c)
		if err == nil {
			if m["type"] != "data" {
				t.Errorf("before the close: %v", m)
			}
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
			t.Fatalf("close = %v, want %d %q", err, code, reason)
		}
		return
	}
}

// waitInRing waits until session id has produced n output bytes, so that
// a client attaching next has them as history.
func waitInRing(t *testing.T, api *apiHarness, id string, n int) {
	t.Helper()
	a, err := api.m.Attach(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	buf := make([]byte, 4096)
	for got := 0; got < n; {
		f, err := a.Next(ctx, buf)
		if err != nil {
			t.Fatalf("waiting for %d output bytes, after %d: %v", n, got, err)
		}
		if f.Kind == core.FrameOutput {
			got += len(f.Data)
		}
	}
}

func TestCompatInputOutputResize(t *testing.T) {
	for _, path := range []string{"/ws/claude/", "/ws/terminal/"} {
		t.Run(path, func(t *testing.T) {
			api := newAPI(t, Options{}, nil)
			_, p := api.create(t, "c")
			c := compatAttached(t, api, path+"c", "c", 1)

			// No history: no scrollback, the output comes as data.
			p.Output(t, []byte("hello\r\n"))
			wantData(t, c, "hello\r\n")

			compatSend(t, c, `{"type":"input","data":"ls -l é\r"}`)
			if got := recvWithin(t, p.Input()); string(got) != "ls -l é\r" {
				t.Errorf("input = %q", got)
			}

			compatSend(t, c, `{"type":"resize","data":{"cols":120,"rows":40}}`)
			if got := recvWithin(t, p.Resizes()); got != (shared.Size{Cols: 120, Rows: 40}) {
				t.Errorf("pty resized to %+v", got)
			}
			eventually(t, "the record to say 120x40", func() bool {
				rec, _ := api.m.GetSession(t.Context(), "c")
				return rec.Cols == 120 && rec.Rows == 40
			})
			// The server's resize is not the ancestor's: the next message
			// is the next output.
			p.Output(t, []byte("after"))
			wantData(t, c, "after")
		})
	}
}

func TestCompatScrollback(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "sb")
	first := compatAttached(t, api, "/ws/claude/sb", "sb", 1)
	p.Output(t, []byte("history 🙂\r\n"))
	wantData(t, first, "history 🙂\r\n")

	// With history: one scrollback, then data for what follows.
	second := compatAttached(t, api, "/ws/claude/sb", "sb", 2)
	if m := compatNext(t, second); m["type"] != "scrollback" || m["content"] != "history 🙂\r\n" {
		t.Fatalf("first message %v, want the scrollback", m)
	}
	p.Output(t, []byte("more"))
	for _, c := range []*websocket.Conn{first, second} {
		wantData(t, c, "more")
	}

	// The scrollback ends at a character boundary: a character the
	// history cuts begins the first data message.
	p.Output(t, []byte("cut \xe2\x82"))
	wantData(t, first, "cut ")
	third := compatAttached(t, api, "/ws/claude/sb", "sb", 3)
	if m := compatNext(t, third); m["type"] != "scrollback" || m["content"] != "history 🙂\r\nmorecut " {
		t.Fatalf("first message %v, want the scrollback up to the cut character", m)
	}
	p.Output(t, []byte("\xac!"))
	for _, c := range []*websocket.Conn{first, third} {
		wantData(t, c, "€!")
	}
}

func TestCompatScrollbackModes(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.ScrollbackBytes = 4 << 10 })
	_, p := api.create(t, "alt")
	watcher := compatAttached(t, api, "/ws/claude/alt", "alt", 1)
	// The alternate screen, then more lines than the scrollback holds:
	// the replay starts past the switch, which the modes restore.
	p.Output(t, []byte("\x1b[?1049h"))
	wantData(t, watcher, "\x1b[?1049h")
	line := strings.Repeat("x", 60) + "\r\n"
	for range 200 {
		p.Output(t, []byte(line))
		wantData(t, watcher, line)
	}
	late := compatAttached(t, api, "/ws/claude/alt", "alt", 2)
	m := compatNext(t, late)
	content, _ := m["content"].(string)
	if m["type"] != "scrollback" || !strings.HasPrefix(content, "\x1b[?1049h") || !strings.HasSuffix(content, line) {
		t.Fatalf("first message %.80v, want a scrollback that starts with the modes", m)
	}
	if len(content) > 8<<10 {
		t.Errorf("scrollback of %d bytes from a 4 KiB ring", len(content))
	}
}

func TestCompatUTF8(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "u")
	c := compatAttached(t, api, "/ws/claude/u", "u", 1)
	for _, tt := range []struct {
		name   string
		chunks []string
		want   []string // the data messages
	}{
		{"split 3-byte", []string{"a\xe2\x82", "\xac b"}, []string{"a", "€ b"}},
		{"split 4-byte thrice", []string{"\xf0", "\x9f", "\x99", "\x82."}, []string{"🙂."}},
		{"invalid byte", []string{"x\xffy"}, []string{"x\ufffdy"}},
		{"truncated sequence", []string{"\xe2\x82A"}, []string{"\ufffdA"}},
		{"surrogate", []string{"\xed\xa0\x80!"}, []string{"\ufffd\ufffd\ufffd!"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range tt.chunks {
				p.Output(t, []byte(chunk))
			}
			var got []string
			for len(strings.Join(got, "")) < len(strings.Join(tt.want, "")) {
				m := compatNext(t, c)
				if m["type"] != "data" {
					t.Fatalf("message %v", m)
				}
				got = append(got, m["content"].(string))
			}
			if strings.Join(got, "") != strings.Join(tt.want, "") {
				t.Errorf("data %q, want %q", got, tt.want)
			}
		})
	}
	// A split character arrives whole even when each half is read as it
	// comes: the first half alone sends nothing.
	p.Output(t, []byte("\xc3"))
	p.Output(t, []byte("\xa9"))
	wantData(t, c, "é")
}

// recvWithin returns the next value of c, failing the test if none comes
// within 10 s.
func recvWithin[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived within 10 s")
		panic("unreachable")
	}
}
