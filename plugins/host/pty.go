package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// killGrace is how long Kill lets the session's processes handle SIGHUP
	// before it sends SIGKILL.
	killGrace = 2 * time.Second
	// drainGrace is how long Read keeps waiting for output after the child
	// exited while something else (a background grandchild) still holds
	// the terminal open.
	drainGrace = 250 * time.Millisecond
	// drainLimit caps what Read takes after drainGrace, so that a
	// grandchild that writes without pause cannot keep a session going.
	drainLimit = 1 << 20
)

// hostPTY is one session: a child process in its own session (its pid is
// also its session and process group id) with the pseudo-terminal as its
// controlling terminal.
//
// On Linux the child is not reaped until Close, so its pid, which names the
// session, cannot be reused while Kill and Close signal the session.
type hostPTY struct {
	cmd     *exec.Cmd
	pid     int
	master  *os.File // non-blocking, so reads honour deadlines and Close
	log     hclog.Logger
	orphans *orphanage

	// exited is closed when the child has exited; exitAt, status and
	// waitErr are written before.
	exited     chan struct{}
	exitAt     time.Time
	status     shared.ExitStatus
	waitErr    error
	waiterDone chan struct{}

	// drained counts bytes read after drainGrace; only Read uses it.
	drained int

	killOnce sync.Once
	killer   sync.WaitGroup // the SIGHUP→SIGKILL escalation

	closeOnce sync.Once
	closeErr  error
}

var _ shared.PTY = (*hostPTY)(nil)

// startPTY starts cmd in a new session on a new pseudo-terminal of the
// given size.
func startPTY(cmd *exec.Cmd, size shared.Size, log hclog.Logger, orphans *orphanage) (*hostPTY, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	defer tty.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Cols: size.Cols, Rows: size.Rows}); err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("set pty size: %w", err)
	}
	master, err := nonBlocking(ptmx)
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Setsid makes the child a session leader; Setctty gives it the tty
	// (its fd 0) as controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := orphans.start(cmd); err != nil {
		master.Close()
		return nil, err
	}
	p := &hostPTY{
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		master:     master,
		log:        log,
		orphans:    orphans,
		exited:     make(chan struct{}),
		waiterDone: make(chan struct{}),
	}
	go p.wait()
	return p, nil
}

// nonBlocking replaces f (which creack/pty leaves in blocking mode) with a
// non-blocking duplicate that Go's poller manages, so that read deadlines
// work and Close interrupts a blocked Read.
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

// wait records the child's exit, then wakes a Read that may be blocked on a
// terminal a grandchild still holds open, so it starts draining.
func (p *hostPTY) wait() {
	defer close(p.waiterDone)
	p.status, p.waitErr = waitExited(p.cmd)
	p.exitAt = time.Now()
	close(p.exited)
	p.log.Debug("session process exited", "code", p.status.Code, "signal", p.status.Signal)
	_ = p.master.SetReadDeadline(time.Now())
}

// Read returns the terminal's output. It returns io.EOF once the child has
// exited and the terminal is drained: when the last holder of the terminal
// closes it (EIO), or, while a background grandchild keeps it open, once no
// output came for drainGrace after the exit (plus at most drainLimit bytes
// already there).
func (p *hostPTY) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := p.read(b)
		switch {
		case n > 0:
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

func (p *hostPTY) read(b []byte) (int, error) {
	select {
	case <-p.exited:
	default:
		return p.master.Read(b)
	}
	if grace := p.exitAt.Add(drainGrace); time.Now().Before(grace) {
		if err := p.master.SetReadDeadline(grace); err != nil {
			return 0, err
		}
		return p.master.Read(b)
	}
	if p.drained >= drainLimit {
		return 0, io.EOF
	}
	n, err := readNow(p.master, b)
	p.drained += n
	return n, err
}

// readNow reads what f has now, without waiting; io.EOF if nothing.
func readNow(f *os.File, b []byte) (int, error) {
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), b)
		return true // one attempt: never wait
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, unix.EAGAIN), rerr == nil && n <= 0:
		return 0, io.EOF
	case rerr != nil:
		return 0, rerr
	}
	return n, nil
}

// Write sends input to the terminal.
func (p *hostPTY) Write(b []byte) (int, error) {
	return p.master.Write(b)
}

// Resize sets the terminal's size; the kernel signals SIGWINCH to the
// foreground process group.
func (p *hostPTY) Resize(_ context.Context, size shared.Size) error {
	if size.Cols == 0 || size.Rows == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", shared.ErrInvalidArgument, size.Cols, size.Rows)
	}
	rc, err := p.master.SyscallConn()
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

// Wait returns how the child exited.
func (p *hostPTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exited:
		return p.status, p.waitErr
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
}

// Kill sends SIGHUP to every process in the session and returns at once; a
// goroutine sends SIGKILL to whatever is left after killGrace (or half the
// time to ctx's deadline, if that is shorter), or as soon as everything but
// the child is gone after the child exited. Later calls, and calls after
// Close, do nothing.
func (p *hostPTY) Kill(ctx context.Context) error {
	grace := killGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = max(0, min(grace, time.Until(dl)/2))
	}
	p.killOnce.Do(func() { p.startKill(grace) })
	return nil
}

func (p *hostPTY) startKill(grace time.Duration) {
	deadline := time.Now().Add(grace)
	signalSession(p.orphans, p.pid, unix.SIGHUP)
	p.killer.Go(func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
			// The rest of the session gets what is left of the grace.
			waitSessionGone(p.orphans, p.pid, time.Until(deadline))
		case <-t.C:
		}
		killSession(p.orphans, p.pid)
	})
}

// Close kills the session if the child still runs, kills whatever else the
// session left running, reaps the child and closes the terminal. Output not
// yet read is lost; a blocked Read returns io.EOF.
func (p *hostPTY) Close() error {
	p.closeOnce.Do(func() {
		// Use up killOnce, so that no Kill signals the session after the
		// child is reaped and its pid may name another process.
		p.killOnce.Do(func() {
			select {
			case <-p.exited:
			default:
				p.startKill(killGrace)
			}
		})
		<-p.exited // within killGrace: SIGKILL follows SIGHUP
		p.killer.Wait()
		killSession(p.orphans, p.pid)
		<-p.waiterDone
		reap(p.cmd)
		p.orphans.forget(p.pid)
		p.closeErr = p.master.Close()
	})
	return p.closeErr
}

// signalStatus is the exit status of a process killed by sig: by shell
// convention code 128+n, and the signal's name.
func signalStatus(sig unix.Signal) shared.ExitStatus {
	return shared.ExitStatus{Code: 128 + int(sig), Signal: unix.SignalName(sig)}
}
