package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// rawProbe is stdout that notes whether the terminal was still raw when
// the reset of the alternate screen was written. It is written by attach's
// goroutines, so it records a failure to read the terminal's mode rather
// than failing the test there.
type rawProbe struct {
	syncBuffer
	tty       *os.File
	mu        sync.Mutex
	seen      bool
	rawAtSeen bool
	err       error
}

func (p *rawProbe) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("\x1b[?1049l")) {
		// Not Fd(): it would switch tty, attach's stdin, to blocking mode.
		var tio *unix.Termios
		rc, err := p.tty.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), ioctlGetTermios) })
			err = errors.Join(cerr, err)
		}
		p.mu.Lock()
		p.seen, p.err = true, err
		p.rawAtSeen = err == nil && isRaw(tio)
		p.mu.Unlock()
	}
	return p.syncBuffer.Write(b)
}

// An attach that ends with an error or an interrupt writes the resets of
// the modes the session turned on while the terminal is still as attach
// set it: a Windows console interprets escape sequences only until the
// terminal is restored, after which they would print as text.
func TestModeResetsBeforeTerminalRestore(t *testing.T) {
	ptmx, tty := openPTY(t)
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 80, Rows: 24}); err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t)
	f.replay = []string{"\x1b[?1049h\x1b[?25l"}
	c, err := newClient(f.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	out := &rawProbe{tty: tty}
	var errOut syncBuffer
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := attach(ctx, c, stdio{in: tty, out: out, err: &errOut},
			attachOptions{id: "s1", detachKey: defaultDetachKey, winch: make(chan os.Signal), restoreModes: true})
		done <- err
	}()
	out.waitFor(t, "\x1b[?1049h")
	cancel(errors.New("interrupt signal received"))
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("attach did not end")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if !out.seen {
		t.Fatalf("the resets were never written; stdout %q", out.String())
	}
	if out.err != nil {
		t.Fatalf("reading the terminal's mode as the resets were written: %v", out.err)
	}
	if !out.rawAtSeen {
		t.Fatal("the mode resets were written after the terminal was restored")
	}
	if isRaw(termios(t, tty)) {
		t.Fatal("the terminal is still raw after attach")
	}
}
