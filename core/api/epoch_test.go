package api

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// The hello carries the session's epoch, and a client that resumes with
// it gets exactly the bytes after its offset; in a session created again
// under the id since, it gets a reset instead of that session's bytes from
// the old offset.
func TestResumeGivesTheEpochBack(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "s")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	next := func(c *wsproto.Conn) wsproto.Frame {
		t.Helper()
		for {
			f, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != wsproto.FrameControl || f.Msg.Type != wsproto.TypeResize {
				return f
			}
		}
	}
	c, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	epoch := c.Hello().Epoch
	if epoch == "" {
		t.Fatal("the hello has no epoch")
	}
	p.Output(t, []byte("first\r\n"))
	if f := next(c); f.Kind != wsproto.FrameOutput || string(f.Data) != "first\r\n" {
		t.Fatalf("frame %v %q", f.Kind, f.Data)
	}
	off := c.Offset()
	c.Close()

	p.Output(t, []byte("second\r\n"))
	same, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{Offset: &off, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	if f := next(same); f.Kind != wsproto.FrameOutput || string(f.Data) != "second\r\n" || same.Hello().Epoch != epoch {
		t.Errorf("resumed in the same session: frame %v %q, epoch %q", f.Kind, f.Data, same.Hello().Epoch)
	}
	same.Close()

	if err := api.m.DestroySession(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	_, p2 := api.create(t, "s")
	p2.Output(t, []byte("the session created again, long enough to pass the offset\r\n"))
	// Once a client has it, the ring holds it: the old offset is within.
	fresh, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for fresh.Offset() <= off {
		next(fresh)
	}
	fresh.Close()
	again, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{Offset: &off, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Hello().Epoch == epoch {
		t.Errorf("the session created again has the first one's epoch")
	}
	if f := next(again); f.Kind != wsproto.FrameControl || f.Msg.Type != wsproto.TypeReset {
		t.Errorf("resumed into the session created again: frame %v %q, want a reset", f.Kind, f.Data)
	}
}
