package wsproto

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer serves one attach endpoint with handle; the real handler's
// tests are in core/api.
func fakeServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	return WSURL(srv.URL) + AttachPath("s1")
}

func accept(t *testing.T, w http.ResponseWriter, r *http.Request, protos ...string) *websocket.Conn {
	if protos == nil {
		protos = []string{Subprotocol}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: protos})
	if err != nil {
		t.Errorf("accept: %v", err)
		return nil
	}
	return c
}

// helloServer serves one client: the hello of session s1 at offset 0,
// then output, if any, as one binary message; then it waits until the
// client closes.
func helloServer(t *testing.T, output []byte) string {
	return fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		c := accept(t, w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":0}`))
		if output != nil {
			_ = c.Write(r.Context(), websocket.MessageBinary, output)
		}
		_, _, _ = c.Read(r.Context()) // until the client closes
	})
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialAndFrames(t *testing.T) {
	type got struct {
		auth, path string
		input      []byte
		resize     string
	}
	gotC := make(chan got, 1)
	url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		c := accept(t, w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		g := got{auth: r.Header.Get("Authorization"), path: r.URL.EscapedPath()}
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":5}`))
		_ = c.Write(ctx, websocket.MessageBinary, []byte("out"))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"reset","offset":9}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`not json`))
		_, g.input, _ = c.Read(ctx)
		_, b, _ := c.Read(ctx)
		g.resize = string(b)
		gotC <- g
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"exit","code":3,"signal":"","reason":""}`))
		_ = c.Close(websocket.StatusCode(CloseNormal), CloseReasonExited)
	})

	c, err := Dial(ctx(t), url, DialOptions{Token: "tok", Header: http.Header{"X-Test": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.Hello(); h != (Hello{SessionID: "s1", Cols: 80, Rows: 24, Offset: 5, End: 5}) { // no end: none to replay
		t.Errorf("hello %+v", h)
	}
	if f, err := c.Next(ctx(t)); err != nil || f.Kind != FrameOutput || string(f.Data) != "out" {
		t.Errorf("first frame %+v, %v; want output", f, err)
	}
	if f, err := c.Next(ctx(t)); err != nil || f.Kind != FrameControl || f.Msg.Type != TypeReset || f.Msg.Offset != 9 {
		t.Errorf("second frame %+v, %v; want reset", f, err)
	}
	if f, err := c.Next(ctx(t)); err != nil || f.Kind != FrameControl || f.Msg.Type != "" || string(f.Data) != "not json" {
		t.Errorf("third frame %+v, %v; want an undecoded control frame", f, err)
	}
	if err := c.Input(ctx(t), []byte("in")); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(ctx(t), 100, 30); err != nil {
		t.Fatal(err)
	}
	g := <-gotC
	if g.auth != "Bearer tok" || g.path != "/api/v1/sessions/s1/attach" || string(g.input) != "in" || g.resize != `{"type":"resize","cols":100,"rows":30}` {
		t.Errorf("server got %+v", g)
	}
	f, err := c.Next(ctx(t))
	if err != nil || f.Msg.Type != TypeExit || f.Msg.Exit() != (Exit{Code: 3}) {
		t.Errorf("exit frame %+v, %v", f, err)
	}
	_, err = c.Next(ctx(t))
	if code, reason, ok := CloseStatus(err); !ok || code != CloseNormal || reason != CloseReasonExited {
		t.Errorf("after exit: %v (close %d %q %v)", err, code, reason, ok)
	}
}

// Output larger than the initial buffer arrives whole.
func TestNextGrowsItsBuffer(t *testing.T) {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i)
	}
	url := helloServer(t, big)
	c, err := Dial(ctx(t), url, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.Next(ctx(t))
	if err != nil || f.Kind != FrameOutput || string(f.Data) != string(big) {
		t.Fatalf("got %d bytes, %v; want %d", len(f.Data), err, len(big))
	}
}

func TestDialErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte(`{"error":"session \"s1\" has ended","exit_code":7}`))
		})
		_, err := Dial(ctx(t), url, DialOptions{})
		var he *HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 410 || he.Message != `session "s1" has ended` || he.ExitCode == nil || *he.ExitCode != 7 {
			t.Fatalf("err %v (%+v)", err, he)
		}
	})
	t.Run("refused without a JSON body", func(t *testing.T) {
		url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusForbidden)
		})
		_, err := Dial(ctx(t), url, DialOptions{})
		var he *HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 403 || he.Message != "" || string(he.Body) != "nope\n" {
			t.Fatalf("err %v (%+v)", err, he)
		}
	})
	t.Run("other subprotocol", func(t *testing.T) {
		url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if c := accept(t, w, r, "other"); c != nil {
				defer c.CloseNow()
				_, _, _ = c.Read(r.Context())
			}
		})
		if _, err := Dial(ctx(t), url, DialOptions{}); !errors.Is(err, ErrSubprotocol) {
			t.Fatalf("err %v, want ErrSubprotocol", err)
		}
	})
	t.Run("no hello", func(t *testing.T) {
		url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if c := accept(t, w, r); c != nil {
				defer c.CloseNow()
				_ = c.Write(r.Context(), websocket.MessageBinary, []byte("output first"))
				_, _, _ = c.Read(r.Context())
			}
		})
		if _, err := Dial(ctx(t), url, DialOptions{}); !errors.Is(err, ErrNoHello) {
			t.Fatalf("err %v, want ErrNoHello", err)
		}
	})
	t.Run("closed before hello", func(t *testing.T) {
		url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if c := accept(t, w, r); c != nil {
				_ = c.Close(websocket.StatusCode(CloseNormal), CloseReasonDestroyed)
			}
		})
		_, err := Dial(ctx(t), url, DialOptions{})
		code, reason, ok := CloseStatus(err)
		if !errors.Is(err, ErrHelloLost) || !ok || code != CloseNormal || reason != CloseReasonDestroyed {
			t.Fatalf("err %v; want ErrHelloLost with close 1000 %q", err, CloseReasonDestroyed)
		}
	})
	t.Run("nobody listens", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := WSURL(srv.URL)
		srv.Close()
		_, err := Dial(ctx(t), url, DialOptions{})
		var he *HandshakeError
		if err == nil || errors.As(err, &he) {
			t.Fatalf("err %v, want a dial error", err)
		}
	})
}

// A hello or a reset with an offset no server sends fails Dial or Next
// with ErrBadOffset, rather than leaving the connection at an offset a
// resume could never use.
func TestBadOffsets(t *testing.T) {
	for _, tt := range []struct {
		name     string
		messages []string
		inDial   bool
	}{
		{"hello below 0", []string{`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":-1}`}, true},
		{"reset below 0", []string{`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":0}`, `{"type":"reset","offset":-100}`}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				c := accept(t, w, r)
				if c == nil {
					return
				}
				defer c.CloseNow()
				for _, m := range tt.messages {
					_ = c.Write(r.Context(), websocket.MessageText, []byte(m))
				}
				_, _, _ = c.Read(r.Context()) // until the client hangs up
			})
			c, err := Dial(ctx(t), url, DialOptions{})
			if tt.inDial {
				if !errors.Is(err, ErrBadOffset) {
					t.Fatalf("Dial: %v, want ErrBadOffset", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Next(ctx(t)); !errors.Is(err, ErrBadOffset) {
				t.Errorf("Next: %v, want ErrBadOffset", err)
			}
		})
	}
}

// Close is safe to call more than once, and after CloseWith: every call
// returns nil (a second one returned "use of closed network connection").
func TestCloseTwice(t *testing.T) {
	url := helloServer(t, nil)
	c, err := Dial(ctx(t), url, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.Close(); err != nil {
			t.Errorf("Close #%d: %v, want nil", i+1, err)
		}
	}
	c, err = Dial(ctx(t), url, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWith(CloseNormal, "detached"); err != nil {
		t.Errorf("CloseWith: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after CloseWith: %v, want nil", err)
	}
}
