//go:build unix

package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// Alive reports whether a process of id pid runs on this machine. Signal
// 0 checks without sending anything, and only "no such process" says it
// is gone (a process of another user answers EPERM). A zombie, which has
// exited and waits for its parent to reap it, is gone too: a parent slow
// to reap (a shell's background job, a container's init, init itself for
// an orphan) must not make a dead server or plugin look alive.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) && !Zombie(pid)
}

// Zombie reports whether /proc says pid has exited but is not reaped
// yet; false where there is no /proc.
func Zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold anything, ')' included.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
