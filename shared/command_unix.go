//go:build unix

package shared

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// commandKillGrace is how long a command's Kill lets its process group
// handle SIGHUP before it sends SIGKILL.
const commandKillGrace = 2 * time.Second

// StartCommand starts cmd on the plugin's machine in a new session, with a
// new pseudo-terminal of the given size (80x24 if a dimension is zero) as
// its controlling terminal and its stdin, stdout and stderr, and returns
// the session as a PTY. A program that does not exist or may not be run
// is refused with ErrInvalidArgument. It is
// all a plugin that runs local programs needs for Spawn; set cmd.Dir and
// cmd.Env first (WorkingDir, ChildEnvWithout). cmd.SysProcAttr is kept
// (a Credential, say), but for what places the child in its new session
// with the terminal: Setsid, Setctty and Ctty are set, and Setpgid, Pgid,
// Foreground and Noctty cleared.
//
// The PTY's Read is Terminal's. Wait reports the exit code, or 128+n and
// the signal's name for a process killed by signal n. Kill sends SIGHUP to
// the session's process group and SIGKILL to what is left after a grace of
// 2s (or half the time to ctx's deadline); Close kills what still runs in
// the process group and closes the terminal. A program that moves itself to another process
// group escapes both (the HOST plugin reaches every process of the
// session, on Linux).
func StartCommand(cmd *exec.Cmd, size Size) (PTY, error) {
	if size.Cols == 0 || size.Rows == 0 {
		size = Size{Cols: 80, Rows: 24}
	}
	term, tty, err := OpenTerminal(size)
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Setsid makes the child a session leader; Setctty gives it the tty
	// (its fd 0, Ctty) as controlling terminal. The rest of the caller's
	// attributes stay: a Credential that runs the session as another user
	// must not be dropped for a session run as the plugin's. A process
	// group of the caller's (Setpgid, Foreground) or no controlling
	// terminal (Noctty) cannot be had in a new session with the terminal.
	attr := syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		attr = *cmd.SysProcAttr
	}
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	attr.Setpgid, attr.Pgid, attr.Foreground, attr.Noctty = false, 0, false, false
	cmd.SysProcAttr = &attr
	if err := cmd.Start(); err != nil {
		term.Close()
		// A name that exec.Command could not find in PATH (exec.ErrNotFound,
		// or exec.ErrDot) is an *exec.Error, not fs.ErrNotExist: the
		// request's fault all the same, as the HOST plugin has it.
		var lookErr *exec.Error
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.As(err, &lookErr) {
			err = fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return nil, fmt.Errorf("start %q: %w", cmd.Args[0], err)
	}
	p := &commandPTY{Terminal: term, cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go p.wait()
	return p, nil
}

// commandPTY is a session StartCommand started.
type commandPTY struct {
	*Terminal
	cmd *exec.Cmd
	pid int // the session's and its process group's id

	// exited is closed when the child has exited; status and waitErr are
	// written before.
	exited  chan struct{}
	status  ExitStatus
	waitErr error

	killOnce sync.Once
	killer   sync.WaitGroup // the SIGHUP→SIGKILL escalation

	closeOnce sync.Once
	closeErr  error
}

// wait records how the child exited. It leaves the child unreaped where
// the system allows (see WaitExit), so that Kill and Close, which signal
// its process group, cannot reach another process that got its pid.
func (p *commandPTY) wait() {
	p.status, p.waitErr = WaitExit(p.cmd)
	close(p.exited)
	p.ChildExited()
}

// InputTerminal implements InputTerminal: Write and Resize are the
// terminal's.
func (p *commandPTY) InputTerminal() *Terminal { return p.Terminal }

// Resize sets the terminal's size.
func (p *commandPTY) Resize(_ context.Context, size Size) error { return p.Terminal.Resize(size) }

// Wait returns how the child exited.
func (p *commandPTY) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.exited:
		return p.status, p.waitErr
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Kill sends SIGHUP to the session's process group and returns at once; a
// goroutine sends SIGKILL to it after the grace. Later calls do nothing.
func (p *commandPTY) Kill(ctx context.Context) error {
	grace := commandKillGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = max(0, min(grace, time.Until(dl)/2))
	}
	p.killOnce.Do(func() { p.startKill(grace) })
	return nil
}

func (p *commandPTY) startKill(grace time.Duration) {
	_ = unix.Kill(-p.pid, unix.SIGHUP)
	p.killer.Go(func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
		}
		_ = unix.Kill(-p.pid, unix.SIGKILL)
	})
}

// Close kills the session if the child still runs, waits for it to exit,
// kills what is left in its process group and closes the terminal. A
// blocked Read returns io.EOF.
func (p *commandPTY) Close() error {
	p.closeOnce.Do(func() {
		p.killOnce.Do(func() {
			select {
			case <-p.exited:
			default:
				p.startKill(commandKillGrace)
			}
		})
		<-p.exited // within the grace: SIGKILL follows SIGHUP
		p.killer.Wait()
		// What the child left running in its process group, such as a
		// background job, ends with it. The child is not reaped yet, so
		// its pid still names this group alone; then it is.
		_ = unix.Kill(-p.pid, unix.SIGKILL)
		Reap(p.cmd)
		p.closeErr = p.Terminal.Close()
	})
	return p.closeErr
}
