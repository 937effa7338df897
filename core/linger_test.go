package core

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
	"weak"
)

// withExitKeepAll sets exitKeepAll for the managers the test creates.
func withExitKeepAll(t *testing.T, d time.Duration) {
	old := exitKeepAll
	exitKeepAll = d
	t.Cleanup(func() { exitKeepAll = old })
}

// A full-screen program draws (cursor moves and colours, no newline) a
// little more than ExitReplayBytes and exits: a client that attaches to
// see how it ended gets at least ExitReplayBytes of it, not the few
// hundred bytes after the last safe point.
func TestExitedReplayHoldsAScreen(t *testing.T) {
	withExitKeepAll(t, 0)
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

// A client that lost its connection while the program printed more than
// ExitReplayBytes and exited, and reconnects at its offset soon after,
// gets every byte it missed, not a reset to the end; once exitKeepAll has
// passed, the session keeps only the end.
func TestExitedKeepsAllForAWhile(t *testing.T) {
	withExitKeepAll(t, 2*time.Second)
	h := newHarness(t, nil)
	_, p := h.create(t, "s")
	out := lines(0, 2000) // 88 KB
	p.Output(t, out)
	s := h.session(t, "s")
	p.End(ExitStatus{Code: 4})
	eventually(t, "the exit", func() bool { return s.hasExited() })

	a := h.attachFrom(t, "s", 5)
	got, other := frames(t, a, len(out)-5)
	if !bytes.Equal(got, out[5:]) || len(other) != 0 {
		t.Fatalf("resumed after the exit at 5: %d bytes and frames %+v, want the %d bytes from there", len(got), other, len(out)-5)
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameExit || f.Exit.Code != 4 {
		t.Errorf("then %+v, want the exit", f)
	}

	eventually(t, "the scrollback cut down to its end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ring.Start() > 0
	})
	hl := h.attachFrom(t, "s", 5).Hello()
	if hl.Offset < int64(len(out)-2*ExitReplayBytes) || hl.End-hl.Offset < ExitReplayBytes {
		t.Errorf("after exitKeepAll, a resume at 5 begins at %d of %d; want the end, at least %d bytes", hl.Offset, hl.End, ExitReplayBytes)
	}
}

// Over the lingering budget, the exited sessions that keep their whole
// scrollback are cut down to its end first, before any loses all of it.
func TestExitedWholeScrollbackGoesFirstOverBudget(t *testing.T) {
	withExitKeepAll(t, time.Hour)
	const budget = 256 << 10
	h := newHarness(t, func(o *Options) { o.LingerScrollbackBytes = budget })
	out := lines(0, 2000) // 88 KB
	for i := range 6 {
		id := fmt.Sprintf("s%d", i)
		_, p := h.create(t, id)
		p.Output(t, out)
		s := h.session(t, id)
		p.End(ExitStatus{})
		// Counted in the lingering budget, not only exited: the order of
		// the budget's list is the order under test.
		eventually(t, "the exit to be counted", func() bool {
			l := &h.m.lingering
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.elems[s] != nil
		})
	}
	if kept := h.m.lingeringScrollback(); kept > budget {
		t.Errorf("exited sessions keep %d bytes, over the budget of %d", kept, budget)
	}
	// How far a whole scrollback is cut depends on where its safe points
	// fell, which depends on how the pump read the output (the last
	// session to exit may be cut too): what holds whatever they are is
	// that none loses all, and that the whole ones left, if any, are the
	// newest (the oldest are cut first).
	whole := 0
	for i := range 6 {
		hl := h.attach(t, fmt.Sprintf("s%d", i)).Hello()
		if hl.End-hl.Offset < ExitReplayBytes {
			t.Errorf("s%d's replay holds %d bytes, want at least %d", i, hl.End-hl.Offset, ExitReplayBytes)
		}
		switch {
		case hl.Offset == 0:
			whole++
		case whole > 0:
			t.Errorf("s%d was cut down while s%d, which exited before it, kept its whole scrollback", i, i-1)
		}
	}
	if whole == 6 {
		t.Error("every session keeps its whole scrollback, over the budget")
	}
}

// A session destroyed while it keeps its whole scrollback is not kept
// reachable, with its ring, by the timer that would end that.
func TestDestroyedExitedSessionIsFreed(t *testing.T) {
	withExitKeepAll(t, time.Hour)
	h := newHarness(t, nil)
	_, p := h.create(t, "s")
	p.Output(t, lines(0, 2000))
	s := h.session(t, "s")
	p.End(ExitStatus{})
	eventually(t, "the exit", func() bool { return s.hasExited() })
	w := weak.Make(s)
	s = nil
	if err := h.m.DestroySession(t.Context(), "s"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the destroyed session to be garbage", func() bool {
		runtime.GC()
		return w.Value() == nil
	})
}
