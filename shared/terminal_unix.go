//go:build unix

package shared

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/internal/rawio"
)

const (
	// drainGrace is how long a Terminal's Read keeps waiting for output
	// after the child exited while something else (a background
	// grandchild) still holds the terminal open.
	drainGrace = 250 * time.Millisecond
	// drainLimit caps what Read takes after drainGrace, so that a
	// grandchild that writes without pause cannot keep a session going.
	drainLimit = 1 << 20
)

// Terminal is a plugin's side of a pseudo-terminal whose child runs on the
// plugin's machine: it reads the output until the child has exited and
// the terminal is drained, writes input and resizes. A plugin's PTY
// implementation embeds it and adds Wait, Kill and Close.
//
// Read is called from one goroutine; Write, Resize, ChildExited and Close
// may be called concurrently with it and with each other.
type Terminal struct {
	master *os.File  // non-blocking, so reads honour deadlines and Close
	fd     *rawio.FD // master's descriptor, read with raw calls

	exitOnce sync.Once
	// exited is closed by ChildExited; exitAt is written before.
	exited chan struct{}
	exitAt time.Time

	// drained counts bytes read after drainGrace; only Read uses it.
	drained int
}

// OpenTerminal opens a new pseudo-terminal of the given size (see
// OpenPTY). tty is the child's side, for its stdin, stdout and stderr;
// close it once the child has started.
func OpenTerminal(size Size) (term *Terminal, tty *os.File, err error) {
	master, tty, err := OpenPTY(size)
	if err != nil {
		return nil, nil, err
	}
	term, err = newTerminal(master)
	if err != nil {
		tty.Close()
		return nil, nil, err
	}
	return term, tty, nil
}

// InputTerminal is implemented by a plugin's PTY whose Write and Resize do
// nothing but write to and resize a Terminal (StartCommand's PTY does):
// InputTerminal returns that terminal, or nil while that is not so. The
// SDK then hands the terminal to a host that asks (direct_input), which
// writes input to it and sets its size itself, and a keystroke skips the
// plugin's process. A PTY that does more with input or sizes (filters,
// logs or queues them) must not implement it.
type InputTerminal interface {
	InputTerminal() *Terminal
}

// terminalInput returns the terminal p's input may be written to directly
// (InputTerminal), or nil.
func terminalInput(p PTY) *os.File {
	if it, ok := p.(InputTerminal); ok {
		if t := it.InputTerminal(); t != nil {
			return t.master
		}
	}
	return nil
}

// NewTerminal makes a Terminal of a pseudo-terminal master that was opened
// elsewhere, such as in a container, and handed to the plugin (over a unix
// socket, SCM_RIGHTS). It takes f over: the Terminal uses a non-blocking
// duplicate of it and closes f. A file that is not a terminal's master
// is refused with ErrInvalidArgument.
func NewTerminal(f *os.File) (*Terminal, error) {
	if err := checkMaster(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a pseudo-terminal master: %w", ErrInvalidArgument, f.Name(), err)
	}
	master, err := nonBlocking(f)
	if err != nil {
		return nil, err
	}
	return newTerminal(master)
}

// checkMaster fails unless f is a pseudo-terminal's master (masterCheck).
func checkMaster(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = masterCheck(int(fd)) }); err != nil {
		return err
	}
	return ierr
}

// isMaster reports whether fd is a pseudo-terminal's master (masterCheck).
func isMaster(fd int) bool { return masterCheck(fd) == nil }

// newTerminal makes a Terminal of master, non-blocking already; it closes
// master if it fails.
func newTerminal(master *os.File) (*Terminal, error) {
	fd := rawio.New(master)
	if fd == nil {
		master.Close()
		return nil, fmt.Errorf("%w: the terminal's master is not in non-blocking mode", ErrInvalidArgument)
	}
	return &Terminal{master: master, fd: fd, exited: make(chan struct{})}, nil
}

