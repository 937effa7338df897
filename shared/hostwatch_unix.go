//go:build unix

package shared

import (
	"errors"
	"os"
	"syscall"
)

// signalHostWatch returns a function that reports whether the process
// host has exited: it has when the plugin's parent was host and no longer
// is, or when no process of its pid exists any more. A host whose pid
// another process took within a poll interval, or a zombie its parent has
// not reaped, still counts as running; a pidfd (Linux) tells those apart.
func signalHostWatch(host int) func() bool {
	parent := os.Getppid()
	return func() bool {
		return reparented(parent, host) || errors.Is(syscall.Kill(host, 0), syscall.ESRCH)
	}
}
