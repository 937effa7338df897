package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// tmuxTimeout bounds one tmux command the plugin runs on its own
	// account (not under a caller's ctx).
	tmuxTimeout = 10 * time.Second
	// drainGrace is how long Read waits for the terminal's last output
	// after the tmux client exited, in case something (the tmux server)
	// still holds the terminal open.
	drainGrace = 500 * time.Millisecond
	// hangupGrace is how long Close lets the tmux client handle SIGHUP
	// before it sends SIGKILL.
	hangupGrace = 2 * time.Second
	// killGrace is how long Kill and Close let the session's processes
	// handle the SIGHUP that kill-session sends before they send their
	// process group SIGKILL, and killPoll how often they look whether the
	// group is gone.
	killGrace = time.Second
	killPoll  = 10 * time.Millisecond
	// resizeWait bounds how long Resize waits for the session's own
	// terminal to take the new size.
	resizeWait = 2 * time.Second
	// resizePoll is how often Resize looks.
	resizePoll = 5 * time.Millisecond
	// statusWait bounds how long the watcher waits for tmux to report the
	// exit status of a command that has exited, and statusPoll is how
	// often it asks.
	statusWait = 5 * time.Second
	statusPoll = 10 * time.Millisecond
)

// hungUp is the status of a session whose tmux session ended without an
// exit status of its own: tmux sends SIGHUP to a pane's processes when it
// kills the session.
var hungUp = shared.ExitStatus{Code: 128 + int(unix.SIGHUP), Signal: "SIGHUP"}

// tmuxPTY is one session: a tmux client (`tmux attach-session`) running in
// a pseudo-terminal of the plugin's, attached to the session's tmux
// session. Output is the client's rendering of the session's screen.
//
// How it ends: when the session's command exits, tmux keeps the dead pane
// (remain-on-exit). The watcher goroutine sees the command's process end
// (a pidfd on Linux), reads its exit status from the dead pane and kills
// the tmux session; the client, which has shown the last screen, exits;
// Read drains the terminal and returns io.EOF; Wait reports the status.
type tmuxPTY struct {
	srv     tmuxServer
	name    string
	panePID int // the process id of the session's command
	keep    bool
	log     hclog.Logger
	client  *exec.Cmd
	master  *os.File // non-blocking, so reads honour deadlines and Close

	// killed is set before this plugin kills the tmux session; detached
	// before it hangs up the client, leaving the session.
	killed   atomic.Bool
	detached atomic.Bool

	// stop is closed when the client has exited, which ends the watcher.
	stop chan struct{}
	// watchDone is closed when the watcher has returned; dead is set
	// before, if it saw the command exit, or lost, if tmux never told
	// how it exited.
	watchDone chan struct{}
	dead      *paneStatus
	lost      bool

	// clientDone is closed when the tmux client has exited.
	clientDone chan struct{}
	// exited is closed when status is set, after clientDone.
	exited chan struct{}
	status shared.ExitStatus

	paneTTYOnce sync.Once
	paneTTY     string // the session pane's terminal, for Resize

	closeOnce sync.Once
	closeErr  error
}

var _ shared.PTY = (*tmuxPTY)(nil)

// attach starts a tmux client attached to the session in a new
// pseudo-terminal of the given size, waits until tmux has attached it, and
// starts the watcher. pid is the process id of the session's command. On
// error the client is gone; the tmux session is the caller's to kill.
func attach(ctx context.Context, srv tmuxServer, name string, pid int, size shared.Size, keep bool, log hclog.Logger) (*tmuxPTY, error) {
	master, tty, err := shared.OpenPTY(size)
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	// Once attached, the client signals a wait-for channel of its own,
	// which attached waits on: a single signal for a single waiter.
	channel := "ptyhost-attached-" + rand.Text()
	// Not CommandContext: the client lives on after Spawn returns.
	cmd := srv.command(context.Background(), "-u", "attach-session", "-t", target(name), ";", "wait-for", "-S", channel)
	cmd.Env = append(slices.Clip(cmd.Env), "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// The client is a session leader with the terminal as controlling
	// terminal, as tmux expects of an interactive client.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	attached := make(chan error, 1)
	waitCtx, cancelWait := context.WithCancel(context.Background())
	defer cancelWait()
	go func() {
		_, err := srv.run(waitCtx, "wait-for", channel)
		attached <- err
	}()
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, fmt.Errorf("start tmux attach-session: %w", err)
	}
	p := &tmuxPTY{
		srv:        srv,
		name:       name,
		panePID:    pid,
		keep:       keep,
		log:        log,
		client:     cmd,
		master:     master,
		stop:       make(chan struct{}),
		watchDone:  make(chan struct{}),
		clientDone: make(chan struct{}),
		exited:     make(chan struct{}),
	}
	go p.wait()
	select {
	case err = <-attached:
	case <-p.clientDone:
		err = fmt.Errorf("the tmux client exited: %s", p.message())
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		// Killing a waiting tmux client is safe; tmux drops its wait.
		cancelWait()
		<-attached
		close(p.watchDone) // no watcher
		p.killed.Store(true)
		p.hangUp()
		<-p.exited
		p.master.Close()
		return nil, err
	}
	go p.watch()
	return p, nil
}

