//go:build unix

package shared

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A host on the stream path whose first frame waits for the input of the
// host before it (waitTurn) and whose session a third host takes over
// meanwhile has that frame dropped, as it would once it no longer serves
// the session: the third host's input, which does not wait for it, is
// never followed by it.
func TestTakeoverStreamFrameWaitingIsNotAppliedLate(t *testing.T) {
	ctx := testContext(t)
	srv, ptys := eventServer(nil)
	waiting := make(chan struct{}, 2)
	srv.turns.waiting = func() { waiting <- struct{}{} }
	c := glueServer(t, srv)
	hold(ctx, t, c)
	// The two last waiters wake at once; the order they then take is the
	// scheduler's.
	for i := range 5 {
		id := fmt.Sprint("s", i)
		_, ch := releaseChannel(ctx, t, c, id)
		prog := receive(ctx, t, ptys, "spawn")
		for _, f := range []channelFrame{{input: "first"}, {input: "second"}} {
			if err := f.write(t, ch); err != nil {
				t.Fatal(err)
			}
		}
		receive(ctx, t, prog.entered, "the pump to wait in Write")
		b, _, err := c.StreamOnly().(*GRPCClient).Attach(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if _, err := b.Write([]byte("b")); err != nil {
			t.Fatal(err)
		}
		receive(ctx, t, waiting, "b's frame to wait for the first host's input")
		p, _, err := c.Attach(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if _, err := p.Write([]byte("c")); err != nil {
			t.Fatal(err)
		}
		receive(ctx, t, waiting, "c's frame to wait too")
		close(prog.gate)

		want := []string{inputEvent("first"), inputEvent("second"), inputEvent("c")}
		if got := prog.take(ctx, t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("%s: the session got %q, want %q", id, got, want)
		}
		select {
		case e := <-prog.events:
			t.Fatalf("%s: then %q, after the input of the host that took the session over", id, e)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
