//go:build unix

package gormstore

import (
	"os"
	"strings"

	"github.com/ptyhost/ptyhost/internal/proc"
)

// processAlive reports whether a process of id pid runs on this machine,
// a zombie not counting (proc.Alive): a server killed under a parent slow
// to reap held its claim until its lease ran out.
func processAlive(pid int) bool { return proc.Alive(pid) }

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
