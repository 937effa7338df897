package core

import (
	"errors"
	"testing"
)

// An attachment's Write and Resize on a session whose program has ended
// are ErrNotRunning, which an embedder's transport can test for: it was
// unexported, so only its text told it from a failure of the terminal.
func TestWriteAfterExitIsErrNotRunning(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "s")
	a := h.attach(t, "s")
	s := h.session(t, "s")
	p.End(ExitStatus{Code: 1})
	eventually(t, "the exit", func() bool { return s.hasExited() })
	if _, err := a.Write([]byte("x")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Write after the exit: %v, want ErrNotRunning", err)
	}
	if err := a.Resize(t.Context(), 100, 30); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Resize after the exit: %v, want ErrNotRunning", err)
	}
}
