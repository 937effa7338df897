package core

import (
	"context"
	"testing"
)

// TestRestartedFrame: an attached client reads the old process's output,
// then FrameRestarted at the offset where the new process's begins, then
// that output; a client attaching later, from the first byte, is told at
// the same offset; one attaching after it is not told.
func TestRestartedFrame(t *testing.T) {
	h := newHarness(t, nil)
	_, old := h.create(t, "s1")
	a := h.attach(t, "s1")
	old.Output(t, []byte("old"))
	if got := collect(t, a, 3); string(got) != "old" {
		t.Fatalf("output %q", got)
	}
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	nu := h.env.Last(t)
	nu.Output(t, []byte("new"))
	f, before := nextFrame(t, a)
	if f.Kind != FrameRestarted || f.Offset != 3 || len(before) != 0 {
		t.Fatalf("frame %+v after %q, want FrameRestarted at 3", f, before)
	}
	if got := collect(t, a, 3); string(got) != "new" {
		t.Fatalf("output after the restart %q", got)
	}

	b := h.attach(t, "s1")
	f, before = nextFrame(t, b)
	if f.Kind != FrameRestarted || f.Offset != 3 || string(before) != "old" {
		t.Fatalf("replaying client: frame %+v after %q, want FrameRestarted at 3 after \"old\"", f, before)
	}
	if got := collect(t, b, 3); string(got) != "new" {
		t.Fatalf("replay after the restart %q", got)
	}

	c, err := h.m.AttachFrom(context.Background(), "s1", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if got := collect(t, c, 2); string(got) != "ew" {
		t.Fatalf("client from offset 4: %q", got)
	}
	nu.Output(t, []byte("!"))
	if got := collect(t, c, 1); string(got) != "!" {
		t.Fatalf("client from offset 4 then: %q", got)
	}
}
