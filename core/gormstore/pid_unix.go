//go:build unix

package gormstore

import (
	"errors"
	"os"
	"strings"
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

// localInstance names this machine's boot and this process's pid
// namespace (see Owner.Instance): "" where /proc does not say.
func localInstance() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}
