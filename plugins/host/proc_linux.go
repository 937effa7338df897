//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// On Linux the session's processes are found in /proc by session id, so
// that Kill and Close also reach background jobs that an interactive shell
// moved to process groups of their own. They are signalled and awaited
// through pidfds, which cannot hit a reused pid. The session leader (the
// child) stays a zombie until Close reaps it, which keeps its pid, the
// session id, from being reused meanwhile.

// killRounds and killRoundWait bound how hard killSession tries.
const (
	killRounds    = 3
	killRoundWait = time.Second
)

// siginfoChld is the head of Linux's siginfo_t on 64-bit architectures, with
// the fields waitid fills in for a child.
type siginfoChld struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
}

// si_code values for SIGCHLD.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// waitExited blocks until the child has exited and says how, leaving it a
// zombie (WNOWAIT) for reap.
func waitExited(cmd *exec.Cmd) (shared.ExitStatus, error) {
	pid := cmd.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return shared.ExitStatus{}, fmt.Errorf("wait for process %d: %w", pid, err)
		}
	}
	chld := (*siginfoChld)(unsafe.Pointer(&info))
	switch chld.Code {
	case cldExited:
		return shared.ExitStatus{Code: int(chld.Status)}, nil
	case cldKilled, cldDumped:
		return signalStatus(unix.Signal(chld.Status)), nil
	default:
		return shared.ExitStatus{}, fmt.Errorf("wait for process %d: unexpected si_code %d", pid, chld.Code)
	}
}

// reap releases the child's zombie.
func reap(cmd *exec.Cmd) {
	_ = cmd.Wait()
}

// signalSession sends sig to every process in session sid.
func signalSession(sid int, sig unix.Signal) {
	_ = unix.Kill(-sid, sig) // the child's own group, atomically
	for _, m := range sessionMembers(sid) {
		m.signal(sig)
		m.close()
	}
}

// waitSessionGone waits until every process now in session sid has exited,
// or timeout passed.
func waitSessionGone(sid int, timeout time.Duration) {
	ms := sessionMembers(sid)
	waitExit(ms, timeout)
	for _, m := range ms {
		m.close()
	}
}

// killSession sends SIGKILL to session sid until it is empty, in a few
// rounds (a process may fork while it is being killed), waiting for the
// killed processes to be gone.
func killSession(sid int) {
	for range killRounds {
		_ = unix.Kill(-sid, unix.SIGKILL)
		ms := sessionMembers(sid)
		if len(ms) == 0 {
			return
		}
		for _, m := range ms {
			m.signal(unix.SIGKILL)
		}
		waitExit(ms, killRoundWait)
		for _, m := range ms {
			m.close()
		}
	}
}

// member is a live process of a session; fd is its pidfd, or -1 where the
// kernel has no pidfds.
type member struct {
	pid, fd int
}

func (m member) signal(sig unix.Signal) {
	if m.fd < 0 {
		_ = unix.Kill(m.pid, sig)
		return
	}
	_ = unix.PidfdSendSignal(m.fd, sig, nil, 0)
}

func (m member) close() {
	if m.fd >= 0 {
		_ = unix.Close(m.fd)
	}
}

// sessionMembers returns the live (not zombie) processes of session sid.
func sessionMembers(sid int) []member {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var ms []member
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !inSession(pid, sid) {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		switch {
		case errors.Is(err, unix.ENOSYS):
			ms = append(ms, member{pid: pid, fd: -1})
		case err != nil:
			// Gone already.
		case inSession(pid, sid):
			// Still ours now that the pidfd pins it.
			ms = append(ms, member{pid: pid, fd: fd})
		default:
			_ = unix.Close(fd)
		}
	}
	return ms
}

// inSession reports whether pid is a live process of session sid, from
// /proc/<pid>/stat: "pid (comm) state ppid pgrp session ...".
func inSession(pid, sid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || f[0][0] == 'Z' || f[0][0] == 'X' {
		return false
	}
	s, err := strconv.Atoi(string(f[3]))
	return err == nil && s == sid
}

// waitExit waits until every member with a pidfd has exited, or timeout.
func waitExit(ms []member, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	fds := make([]unix.PollFd, 0, len(ms))
	for _, m := range ms {
		if m.fd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(m.fd), Events: unix.POLLIN})
		}
	}
	for left := len(fds); left > 0; {
		wait := time.Until(deadline)
		if wait <= 0 {
			return
		}
		_, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for i := range fds {
			if fds[i].Fd >= 0 && fds[i].Revents != 0 {
				fds[i].Fd = -1 // exited; poll ignores negative fds
				left--
			}
		}
	}
}
