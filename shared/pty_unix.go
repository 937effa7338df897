//go:build unix

package shared

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// OpenPTY opens a new pseudo-terminal of the given size. master is
// non-blocking and managed by Go's poller, so read deadlines work and
// Close makes a blocked Read return; tty is the terminal's side for the
// child (its stdin, stdout and stderr), which the caller closes once the
// child has started.
func OpenPTY(size Size) (master, tty *os.File, err error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	if err := pty.Setsize(tty, &pty.Winsize{Cols: size.Cols, Rows: size.Rows}); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, nil, fmt.Errorf("set pty size: %w", err)
	}
	master, err = nonBlocking(ptmx)
	if err != nil {
		tty.Close()
		return nil, nil, err
	}
	return master, tty, nil
}

// nonBlocking replaces f (which creack/pty leaves in blocking mode) with a
// non-blocking duplicate that Go's poller manages.
func nonBlocking(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// ResizePTY sets the size of the terminal whose master is master; the
// kernel signals SIGWINCH to its foreground process group. A size with a
// zero dimension is refused with ErrInvalidArgument.
func ResizePTY(master *os.File, size Size) error {
	if size.Cols == 0 || size.Rows == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", ErrInvalidArgument, size.Cols, size.Rows)
	}
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
	}); err != nil {
		return err
	}
	return ierr
}

// signalStatus is the exit status of a process killed by sig: by shell
// convention code 128+n, and the signal's name.
func signalStatus(sig unix.Signal) ExitStatus {
	return ExitStatus{Code: 128 + int(sig), Signal: unix.SignalName(sig)}
}
