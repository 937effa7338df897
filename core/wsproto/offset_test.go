package wsproto

import (
	"net/http"
	"testing"

	"github.com/coder/websocket"
)

func TestDialOffsetAndCounting(t *testing.T) {
	queries := make(chan string, 1)
	url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		c := accept(t, w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","session_id":"s1","cols":80,"rows":24,"offset":7}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"modes","data":"\u001b[?1049h"}`))
		_ = c.Write(ctx, websocket.MessageBinary, []byte("abc"))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"reset","offset":100}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"modes","data":"\u001b[?25l"}`))
		_ = c.Write(ctx, websocket.MessageBinary, []byte("de"))
		_, _, _ = c.Read(ctx)
	})
	off := int64(0)
	c, err := Dial(ctx(t), url+"?x=1", DialOptions{Offset: &off})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if q := <-queries; q != "offset=0&x=1" {
		t.Errorf("query %q, want offset=0&x=1", q)
	}
	if c.Offset() != 7 {
		t.Fatalf("Offset after hello %d, want 7", c.Offset())
	}
	want := []struct {
		kind FrameKind
		typ  string
		data string
		off  int64
	}{
		{FrameControl, TypeModes, "\x1b[?1049h", 7},
		{FrameOutput, "", "abc", 10},
		{FrameControl, TypeReset, "", 100},
		{FrameControl, TypeModes, "\x1b[?25l", 100},
		{FrameOutput, "", "de", 102},
	}
	for i, w := range want {
		f, err := c.Next(ctx(t))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Kind != w.kind || f.Msg.Type != w.typ {
			t.Fatalf("frame %d: kind %d type %q, want %d %q", i, f.Kind, f.Msg.Type, w.kind, w.typ)
		}
		data := string(f.Data)
		if f.Kind == FrameControl {
			data = f.Msg.Data
		}
		if data != w.data {
			t.Errorf("frame %d: data %q, want %q", i, data, w.data)
		}
		if c.Offset() != w.off {
			t.Errorf("frame %d: Offset %d, want %d", i, c.Offset(), w.off)
		}
	}
}

func TestDialNegativeOffset(t *testing.T) {
	off := int64(-1)
	if _, err := Dial(ctx(t), "ws://127.0.0.1:1/x", DialOptions{Offset: &off}); err == nil {
		t.Fatal("Dial with a negative offset succeeded")
	}
}
