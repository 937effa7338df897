package main

import (
	"context"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// killGrace is how long Kill lets the session's processes handle SIGHUP
	// before it sends SIGKILL.
	killGrace = 2 * time.Second
)

// hostPTY is one session: a child process in its own session (its pid is
// also its session and process group id) with the pseudo-terminal as its
// controlling terminal.
//
// On Linux the child is not reaped until Close, so its pid, which names the
// session, cannot be reused while Kill and Close signal the session. In
// the plugin process the session holds one file descriptor, the
// terminal's master: the orphanage notices the child's exit on SIGCHLD
// (see orphanage).
type hostPTY struct {
	cmd     *exec.Cmd // started; its Process is released if orphans is set
	pid     int
	term    *shared.Terminal // reads until the child exited and the terminal is drained
	log     hclog.Logger
	orphans *orphanage

	// exited is closed when the child has exited; status and waitErr are
	// written before. waiterDone is closed once childExited has told term.
	exited     chan struct{}
	status     shared.ExitStatus
	waitErr    error
	waiterDone chan struct{}

	killOnce sync.Once
	killer   sync.WaitGroup // the SIGHUP→SIGKILL escalation

	closeOnce sync.Once
	closeErr  error
}

var (
	_ shared.PTY           = (*hostPTY)(nil)
	_ shared.InputTerminal = (*hostPTY)(nil)
)

// startPTY starts cmd in a new session on a new pseudo-terminal of the
// given size.
func startPTY(cmd *exec.Cmd, size shared.Size, log hclog.Logger, orphans *orphanage) (*hostPTY, error) {
	term, tty, err := shared.OpenTerminal(size)
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Setsid makes the child a session leader; Setctty gives it the tty
	// (its fd 0) as controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	p := &hostPTY{
		cmd:        cmd,
		term:       term,
		log:        log,
		orphans:    orphans,
		exited:     make(chan struct{}),
		waiterDone: make(chan struct{}),
	}
	// childExited may run before start returns; it reads no field start
	// sets.
	pid, err := orphans.start(cmd, p.childExited)
	if err != nil {
		term.Close()
		return nil, err
	}
	p.pid = pid
	return p, nil
}

// startAlone starts cmd without an orphanage: a goroutine waits in
// shared.WaitExit (on a pidfd of its own where it can) and calls exited.
func startAlone(cmd *exec.Cmd, exited func(shared.ExitStatus, error)) (int, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { exited(shared.WaitExit(cmd)) }()
	return cmd.Process.Pid, nil
}

// childExited records the child's exit, then wakes a Read that may be
// blocked on a terminal a grandchild still holds open, so it starts
// draining. It is called once.
func (p *hostPTY) childExited(status shared.ExitStatus, err error) {
	defer close(p.waiterDone)
	p.status, p.waitErr = status, err
	close(p.exited)
	p.log.Debug("session process exited", "code", status.Code, "signal", status.Signal, "error", err)
	p.term.ChildExited()
}

// Read returns the terminal's output, and io.EOF once the child has exited
// and the terminal is drained (see shared.Terminal.Read).
func (p *hostPTY) Read(b []byte) (int, error) {
	return p.term.Read(b)
}

// Write sends input to the terminal.
func (p *hostPTY) Write(b []byte) (int, error) {
	return p.term.Write(b)
}

// InputTerminal implements shared.InputTerminal: Write and Resize are the
// terminal's, so a host may write input to it and size it itself.
func (p *hostPTY) InputTerminal() *shared.Terminal { return p.term }

// Resize sets the terminal's size; the kernel signals SIGWINCH to the
// foreground process group.
func (p *hostPTY) Resize(_ context.Context, size shared.Size) error {
	return p.term.Resize(size)
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
	p.orphans.suspect(p.pid) // so that its exit is noticed at once
	// As a terminal's hangup: SIGCONT after SIGHUP, or a stopped process
	// would only see the hangup once SIGKILL came.
	signalSession(p.orphans, p.pid, unix.SIGHUP, unix.SIGCONT)
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

// Close hangs the session up unless Kill did (SIGHUP, then SIGKILL after
// killGrace to what is left, whether the child still runs or left
// processes behind), reaps the child and closes the terminal. Output not
// yet read is lost; a blocked Read returns io.EOF.
func (p *hostPTY) Close() error {
	p.closeOnce.Do(func() {
		// Use up killOnce, so that no Kill signals the session after the
		// child is reaped and its pid may name another process. A child
		// that exited on its own may have left processes running: they get
		// the hangup and its grace too, as a killed session's do.
		p.killOnce.Do(func() { p.startKill(killGrace) })
		<-p.exited // within killGrace: SIGKILL follows SIGHUP
		p.killer.Wait()
		killSession(p.orphans, p.pid)
		<-p.waiterDone
		p.orphans.reapLeader(p.cmd, p.pid)
		p.closeErr = p.term.Close()
	})
	return p.closeErr
}
