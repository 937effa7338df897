//go:build unix && !linux

package shared

import (
	"os"
	"syscall"
)

// clearSignalMask does nothing outside Linux: the mask a plugin inherited
// is passed on to what it starts.
func clearSignalMask([]os.Signal) {}

// maxSignal is the highest classic signal number.
const maxSignal = syscall.Signal(31)

// resetUnmanaged leaves every signal to signal.Notify outside Linux.
func resetUnmanaged(syscall.Signal) bool { return false }