// message returns what the client printed before it exited, for an error.
func (p *tmuxPTY) message() string {
	_ = p.master.SetReadDeadline(time.Now().Add(drainGrace))
	b := make([]byte, 4096)
	n, _ := io.ReadFull(p.master, b)
	msg := strings.TrimSpace(string(b[:n]))
	if msg == "" {
		return "no message"
	}
	return msg
}

// watch waits for the session's command to exit, then for tmux to have its
// status; it records the status and kills the tmux session, which ends the
// client. It returns early when the client exits first (stop).
func (p *tmuxPTY) watch() {
	defer close(p.watchDone)
	if !waitProcess(p.panePID, p.stop) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusWait)
	defer cancel()
	tick := time.NewTicker(statusPoll)
	defer tick.Stop()
	for {
		pane, err := p.srv.paneStatus(ctx, p.name)
		switch {
		case err != nil:
			// Gone, or tmux does not answer: wait() settles the status.
			p.log.Debug("reading the exit status", "error", err)
			return
		case pane.dead:
			p.dead = &pane
			p.kill(ctx)
			return
		case pane.server > 0:
			// The process has exited, but tmux has not reaped it. tmux
			// 3.3a can miss a SIGCHLD when children exit together, and
			// then leaves them zombies until the next one; this one
			// makes it look (it only runs waitpid).
			_ = unix.Kill(pane.server, unix.SIGCHLD)
		}
		select {
		case <-tick.C:
		case <-p.stop:
			return
		case <-ctx.Done():
			p.log.Warn("tmux did not report the exit status in time; killing the session")
			p.lost = true
			kctx, cancel := context.WithTimeout(context.Background(), tmuxTimeout)
			p.kill(kctx)
			cancel()
			return
		}
	}
}

// wait waits for the tmux client to exit, lets Read drain what is left,
// stops the watcher, then settles the session's status.
func (p *tmuxPTY) wait() {
	err := p.client.Wait()
	close(p.clientDone)
	_ = p.master.SetReadDeadline(time.Now().Add(drainGrace))
	// A Write blocked on a client that stopped reading ends now, and later
	// input is dropped: nobody reads the terminal any more.
	_ = p.master.SetWriteDeadline(time.Now())
	p.log.Debug("tmux client exited", "error", err)
	close(p.stop)
	<-p.watchDone
	p.status = p.end()
	close(p.exited)
}

// end works out how the session ended, once its client has exited, and
// kills the tmux session unless it is to be kept.
func (p *tmuxPTY) end() shared.ExitStatus {
	switch {
	case p.dead != nil:
		return p.dead.exitStatus()
	case p.lost:
		return shared.ExitStatus{Code: -1, Reason: "the command exited, but tmux did not report how"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), tmuxTimeout)
	defer cancel()
	pane, err := p.srv.paneStatus(ctx, p.name)
	switch {
	case errors.Is(err, errNoSession) && p.killed.Load():
		return hungUp
	case errors.Is(err, errNoSession):
		st := hungUp
		st.Reason = "the tmux session ended outside ptyhost (killed by hand, or its tmux server stopped)"
		return st
	case err != nil:
		p.log.Warn("cannot read the tmux session's status", "error", err)
		p.kill(ctx)
		return shared.ExitStatus{Code: -1, Reason: err.Error()}
	case pane.dead:
		// The command exited; the dead pane has nothing more to show.
		p.kill(ctx)
		return pane.exitStatus()
	case p.keep && !p.killed.Load():
		// Only the client went away; the session stays, as configured, and
		// is tmux's own from now on.
		if _, err := p.srv.run(ctx, releaseArgs(p.name)...); err != nil {
			p.log.Warn("cannot hand the tmux session over", "error", err)
		}
		st := hungUp
		st.Reason = fmt.Sprintf("detached; the tmux session lives on: tmux -L %s attach -t %s", p.srv.socket, target(p.name))
		return st
	default:
		// The client was detached, but nothing is to outlive the session.
		killedHere := p.killed.Load()
		p.kill(ctx)
		if killedHere || p.detached.Load() {
			return hungUp
		}
		st := hungUp
		st.Reason = "the tmux client was detached outside ptyhost; the tmux session was killed"
		return st
	}
}