// ChildExited tells the terminal that its child has exited, and wakes a
// Read that may be blocked on a terminal a grandchild still holds open, so
// that it starts draining. It also ends a Write blocked on a terminal
// nobody reads, and Write refuses input from then on (ErrChildExited); a
// host writing input to the terminal itself (direct input) writes without
// waiting, and is not affected. Later calls do nothing.
func (t *Terminal) ChildExited() {
	t.exitOnce.Do(func() {
		t.exitAt = time.Now()
		close(t.exited)
		_ = t.master.SetReadDeadline(t.exitAt)
		_ = t.master.SetWriteDeadline(t.exitAt)
	})
}

// Read returns the terminal's output. It returns io.EOF once the child has
// exited and the terminal is drained: when the last holder of the terminal
// closes it (EIO), or, while a background grandchild keeps it open, once no
// output came for drainGrace (250ms) after the exit (plus at most 1 MiB
// already there), and after Close.
func (t *Terminal) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := t.read(b)
		switch {
		case n > 0:
			if n >= gatherMin && !t.childExited() {
				// After the exit, read counts what it drains.
				n = t.gather(b, n)
			}
			return n, nil
		case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
			continue // woken at exit, or the grace ended: look again
		case errors.Is(err, syscall.EIO), errors.Is(err, os.ErrClosed), errors.Is(err, io.EOF):
			return 0, io.EOF
		default:
			return 0, err
		}
	}
}

func (t *Terminal) read(b []byte) (int, error) {
	if !t.childExited() {
		return t.fd.Read(b)
	}
	if grace := t.exitAt.Add(drainGrace); time.Now().Before(grace) {
		if err := t.master.SetReadDeadline(grace); err != nil {
			return 0, err
		}
		return t.fd.Read(b)
	}
	if t.drained >= drainLimit {
		return 0, io.EOF
	}
	n, err := t.readNow(b)
	t.drained += n
	return n, err
}

// childExited reports whether ChildExited was called.
func (t *Terminal) childExited() bool {
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

// gatherMin is the read from which Read looks for more output at once: a
// read this large is a flood's, not a keystroke's echo.
const gatherMin = 1 << 10

// gather adds to b[:n], just read, what the terminal has now, without
// waiting, until b is full or nothing is left: a program that writes fast
// is read into b whole (the kernel hands a terminal's output out 4 KiB at
// a time), so the bytes go on in one write instead of a dozen. Errors are
// left for the next Read.
func (t *Terminal) gather(b []byte, n int) int {
	for n < len(b) {
		// Right after a read that returned bytes: the mode was just
		// checked (rawio.FD.ReadNext).
		m, err := t.fd.ReadNext(b[n:])
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return n
}

// readNow reads what the terminal has now, without waiting and whatever
// read deadline was set; io.EOF if nothing.
func (t *Terminal) readNow(b []byte) (int, error) {
	if err := t.master.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	n, err := t.readOnce(b)
	switch {
	case errors.Is(err, unix.EAGAIN), err == nil && n <= 0:
		return 0, io.EOF
	case err != nil:
		return 0, err
	}
	return n, nil
}

// readOnce makes one read system call on the terminal, never waiting in
// the poller: unix.EAGAIN if nothing is there. A read deadline that has
// passed makes it fail with os.ErrDeadlineExceeded.
func (t *Terminal) readOnce(b []byte) (int, error) {
	return t.fd.ReadNow(b)
}

// Write sends input to the terminal. It waits while the terminal is full,
// until the child exits (ErrChildExited) or Close.
func (t *Terminal) Write(b []byte) (int, error) {
	n, err := t.master.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrChildExited
	}
	return n, err
}

// Resize sets the terminal's size (see ResizePTY).
func (t *Terminal) Resize(size Size) error { return ResizePTY(t.master, size) }

// Close closes the terminal; a blocked Read returns io.EOF. Output not
// yet read is lost.
func (t *Terminal) Close() error { return t.master.Close() }
