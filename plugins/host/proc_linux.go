//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux, Kill and Close reach every process of the session, including
// background jobs that an interactive shell moved to process groups of
// their own, without scanning /proc:
//
//   - The child's own process group (its pid) is signalled with one
//     kill(-pid), atomically.
//   - The rest of the session is found by walking the process tree down
//     from the child through /proc/<pid>/task/<tid>/children, and from the
//     session's orphans: the plugin process is a child subreaper (see
//     orphanage), so a process whose parent died is re-parented to the
//     plugin, not to init, and is found among the plugin's children. The
//     cost of a kill is a few small reads per process of the session, not
//     one per process on the machine.
//
// Members are signalled and awaited through pidfds, which cannot hit a
// reused pid. The session leader (the child) stays a zombie until Close
// reaps it, which keeps its pid, the session id, from being reused
// meanwhile. A process that left the session (setsid) is not the
// session's any more and is not reached; what it forked before it left is,
// however deep below it.

// killRounds and killRoundWait bound how hard killSession tries.
const (
	killRounds    = 3
	killRoundWait = time.Second
)

// signalSession sends each of sigs, in order, to every process in session
// sid.
func signalSession(o *orphanage, sid int, sigs ...unix.Signal) {
	ms := sessionMembers(o, sid)
	for _, sig := range sigs {
		_ = unix.Kill(-sid, sig) // the child's own group, atomically
		for _, m := range ms {
			if m.pgrp != sid {
				m.signal(sig)
			}
		}
	}
	for _, m := range ms {
		m.close()
	}
}

// waitSessionGone waits until every process now in session sid but the
// child has exited, or timeout passed.
func waitSessionGone(o *orphanage, sid int, timeout time.Duration) {
	ms := sessionMembers(o, sid)
	waitExit(ms, timeout)
	for _, m := range ms {
		m.close()
	}
}

// killSession sends SIGKILL to session sid until it is empty, in a few
// rounds (a process may fork while it is being killed), waiting for the
// killed processes to be gone.
func killSession(o *orphanage, sid int) {
	for range killRounds {
		ms := sessionMembers(o, sid)
		_ = unix.Kill(-sid, unix.SIGKILL)
		if len(ms) == 0 {
			return
		}
		for _, m := range ms {
			if m.pgrp != sid {
				m.signal(unix.SIGKILL)
			}
		}
		waitExit(ms, killRoundWait)
		for _, m := range ms {
			m.close()
		}
	}
}

// member is a live process of a session other than its leader; fd is its
// pidfd, or -1 where the kernel has no pidfds.
type member struct {
	pid, pgrp, fd int
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

// maxMembers caps one walk of a session, so that a fork bomb cannot make a
// kill unbounded; killSession's rounds catch the rest.
const maxMembers = 4096

// maxVisited caps the processes one walk reads, members or not: the walk
// goes on below processes that left the session, whose own trees may be
// large.
const maxVisited = 4 * maxMembers

// sessionMembers returns the live (not zombie) processes of session sid
// other than its leader: the leader's descendants and the session's
// orphans with theirs.
func sessionMembers(o *orphanage, sid int) []member {
	queue := append([]int{sid}, o.orphans()...)
	seen := make(map[int]bool, len(queue))
	var ms []member
	for len(queue) > 0 && len(ms) < maxMembers && len(seen) < maxVisited {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		st, ok := readStat(pid)
		if !ok {
			continue // gone
		}
		if st.session == sid && pid != sid && st.live() {
			if m, ok := pin(pid, sid); ok {
				ms = append(ms, m)
			}
		}
		// Below one that left the session too: what it forked before it
		// left (into a group of its own) is still the session's.
		queue = append(queue, children(pid)...)
	}
	return ms
}

// pin opens a pidfd for pid and checks that the process it pins is still a
// live member of session sid.
func pin(pid, sid int) (member, bool) {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		fd = -1
	case err != nil:
		return member{}, false // gone already
	}
	st, ok := readStat(pid)
	if !ok || st.session != sid || !st.live() {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		return member{}, false
	}
	return member{pid: pid, pgrp: st.pgrp, fd: fd}, true
}

// children returns the children of every thread of pid, from
// /proc/<pid>/task/<tid>/children.
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		out = appendPids(out, dir+t.Name()+"/children")
	}
	return out
}

// appendPids appends the pids listed (space-separated) in file to pids.
func appendPids(pids []int, file string) []int {
	b, err := os.ReadFile(file)
	if err != nil {
		return pids
	}
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statFields is what readStat takes from /proc/<pid>/stat.
type statFields struct {
	state         byte
	pgrp, session int
}

// live reports whether the process runs (is not a zombie or dead).
func (s statFields) live() bool { return s.state != 'Z' && s.state != 'X' }

// readStat reads /proc/<pid>/stat: "pid (comm) state ppid pgrp session ...".
func readStat(pid int) (statFields, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return statFields{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || len(f[0]) == 0 {
		return statFields{}, false
	}
	pgrp, err1 := strconv.Atoi(string(f[2]))
	session, err2 := strconv.Atoi(string(f[3]))
	if err1 != nil || err2 != nil {
		return statFields{}, false
	}
	return statFields{state: f[0][0], pgrp: pgrp, session: session}, true
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