// exitStatus is the status of the command of a dead pane.
func (st paneStatus) exitStatus() shared.ExitStatus {
	if st.signal != 0 {
		return shared.ExitStatus{Code: 128 + st.signal, Signal: unix.SignalName(unix.Signal(st.signal))}
	}
	return shared.ExitStatus{Code: st.code}
}

// kill kills the tmux session, logging a failure.
func (p *tmuxPTY) kill(ctx context.Context) {
	p.killed.Store(true)
	if err := p.srv.killSession(ctx, p.name); err != nil {
		p.log.Warn("cannot kill the tmux session", "error", err)
	}
}

// Read returns the tmux client's output, and io.EOF once the client has
// exited and the terminal is drained.
func (p *tmuxPTY) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := p.master.Read(b)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			select {
			case <-p.clientDone:
				return 0, io.EOF // the grace after the client's exit is over
			default:
				continue
			}
		case errors.Is(err, syscall.EIO), errors.Is(err, os.ErrClosed), errors.Is(err, io.EOF):
			return 0, io.EOF
		default:
			return 0, err
		}
	}
}

// Write sends input to the tmux client, which passes it to the session.
// It waits while the client's terminal is full, until the client exits.
func (p *tmuxPTY) Write(b []byte) (int, error) {
	n, err := p.master.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = shared.ErrChildExited // the client: nobody reads the terminal
	}
	return n, err
}

// Resize sets the size of the client's terminal; the tmux window follows
// (window-size smallest), and tmux resizes the pane's terminal, in its own
// time. Resize waits, up to resizeWait, until the pane's terminal has the
// new size, so that input sent after a resize meets a program that
// already has it.
func (p *tmuxPTY) Resize(ctx context.Context, size shared.Size) error {
	if err := shared.ResizePTY(p.master, size); err != nil {
		return err
	}
	p.waitPaneSize(ctx, size)
	return nil
}

// waitPaneSize polls the size of the pane's terminal until it is size, the
// session ends, or resizeWait or ctx is over. It cannot do better than
// poll: tmux tells no one when it has resized a pane.
func (p *tmuxPTY) waitPaneSize(ctx context.Context, size shared.Size) {
	p.paneTTYOnce.Do(func() {
		qctx, cancel := context.WithTimeout(ctx, tmuxTimeout)
		defer cancel()
		tty, err := p.srv.paneTTY(qctx, p.name)
		if err != nil {
			p.log.Debug("cannot find the pane's terminal", "error", err)
		}
		p.paneTTY = tty
	})
	if p.paneTTY == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, resizeWait)
	defer cancel()
	tick := time.NewTicker(resizePoll)
	defer tick.Stop()
	for !paneHasSize(p.paneTTY, size) {
		select {
		case <-tick.C:
		case <-p.clientDone:
			return
		case <-ctx.Done():
			p.log.Debug("the pane did not take the new size in time", "cols", size.Cols, "rows", size.Rows)
			return
		}
	}
}

// paneHasSize reports whether the terminal at path has the size. It opens
// the terminal only for the moment it takes to ask: tmux notices a pane's
// end when the last holder of its terminal lets go.
func paneHasSize(path string, size shared.Size) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return true // gone: nothing to wait for
	}
	defer unix.Close(fd)
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	return err != nil || ws.Col == size.Cols && ws.Row == size.Rows
}

// Wait returns how the session ended.
func (p *tmuxPTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exited:
		return p.status, nil
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
}
