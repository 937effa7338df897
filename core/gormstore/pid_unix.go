//go:build unix

package gormstore

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process of id pid exists on this machine:
// signal 0 checks without sending anything, and only "no such process"
// says it is gone (a process of another user answers EPERM).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
