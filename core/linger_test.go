package core

import (
	"fmt"
	"testing"
)

// A full-screen program draws (cursor moves and colours, no newline) a
// little more than ExitReplayBytes and exits: a client that attaches to
// see how it ended gets at least ExitReplayBytes of it, not the few
// hundred bytes after the last safe point.
func TestExitedReplayHoldsAScreen(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "tui")
	var out []byte
	for i := 0; len(out) < ExitReplayBytes+200; i++ {
		out = fmt.Appendf(out, "\x1b[%d;1H\x1b[32mrow %05d status ok......................................\x1b[0m", i%24+1, i)
	}
	p.Output(t, out)
	eventually(t, "the output in the ring", func() bool { return ringEnd(h, "tui") == int64(len(out)) })
	s := h.session(t, "tui")
	p.End(ExitStatus{})
	eventually(t, "the exit", func() bool { return s.hasExited() })
	hl := h.attach(t, "tui").Hello()
	if hl.End != int64(len(out)) || hl.End-hl.Offset < ExitReplayBytes {
		t.Errorf("exited session's replay is [%d,%d), want at least the last %d of %d bytes", hl.Offset, hl.End, ExitReplayBytes, len(out))
	}
}
