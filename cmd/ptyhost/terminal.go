package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// The local terminal attach runs in: raw mode and its size.

// terminal is stdin when it is a terminal.
type terminal struct {
	fd    int
	state *term.State // the mode to restore; nil when not raw
	// console is what else the platform needs of the terminal: on
	// Windows its output, which holds the size and renders escape
	// sequences only when told to (terminal_windows.go).
	console console
}

// openTerminal returns r as a terminal, or nil when it is not one. out is
// where the session's output goes (stdout).
func openTerminal(r io.Reader, out io.Writer) *terminal {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	// Not f.Fd(): that switches f to blocking mode, and a blocking read
	// could no longer be interrupted by closing f.
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil || !term.IsTerminal(fd) {
		return nil
	}
	return &terminal{fd: fd, console: openConsole(out)}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	_ = rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) })
	return tty
}

func (t *terminal) makeRaw() error {
	st, err := term.MakeRaw(t.fd)
	if err != nil {
		return err
	}
	if err := t.console.makeRaw(); err != nil {
		_ = term.Restore(t.fd, st)
		return err
	}
	t.state = st
	return nil
}

func (t *terminal) restore() {
	if t.state != nil {
		t.console.restore()
		_ = term.Restore(t.fd, t.state)
		t.state = nil
	}
}

// size returns the terminal's size, clamped to what the protocol allows;
// ok is false when the terminal has no size.
func (t *terminal) size() (cols, rows int, ok bool) {
	cols, rows, err := term.GetSize(t.console.sizeFd(t.fd))
	if err != nil || cols <= 0 || rows <= 0 {
		return 0, 0, false
	}
	return min(cols, 1000), min(rows, 1000), true
}
