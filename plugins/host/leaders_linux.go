//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"errors"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// How the plugin process notices that a session leader exited, with no
// file descriptor or thread per session.
//
// start drops the pidfd Go keeps in os.Process, and nothing waits for a
// leader in a thread or on a pidfd of its own. Instead, each SIGCHLD (the
// plugin's own children, leaders and adopted orphans, send it; the
// commands a session's shell runs signal the shell) checks leaders with a
// non-blocking waitid that leaves them zombies: until reapLeader, a
// leader's pid, the session and process group id, cannot name another
// process while Kill and Close signal the session.
//
// A check is one cheap system call per leader, about half a microsecond;
// but a full scan of a thousand leaders on every SIGCHLD kept a CPU busy
// while many sessions were deleted at once. So:
//
//   - The suspects, leaders the plugin has signalled (Kill, Close), are
//     checked on every SIGCHLD: a deleted session ends without delay.
//   - The full scan, which notices a leader that exited of its own accord,
//     runs on a SIGCHLD too, but at most about one tenth of the time
//     (scanShare): after a scan that took d, the next waits until
//     scanShare×d later (at most maxScanPace). An idle plugin scans at
//     once; one flooded with exits notices the unexpected ones a few
//     milliseconds late.
//   - A leader that exited before it was registered, whose SIGCHLD may have
//     been handled already, is checked once right after.

const (
	// scanShare is the most that full scans take of one CPU while
	// SIGCHLDs keep coming: one part in scanShare.
	scanShare = 10
	// maxScanPace bounds the wait between full scans.
	maxScanPace = 50 * time.Millisecond
)

// leader is a registered session leader.
type leader struct {
	// exited is called once, when the leader has exited; nil after (mu
	// protects it).
	exited func(shared.ExitStatus, error)
}

// start starts cmd as a session leader and returns its pid; exited is
// called once, from another goroutine or before start returns, when it
// has exited. After start, cmd.Process is released: call reapLeader, not
// cmd.Wait.
func (o *orphanage) start(cmd *exec.Cmd, exited func(shared.ExitStatus, error)) (int, error) {
	if o == nil {
		return startAlone(cmd, exited)
	}
	pid, err := o.fork(cmd, exited)
	if err != nil {
		return 0, err
	}
	// A leader that exited before it was registered may have sent its
	// SIGCHLD before a check knew it.
	o.checkLeader(pid)
	return pid, nil
}

// fork starts cmd and registers it with exited, under startMu.
func (o *orphanage) fork(cmd *exec.Cmd, exited func(shared.ExitStatus, error)) (int, error) {
	o.startMu.RLock()
	defer o.startMu.RUnlock()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	// Close the pidfd os.Process holds (Go 1.23+ on Linux): the checks
	// need none, and it would be a second fd per session.
	_ = cmd.Process.Release()
	o.mu.Lock()
	o.leaders[pid] = &leader{exited: exited}
	o.mu.Unlock()
	return pid, nil
}

// suspect marks the leader pid as about to be signalled to end, so that
// every SIGCHLD checks it until its exit is noticed. Call it before the
// signal, so that the SIGCHLD cannot come first.
func (o *orphanage) suspect(pid int) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.leaders[pid]; l != nil && l.exited != nil {
		o.suspects[pid] = struct{}{}
	}
}

// reapLeader unregisters the leader pid and reaps it, once it has exited
// (exited was called). After it, the pid may be reused.
func (o *orphanage) reapLeader(cmd *exec.Cmd, pid int) {
	if o == nil {
		shared.Reap(cmd)
		return
	}
	// Forget before reaping: until the zombie is reaped its pid cannot be
	// a new leader's, whose registration forget would drop. Once
	// forgotten, reap may take it first, which is as good.
	o.mu.Lock()
	delete(o.leaders, pid)
	delete(o.suspects, pid)
	o.mu.Unlock()
	var info unix.Siginfo
	for errors.Is(unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED, nil), unix.EINTR) {
	}
}

// watch reaps orphans and notices leaders' exits on each SIGCHLD, pacing
// the full scans (see scanShare). It runs for the life of the process.
func (o *orphanage) watch(sigchld <-chan os.Signal) {
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	var (
		owed  bool      // a SIGCHLD came since the last full scan began
		armed bool      // pace runs
		next  time.Time // the earliest start of the next full scan
	)
	for {
		select {
		case <-sigchld:
			o.reap()
			o.checkSuspects()
			owed = true
		case <-pace.C:
			armed = false
		}
		if !owed || armed {
			continue
		}
		if wait := time.Until(next); wait > 0 {
			pace.Reset(wait)
			armed = true
			continue
		}
		owed = false
		start := time.Now()
		o.checkLeaders()
		took := time.Since(start)
		next = time.Now().Add(min(scanShare*took, maxScanPace))
	}
}

// checkSuspects notices the exit of every suspect that has exited.
func (o *orphanage) checkSuspects() {
	o.mu.Lock()
	pids := make([]int, 0, len(o.suspects))
	for pid := range o.suspects {
		pids = append(pids, pid)
	}
	o.mu.Unlock()
	for _, pid := range pids {
		o.checkLeader(pid)
	}
}

// checkLeaders notices the exit of every registered leader that has
// exited since the last check.
func (o *orphanage) checkLeaders() {
	o.mu.Lock()
	pids := make([]int, 0, len(o.leaders))
	for pid, l := range o.leaders {
		if l.exited != nil {
			pids = append(pids, pid)
		}
	}
	o.mu.Unlock()
	for _, pid := range pids {
		o.checkLeader(pid)
	}
}

// checkLeader calls the leader pid's exited if it has exited and that was
// not noticed yet; it leaves the leader a zombie.
func (o *orphanage) checkLeader(pid int) {
	st, ok, err := shared.PeekExit(pid)
	if !ok {
		return
	}
	o.mu.Lock()
	var exited func(shared.ExitStatus, error)
	if l := o.leaders[pid]; l != nil {
		exited, l.exited = l.exited, nil
	}
	delete(o.suspects, pid)
	o.mu.Unlock()
	if exited != nil {
		exited(st, err)
	}
}
