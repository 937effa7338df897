//go:build unix && !(linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64))

package shared

import (
	"errors"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// WaitExit blocks until the process cmd started has exited, reaps it and
// says how it exited. (On 64-bit Linux it leaves the process unreaped until
// Reap, so that its pid cannot be reused meanwhile.)
func WaitExit(cmd *exec.Cmd) (ExitStatus, error) {
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return ExitStatus{}, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return signalStatus(unix.Signal(ws.Signal())), nil
	}
	return ExitStatus{Code: cmd.ProcessState.ExitCode()}, nil
}

// Reap does nothing here: WaitExit reaped the process.
func Reap(*exec.Cmd) {}
