package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Ending a tmux session: Kill and Close, down to the pane's process group.

// Kill kills the tmux session, and with it the session's processes: tmux
// sends them SIGHUP, and whatever of the pane's process group is left
// after a grace period (a background job that ignores SIGHUP, as nohup
// makes it) gets SIGKILL. Kill returns at once; the escalation runs in the
// background, its grace killGrace or half the time left to ctx's
// deadline, if shorter. The client then exits. A dead pane is left for
// the client's end to report. With keep, Kill only hangs up the client:
// the tmux session lives on.
func (p *tmuxPTY) Kill(ctx context.Context) error {
	if p.keep {
		p.hangUp()
		return nil
	}
	p.killed.Store(true)
	// In one tmux command, so that a pane that just died keeps its status.
	_, err := p.srv.run(ctx, "if-shell", "-F", "-t", target(p.name), "#{?pane_dead,0,1}", "kill-session -t "+target(p.name))
	if err != nil && !errors.Is(err, errNoSession) {
		return err
	}
	// Also when the session is gone already: its command may have left a
	// background job behind.
	grace := killGrace
	if d, ok := ctx.Deadline(); ok {
		grace = max(min(grace, time.Until(d)/2), 0)
	}
	go p.killGroup(grace)
	return nil
}

// killGroup waits up to grace for the process group of the session's
// command to be empty, then sends it SIGKILL, logging a failure. tmux
// starts a pane's command as the leader of a new session, and so of a
// process group whose id is its pid; a non-interactive shell leaves its
// background jobs in that group, so the group is everything the command
// started but what moved out on purpose (setsid, a shell's job control).
// While the group has a member its id is not reused (Linux allocates no
// pid still in use as a process group id); an empty group is no error.
func (p *tmuxPTY) killGroup(grace time.Duration) {
	pgid := p.panePID
	if pgid <= 1 {
		p.log.Warn("cannot kill the session's process group: bad pane pid", "pid", pgid)
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	tick := time.NewTicker(killPoll)
	defer tick.Stop()
	for groupAlive(pgid) {
		select {
		case <-tick.C:
			continue
		case <-t.C:
		}
		// What is left of the group ignored SIGHUP.
		if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			p.log.Warn("cannot kill the session's process group", "pgid", pgid, "error", err)
		}
		return
	}
}

// groupAlive reports whether the process group pgid has a member that is
// not a zombie. Zombies are left out: killed already, they wait for a
// parent to reap them, and one whose parent exited may wait long where
// the pid namespace's init reaps nothing (a container's). Without /proc
// any member counts.
func groupAlive(pgid int) bool {
	if unix.Kill(-pgid, 0) != nil {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range procs {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold anything, ")" too.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// hangUp sends SIGHUP to the tmux client, which detaches and exits.
func (p *tmuxPTY) hangUp() {
	p.detached.Store(true)
	if err := p.client.Process.Signal(unix.SIGHUP); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.log.Debug("cannot hang up the tmux client", "error", err)
	}
}

// Close kills the tmux session (unless keep) and, after killGrace, what is
// left of its process group; it ends the client, waits for the session's
// status to settle and closes the terminal. Output not yet read is lost; a
// blocked Read returns io.EOF.
func (p *tmuxPTY) Close() error {
	p.closeOnce.Do(func() {
		if !p.keep {
			ctx, cancel := context.WithTimeout(context.Background(), tmuxTimeout)
			p.killed.Store(true)
			p.closeErr = p.srv.killSession(ctx, p.name)
			cancel()
			// Here, not in the background: the plugin may exit next.
			p.killGroup(killGrace)
		}
		p.hangUp()
		t := time.NewTimer(hangupGrace)
		defer t.Stop()
		select {
		case <-p.clientDone:
		case <-t.C:
			_ = p.client.Process.Kill()
		}
		<-p.exited
		if err := p.master.Close(); p.closeErr == nil {
			p.closeErr = err
		}
	})
	return p.closeErr
}
