package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// wsprotoURL is the attach URL of session id on api's server.
func wsprotoURL(api *apiHarness, id string) string {
	return wsproto.WSURL(api.srv.URL) + wsproto.AttachPath(id)
}

// The protocol client against the real handler: hello, output, input,
// resize, exit and the close that follows.
func TestWSProtoClient(t *testing.T) {
	api := newAPI(t, Options{Token: "tok"}, nil)
	_, p := api.create(t, "c1")
	p.Output(t, []byte("before\r\n"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c, err := wsproto.Dial(ctx, wsprotoURL(api, "c1"), wsproto.DialOptions{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.Hello(); h.Epoch == "" || h != (wsproto.Hello{SessionID: "c1", Epoch: h.Epoch, Cols: core.DefaultCols, Rows: core.DefaultRows, Offset: 0, End: int64(len("before\r\n"))}) {
		t.Errorf("hello %+v", h)
	}
	var out []byte
	for string(out) != "before\r\n" {
		f, err := c.Next(ctx)
		if err != nil || f.Kind != wsproto.FrameOutput {
			t.Fatalf("replay: %+v, %v (after %q)", f, err, out)
		}
		out = append(out, f.Data...)
	}

	if err := c.Input(ctx, []byte("ls\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-p.Input():
		if string(in) != "ls\r" {
			t.Errorf("the PTY got %q", in)
		}
	case <-ctx.Done():
		t.Fatal("no input reached the PTY")
	}
	if err := c.Resize(ctx, 100, 30); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-p.Resizes():
		if s != (shared.Size{Cols: 100, Rows: 30}) {
			t.Errorf("the PTY was resized to %+v", s)
		}
	case <-ctx.Done():
		t.Fatal("no resize reached the PTY")
	}
	// A size out of range is refused with an error message; every client
	// is told of the size that was accepted.
	if err := c.Resize(ctx, 0, 30); err != nil {
		t.Fatal(err)
	}
	var sawResize, sawError, sawExit bool
	for !sawError {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the error message: %v", err)
		}
		switch f.Msg.Type {
		case wsproto.TypeResize:
			sawResize = f.Msg.Cols == 100 && f.Msg.Rows == 30
		case wsproto.TypeError:
			sawError = f.Msg.Message != ""
		}
	}

	p.End(shared.ExitStatus{Code: 4})
	for {
		f, err := c.Next(ctx)
		if err != nil {
			code, reason, ok := wsproto.CloseStatus(err)
			if !ok || code != wsproto.CloseNormal || reason != wsproto.CloseReasonExited {
				t.Errorf("closed with %v; want %d %q", err, wsproto.CloseNormal, wsproto.CloseReasonExited)
			}
			break
		}
		switch f.Msg.Type {
		case wsproto.TypeResize: // it may follow the error
			sawResize = f.Msg.Cols == 100 && f.Msg.Rows == 30
		case wsproto.TypeExit:
			sawExit = f.Msg.Exit() == wsproto.Exit{Code: 4}
		}
	}
	if !sawResize || !sawError || !sawExit {
		t.Errorf("resize %v, error %v, exit %v; want all", sawResize, sawError, sawExit)
	}
}

// Refused upgrades are HandshakeErrors with the API's status and message.
func TestWSProtoClientRefused(t *testing.T) {
	api := newAPI(t, Options{Token: "tok"}, func(o *core.Options) { o.Linger = time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var he *wsproto.HandshakeError

	if _, err := wsproto.Dial(ctx, wsprotoURL(api, "missing"), wsproto.DialOptions{Token: "tok"}); !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Errorf("missing session: %v", err)
	}
	if _, err := wsproto.Dial(ctx, wsprotoURL(api, "missing"), wsproto.DialOptions{Token: "wrong"}); !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %v", err)
	}

	_, p := api.create(t, "gone")
	p.End(shared.ExitStatus{Code: 5})
	eventually(t, "the session to stop lingering", func() bool {
		c, err := wsproto.Dial(ctx, wsprotoURL(api, "gone"), wsproto.DialOptions{Token: "tok"})
		if err == nil {
			c.Close() // still lingering
		}
		return errors.As(err, &he) && he.StatusCode == http.StatusGone
	})
	if he.ExitCode == nil || *he.ExitCode != 5 || he.Message == "" {
		t.Errorf("410: %+v", he)
	}
}
